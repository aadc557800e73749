/// The UI's stylesheet and its one script, served from the binary (no CDN, no build step).
enum PageAssets {
    static let css = """
        :root { --fg: #1b1f24; --muted: #57606a; --bg: #ffffff; --line: #d0d7de; --accent: #0b5cad; --bad: #b42318; --ok: #1a7f37; --warn: #9a6700; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
        .skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px; }
        header { display: flex; flex-wrap: wrap; align-items: center; gap: 16px; padding: 8px 24px; border-bottom: 1px solid var(--line); }
        .brand { font-weight: 700; }
        nav ul { display: flex; flex-wrap: wrap; gap: 4px 14px; list-style: none; margin: 0; padding: 0; }
        nav a { color: var(--accent); text-decoration: none; padding: 4px 2px; }
        nav a[aria-current="page"] { font-weight: 700; border-bottom: 2px solid var(--accent); }
        .logout { margin-left: auto; display: flex; gap: 8px; align-items: center; color: var(--muted); }
        .muted { color: var(--muted); font-weight: normal; }
        main { padding: 8px 24px 48px; max-width: 1280px; }
        h1 { font-size: 1.5rem; margin: 12px 0; } h2 { font-size: 1.15rem; margin: 24px 0 8px; }
        table { border-collapse: collapse; width: 100%; margin: 8px 0; }
        th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
        thead th { font-size: 0.85rem; color: var(--muted); font-weight: 600; }
        small { color: var(--muted); }
        code { font: 0.85rem ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
        .card { border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
        .narrow { max-width: 420px; }
        label { display: inline-block; min-width: 8em; font-weight: 600; margin-right: 8px; }
        input, select { font: inherit; padding: 4px 8px; border: 1px solid var(--muted); border-radius: 4px; min-width: 16em; }
        button { font: inherit; padding: 4px 12px; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
        button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
        button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #f2a900; outline-offset: 2px; }
        form.inline { display: inline; }
        td.actions form { display: inline-block; margin: 0 6px 4px 0; }
        td.actions select { min-width: 10em; }
        input[type=checkbox] { min-width: 0; }
        .filters label { min-width: 0; } .filters input { min-width: 10em; margin-right: 12px; }
        .flash { color: var(--ok); font-weight: 600; } .error { color: var(--bad); font-weight: 600; }
        .stats { display: flex; flex-wrap: wrap; gap: 24px; list-style: none; padding: 0; margin: 8px 0 16px; }
        .stats strong { font-size: 1.4rem; display: block; }
        .status { font-weight: 600; } .status-active { color: var(--ok); } .status-unreachable, .status-error { color: var(--bad); } .status-pending { color: var(--warn); }
        .severity-critical { color: var(--bad); font-weight: 700; } .severity-warning { color: var(--warn); font-weight: 600; }
        .live ol { list-style: none; padding: 0; margin: 0; max-height: 22em; overflow-y: auto; border: 1px solid var(--line); border-radius: 6px; }
        .live li { padding: 4px 10px; border-bottom: 1px solid var(--line); font-size: 0.9rem; }
        .live li.fresh { background: #fff8c5; }
        .state { font-size: 0.8rem; font-weight: 400; color: var(--muted); }
        .secret code { font-size: 1rem; background: #f6f8fa; padding: 4px; }
        .link { display: block; background: #f6f8fa; padding: 6px; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        """

    /// Subscribes to /ws/events (same origin, the session cookie authenticates) and shows each
    /// event as it arrives; reconnects with back-off.
    static let liveJS = """
        (function () {
          "use strict";
          var list = document.getElementById("live-events");
          var state = document.getElementById("live-state");
          if (!list) { return; }
          var delay = 1000;
          function describe(e) {
            if (e.kind === "event") {
              return e.type + " on " + e.node_id + (e.device_id ? " (device " + e.device_id + ")" : "") +
                (e.source_endpoint ? " from " + e.source_endpoint : "") + (e.message ? ": " + e.message : "");
            }
            if (e.kind === "alert") { return "alert " + e.alert_kind + " (" + e.severity + ", " + e.status + ")" + (e.node_id ? " on " + e.node_id : ""); }
            if (e.kind === "node_status") { return "node " + e.name + " is " + e.status; }
            return e.kind;
          }
          function show(e) {
            var empty = list.querySelector(".empty");
            if (empty) { empty.remove(); }
            var item = document.createElement("li");
            item.className = "fresh";
            item.setAttribute("data-kind", e.kind);
            var time = document.createElement("time");
            time.textContent = (e.at || "").replace("T", " ").replace(/\\.\\d+Z$/, "Z");
            item.appendChild(time);
            item.appendChild(document.createTextNode(" " + describe(e)));
            list.insertBefore(item, list.firstChild);
            while (list.children.length > 50) { list.removeChild(list.lastChild); }
            setTimeout(function () { item.className = ""; }, 4000);
            if (e.kind === "node_status") {
              var badge = document.querySelector('[data-node-status="' + e.node_id + '"]');
              if (badge) { badge.textContent = e.status; badge.className = "status status-" + e.status; }
            }
          }
          function connect() {
            var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/events");
            ws.onopen = function () { state.textContent = "connected"; delay = 1000; };
            ws.onmessage = function (m) { try { show(JSON.parse(m.data)); } catch (err) { /* not ours */ } };
            ws.onclose = function () {
              state.textContent = "disconnected, retrying";
              setTimeout(connect, delay);
              delay = Math.min(delay * 2, 30000);
            };
          }
          connect();
        })();
        """
}
