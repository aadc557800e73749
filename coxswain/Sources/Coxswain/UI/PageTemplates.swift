/// The admin UI's pages as Mustache templates (swift-mustache), compiled into the binary so
/// the static `cox` needs no resource files. `{{x}}` is HTML-escaped; nothing here uses the
/// raw `{{{x}}}` form.
enum PageTemplates {
    static let header = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · PharosVPN</title>
        <link rel="stylesheet" href="/ui/app.css">
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        {{#user}}
        <header>
          <span class="brand">PharosVPN</span>
          <nav aria-label="Sections">
            <ul>
              {{#nav}}<li><a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a></li>{{/nav}}
            </ul>
          </nav>
          <form method="post" action="/ui/logout" class="logout">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <span>{{user}}</span> <button type="submit">Log out</button>
          </form>
        </header>
        {{/user}}
        <main id="main">
        <h1>{{title}}</h1>
        {{#flash}}<p class="flash" role="status">{{flash}}</p>{{/flash}}
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        """

    static let footer = """
        </main>
        {{#live}}<script src="/ui/live.js"></script>{{/live}}
        </body>
        </html>
        """

    static let liveFeed = """
        <section aria-labelledby="live-title" class="live">
          <h2 id="live-title">Live events <span id="live-state" class="state">connecting…</span></h2>
          <ol id="live-events" aria-live="polite"><li class="empty">No event yet.</li></ol>
        </section>
        """

    static let login = """
        {{> header}}
        <form method="post" action="/ui/login" class="card narrow">
          <p><label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required value="{{email}}"></p>
          <p><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required></p>
          <p><button type="submit">Log in</button></p>
        </form>
        {{> footer}}
        """

    static let overview = """
        {{> header}}
        <ul class="stats">
          {{#stats}}<li><strong>{{value}}</strong> {{label}}</li>{{/stats}}
        </ul>
        <section aria-labelledby="nodes-title">
        <h2 id="nodes-title">Nodes</h2>
        <table>
          <thead><tr><th scope="col">Name</th><th scope="col">Region</th><th scope="col">Status</th><th scope="col">Revision (applied / intended)</th><th scope="col">Peers</th><th scope="col">Last handshake</th><th scope="col">Last error</th></tr></thead>
          <tbody>
          {{#nodes}}<tr id="node-{{id}}"><th scope="row">{{name}}<br><small>{{controlAddr}}</small></th><td>{{region}}</td><td><span class="status status-{{status}}" data-node-status="{{id}}">{{status}}</span></td><td>{{appliedRevision}} / {{configRevision}}</td><td>{{peers}}</td><td>{{lastHandshake}}</td><td>{{lastError}}</td></tr>{{/nodes}}
          {{^nodes}}<tr><td colspan="7">No node yet: enroll one with <code>cox nodes enroll</code>.</td></tr>{{/nodes}}
          </tbody>
        </table>
        </section>
        <section aria-labelledby="relays-title">
        <h2 id="relays-title">Relays</h2>
        <table>
          <thead><tr><th scope="col">Name</th><th scope="col">Tunnel endpoint</th><th scope="col">Client address</th><th scope="col">Tunnel</th><th scope="col">Certificate</th></tr></thead>
          <tbody>
          {{#relays}}<tr><th scope="row">{{name}}</th><td>{{endpoint}}</td><td>{{publicAddr}}</td><td>{{tunnel}}</td><td>{{certificate}}</td></tr>{{/relays}}
          {{^relays}}<tr><td colspan="5">No remote relay. {{#embedded}}The embedded relay is listening.{{/embedded}}{{^embedded}}The embedded relay is off.{{/embedded}}</td></tr>{{/relays}}
          </tbody>
        </table>
        </section>
        {{> live_feed}}
        {{> footer}}
        """

    static let users = """
        {{> header}}
        <section aria-labelledby="users-title">
        <h2 id="users-title">Users and devices</h2>
        <table>
          <thead><tr><th scope="col">User</th><th scope="col">Role</th><th scope="col">Status</th><th scope="col">Devices</th><th scope="col">Invite</th></tr></thead>
          <tbody>
          {{#users}}<tr><th scope="row">{{name}}<br><small>{{email}}</small></th><td>{{role}}</td><td>{{status}}</td>
            <td>{{#devices}}<div>{{name}} <small>{{platform}} {{tunnelIP}}</small></div>{{/devices}}{{^devices}}none{{/devices}}</td>
            <td><form method="post" action="/ui/users/{{id}}/invite"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" aria-label="Create a join link for {{name}}">Create join link</button></form></td></tr>{{/users}}
          {{^users}}<tr><td colspan="5">No user yet.</td></tr>{{/users}}
          </tbody>
        </table>
        </section>
        <section aria-labelledby="add-user-title">
        <h2 id="add-user-title">Add a user</h2>
        <form method="post" action="/ui/users" class="card">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <p><label for="name">Name</label><input id="name" name="name" required></p>
          <p><label for="email">E-mail</label><input id="email" name="email" type="email"></p>
          <p><button type="submit">Add user</button></p>
        </form>
        </section>
        {{> footer}}
        """

    static let invite = """
        {{> header}}
        <div class="card">
        <p>Join link for <strong>{{invitee}}</strong>, valid once until {{expires}}:</p>
        <p><code id="join-link" class="link">{{link}}</code></p>
        <img src="data:image/png;base64,{{qr}}" width="256" height="256" alt="QR code of the join link for {{invitee}}">
        <p>Send it over a channel you trust: whoever opens it first enrolls a device.</p>
        </div>
        {{> footer}}
        """

    static let profiles = """
        {{> header}}
        <table>
          <thead><tr><th scope="col">Name</th><th scope="col">User</th><th scope="col">Node</th><th scope="col">Protocol</th><th scope="col">Device</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
          {{#profiles}}<tr><th scope="row">{{name}}</th><td>{{user}}</td><td>{{node}}</td><td>{{protocol}}</td><td>{{device}}</td>
            <td><form method="post" action="/ui/profiles/{{id}}/delete"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="danger" aria-label="Remove profile {{name}}">Remove</button></form></td></tr>{{/profiles}}
          {{^profiles}}<tr><td colspan="6">No profile yet.</td></tr>{{/profiles}}
          </tbody>
        </table>
        <section aria-labelledby="add-profile-title">
        <h2 id="add-profile-title">Give a user a profile</h2>
        <form method="post" action="/ui/profiles" class="card">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <p><label for="pname">Name</label><input id="pname" name="name" required></p>
          <p><label for="puser">User</label><select id="puser" name="user" required>{{#userOptions}}<option value="{{id}}">{{label}}</option>{{/userOptions}}</select></p>
          <p><label for="pnode">Node</label><select id="pnode" name="node" required>{{#nodeOptions}}<option value="{{id}}">{{label}}</option>{{/nodeOptions}}</select></p>
          <p><label for="pproto">Protocol</label><select id="pproto" name="protocol"><option>amneziawg</option><option>xray-reality</option><option>both</option></select></p>
          <p><button type="submit">Create profile</button></p>
        </form>
        </section>
        {{> footer}}
        """

    static let paths = """
        {{> header}}
        <table>
          <thead><tr><th scope="col">Name</th><th scope="col">Hops</th><th scope="col">Inner links</th><th scope="col">Profiles</th><th scope="col">Bound devices</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
          {{#paths}}<tr id="path-{{id}}"><th scope="row">{{name}}{{#color}} <span class="muted">{{color}}</span>{{/color}}</th><td>{{hops}}</td><td>{{links}}</td><td>{{profiles}}</td><td>{{bound}}</td>
            <td><form method="post" action="/ui/paths/{{id}}/delete"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="danger" aria-label="Remove path {{name}}">Remove</button></form></td></tr>{{/paths}}
          {{^paths}}<tr><td colspan="6">No path yet.</td></tr>{{/paths}}
          </tbody>
        </table>
        <section aria-labelledby="add-path-title">
        <h2 id="add-path-title">Add a path</h2>
        <p>Traffic enters at the entry and leaves the fleet at the exit; each hop gets an inner link to the next.</p>
        <form method="post" action="/ui/paths" class="card">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <p><label for="pathname">Name</label><input id="pathname" name="name" required></p>
          <p><label for="pentry">Entry</label><select id="pentry" name="entry" required>{{#nodeOptions}}<option value="{{id}}">{{label}}</option>{{/nodeOptions}}</select></p>
          <p><label for="pmid">Middle hop</label><select id="pmid" name="mid"><option value="">none (2 hops)</option>{{#nodeOptions}}<option value="{{id}}">{{label}}</option>{{/nodeOptions}}</select></p>
          <p><label for="pexit">Exit</label><select id="pexit" name="exit" required>{{#nodeOptions}}<option value="{{id}}">{{label}}</option>{{/nodeOptions}}</select></p>
          <p><label for="pcolor">Color</label><input id="pcolor" name="color" placeholder="#2f80ed (optional)" pattern="#?[0-9A-Fa-f]{6}"></p>
          <p><button type="submit">Add path</button></p>
        </form>
        </section>
        <section aria-labelledby="exits-title">
        <h2 id="exits-title">Live exits</h2>
        <p>A bound device's traffic entering at the path's entry leaves by the path's exit, on the tunnel it already has: no new profile, no sync.</p>
        <table>
          <thead><tr><th scope="col">Device</th><th scope="col">User</th><th scope="col">Path</th><th scope="col">Since</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
          {{#bindings}}<tr id="exit-{{deviceID}}"><th scope="row">{{device}}</th><td>{{user}}</td><td>{{path}}</td><td>{{since}}</td>
            <td><form method="post" action="/ui/devices/{{deviceID}}/unbind"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" aria-label="Unbind {{device}}">Unbind</button></form></td></tr>{{/bindings}}
          {{^bindings}}<tr><td colspan="5">No device is bound to a path.</td></tr>{{/bindings}}
          </tbody>
        </table>
        <form method="post" action="/ui/paths/bind" class="card">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <p><label for="bdevice">Device</label><select id="bdevice" name="device" required>{{#deviceOptions}}<option value="{{id}}">{{label}}</option>{{/deviceOptions}}</select></p>
          <p><label for="bpath">Path</label><select id="bpath" name="path" required>{{#pathOptions}}<option value="{{id}}">{{label}}</option>{{/pathOptions}}</select></p>
          <p><button type="submit">Switch exit</button></p>
        </form>
        </section>
        {{> footer}}
        """

    static let sessions = """
        {{> header}}
        {{> live_feed}}
        <section aria-labelledby="open-title">
        <h2 id="open-title">Open sessions</h2>
        <table>
          <thead><tr><th scope="col">Since</th><th scope="col">Node</th><th scope="col">Device</th><th scope="col">User</th><th scope="col">From</th><th scope="col">Protocol</th></tr></thead>
          <tbody>
          {{#open}}<tr><td>{{at}}</td><td>{{node}}</td><td>{{device}}</td><td>{{user}}</td><td>{{source}}</td><td>{{protocol}}</td></tr>{{/open}}
          {{^open}}<tr><td colspan="6">Nobody is connected.</td></tr>{{/open}}
          </tbody>
        </table>
        </section>
        <section aria-labelledby="history-title">
        <h2 id="history-title">Recent connection events</h2>
        <table>
          <thead><tr><th scope="col">At</th><th scope="col">Event</th><th scope="col">Node</th><th scope="col">Device</th><th scope="col">From</th><th scope="col">Bytes in / out</th><th scope="col">Reason</th></tr></thead>
          <tbody>
          {{#events}}<tr><td>{{at}}</td><td>{{type}}</td><td>{{node}}</td><td>{{device}}</td><td>{{source}}</td><td>{{rx}} / {{tx}}</td><td>{{reason}}</td></tr>{{/events}}
          {{^events}}<tr><td colspan="7">No event recorded.</td></tr>{{/events}}
          </tbody>
        </table>
        </section>
        {{> footer}}
        """

    static let alerts = """
        {{> header}}
        <table>
          <thead><tr><th scope="col">Seen</th><th scope="col">Kind</th><th scope="col">Severity</th><th scope="col">Status</th><th scope="col">Subject</th><th scope="col">Detail</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
          {{#alerts}}<tr><td>{{at}}</td><td>{{kind}}</td><td><span class="severity-{{severity}}">{{severity}}</span></td><td>{{status}}</td><td>{{subject}}</td><td><code>{{detail}}</code></td>
            <td>{{#actionable}}<form method="post" action="/ui/alerts/{{id}}/ack" class="inline"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}"><button type="submit">Acknowledge</button></form>
            <form method="post" action="/ui/alerts/{{id}}/resolve" class="inline"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}"><button type="submit">Resolve</button></form>{{/actionable}}</td></tr>{{/alerts}}
          {{^alerts}}<tr><td colspan="7">No alert.</td></tr>{{/alerts}}
          </tbody>
        </table>
        {{> footer}}
        """

    static let audit = """
        {{> header}}
        <form method="post" action="/ui/audit/verify" class="inline card">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <button type="submit">Verify chain</button> {{#verdict}}<strong role="status" class="verdict">{{verdict}}</strong>{{/verdict}}
        </form>
        <form method="get" action="/ui/audit" class="card filters">
          <label for="faction">Action</label><input id="faction" name="action" value="{{filterAction}}">
          <label for="factor">Actor</label><input id="factor" name="actor" value="{{filterActor}}">
          <button type="submit">Filter</button>
        </form>
        <table>
          <thead><tr><th scope="col">At</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">From</th><th scope="col">Result</th><th scope="col">Detail</th></tr></thead>
          <tbody>
          {{#rows}}<tr><td>{{at}}</td><td>{{actor}} <small>({{actorKind}})</small></td><td>{{action}}</td><td>{{target}}</td><td>{{sourceIP}}</td><td>{{result}}</td><td><code>{{detail}}</code></td></tr>{{/rows}}
          {{^rows}}<tr><td colspan="7">No row matches.</td></tr>{{/rows}}
          </tbody>
        </table>
        {{#older}}<p><a href="{{older}}">Older rows</a></p>{{/older}}
        {{> footer}}
        """

    static let tokens = """
        {{> header}}
        {{#created}}<div class="card secret" role="status"><p>Token <strong>{{name}}</strong> ({{scope}}). Copy it now, it is not shown again:</p><p><code id="new-token">{{secret}}</code></p></div>{{/created}}
        <table>
          <thead><tr><th scope="col">Name</th><th scope="col">Scope</th><th scope="col">Prefix</th><th scope="col">State</th><th scope="col">Created by</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
          {{#tokens}}<tr><th scope="row">{{name}}</th><td>{{scope}}</td><td><code>{{prefix}}…</code></td><td>{{state}}</td><td>{{createdBy}}</td><td>{{expires}}</td><td>{{lastUsed}}</td>
            <td>{{#active}}<form method="post" action="/ui/tokens/{{id}}/revoke"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="danger" aria-label="Revoke token {{name}}">Revoke</button></form>{{/active}}</td></tr>{{/tokens}}
          {{^tokens}}<tr><td colspan="8">No token.</td></tr>{{/tokens}}
          </tbody>
        </table>
        <section aria-labelledby="add-token-title">
        <h2 id="add-token-title">Create a token</h2>
        <form method="post" action="/ui/tokens" class="card">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <p><label for="tname">Name</label><input id="tname" name="name" required></p>
          <p><label for="tscope">Scope</label><select id="tscope" name="scope"><option>readonly</option><option>monitor</option><option>admin</option></select></p>
          <p><label for="texp">Expires in</label><input id="texp" name="expires_in" value="90d" aria-describedby="texp-help"> <small id="texp-help">30d, 12h, 90m or never</small></p>
          <p><button type="submit">Create token</button></p>
        </form>
        </section>
        {{> footer}}
        """

    static let servers = """
        {{> header}}
        <section aria-labelledby="key-title">
        <h2 id="key-title">The controller's SSH key</h2>
        {{#key}}<p>Servers let the controller in with this key (root's, or a sudoer's, <code>~/.ssh/authorized_keys</code>):</p>
        <p><code id="ssh-key">{{publicKey}}</code></p><p class="muted">Fingerprint <span id="ssh-key-fingerprint">{{fingerprint}}</span></p>{{/key}}
        {{^key}}<form method="post" action="/ui/servers/key" class="card"><input type="hidden" name="_csrf" value="{{csrf}}">
          <p>The controller has no SSH key yet.</p><p><button type="submit" id="make-key">Make the controller's SSH key</button></p></form>{{/key}}
        <h3>Or install it with a one-time password</h3>
        <p>The password is used for one login and kept nowhere. A server with no pinned host key needs its fingerprint (on its console: <code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</code>), or trust on first use.</p>
        <form method="post" action="/ui/servers/install-key" class="card" autocomplete="off">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <p><label for="ktarget">Login</label><input id="ktarget" name="target" required placeholder="root@203.0.113.7[:22]"></p>
          <p><label for="kpassword">Password</label><input id="kpassword" name="password" type="password" required autocomplete="off"></p>
          <p><label for="khostkey">Host key</label><input id="khostkey" name="host_key" placeholder="SHA256:… (if not pinned yet)"></p>
          <p><label for="ktofu">First use</label><input id="ktofu" type="checkbox" name="trust_first_use" value="true"> <small>accept whatever host key answers (trust on first use)</small></p>
          <p><button type="submit">Install the key</button></p>
        </form>
        </section>
        <section aria-labelledby="agents-title">
        <h2 id="agents-title">Agents installed over SSH</h2>
        <table>
          <thead><tr><th scope="col">Agent</th><th scope="col">Kind</th><th scope="col">Login</th><th scope="col">Package</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
          {{#agents}}<tr id="agent-{{id}}"><th scope="row">{{name}}</th><td>{{kind}}</td><td>{{target}}</td><td>{{version}}</td>
            <td class="actions"><form method="post" action="/ui/servers/{{kind}}s/{{id}}/start"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" aria-label="Start {{name}}">Start</button></form>
            <form method="post" action="/ui/servers/{{kind}}s/{{id}}/stop"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="danger" aria-label="Stop {{name}}">Stop</button></form>
            <form method="post" action="/ui/servers/{{kind}}s/{{id}}/update"><input type="hidden" name="_csrf" value="{{csrf}}"><select name="package" aria-label="Package for {{name}}" required>{{#packages}}<option>{{.}}</option>{{/packages}}</select> <button type="submit" aria-label="Update {{name}}">Update</button></form></td></tr>{{/agents}}
          {{^agents}}<tr><td colspan="5">No agent was installed over SSH.</td></tr>{{/agents}}
          </tbody>
        </table>
        </section>
        <section aria-labelledby="add-node-title">
        <h2 id="add-node-title">Add a node over SSH</h2>
        <p>Packages come from <code>{{packageDirectory}}</code> on the controller: copy <code>pharos-node_*.deb</code> and <code>pharos-relay_*.deb</code> there first.</p>
        <form method="post" action="/ui/servers/nodes" class="card">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <p><label for="ntarget">Login</label><input id="ntarget" name="target" required placeholder="root@203.0.113.7[:22]"></p>
          <p><label for="npackage">Package</label><select id="npackage" name="package" required>{{#nodePackages}}<option>{{.}}</option>{{/nodePackages}}</select></p>
          <p><label for="nname">Name</label><input id="nname" name="name" placeholder="the host (optional)"></p>
          <p><label for="nregion">Region</label><input id="nregion" name="region"></p>
          <p><label for="naddr">Control address</label><input id="naddr" name="addr" placeholder="HOST:8444 (optional)"></p>
          <p><label for="nwg">AmneziaWG port</label><input id="nwg" name="wg_port" inputmode="numeric" placeholder="51820"></p>
          <p><label for="nlisten">Listen port</label><input id="nlisten" name="listen_port" inputmode="numeric" placeholder="behind a port-forwarding NAT only"></p>
          <p><button type="submit">Install and enroll the node</button></p>
        </form>
        </section>
        <section aria-labelledby="add-relay-title">
        <h2 id="add-relay-title">Add a relay over SSH</h2>
        <form method="post" action="/ui/servers/relays" class="card">
          <input type="hidden" name="_csrf" value="{{csrf}}">
          <p><label for="rtarget">Login</label><input id="rtarget" name="target" required placeholder="root@203.0.113.8[:22]"></p>
          <p><label for="rpackage">Package</label><select id="rpackage" name="package" required>{{#relayPackages}}<option>{{.}}</option>{{/relayPackages}}</select></p>
          <p><label for="rhostname">Hostname</label><input id="rhostname" name="hostname" required placeholder="relay.example.com"></p>
          <p><label for="rendpoint">Tunnel endpoint</label><input id="rendpoint" name="endpoint" placeholder="HOST:8444 (optional)"></p>
          <p><label for="rpublic">Public address</label><input id="rpublic" name="public_addr" placeholder="HOSTNAME:8443 (optional)"></p>
          <p><label for="rclient">Client listen port</label><input id="rclient" name="client_listen_port" inputmode="numeric" placeholder="behind a NAT only"></p>
          <p><label for="rtunnel">Tunnel listen port</label><input id="rtunnel" name="tunnel_listen_port" inputmode="numeric" placeholder="behind a NAT only"></p>
          <p><button type="submit">Install and enroll the relay</button></p>
        </form>
        </section>
        <section aria-labelledby="pins-title">
        <h2 id="pins-title">Pinned host keys</h2>
        <table>
          <thead><tr><th scope="col">Host</th><th scope="col">Type</th><th scope="col">Fingerprint</th><th scope="col">Pinned</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
          {{#pins}}<tr><th scope="row">{{host}}</th><td>{{type}}</td><td><code>{{fingerprint}}</code></td><td>{{pinned}}</td>
            <td><form method="post" action="/ui/servers/pins/forget"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="host" value="{{host}}"><button type="submit" class="danger" aria-label="Forget the key of {{host}}">Forget</button></form></td></tr>{{/pins}}
          {{^pins}}<tr><td colspan="5">No host key is pinned yet.</td></tr>{{/pins}}
          </tbody>
        </table>
        </section>
        {{> footer}}
        """

    static let notFound = """
        {{> header}}
        <p>There is no such page. <a href="/ui/">Back to the fleet</a>.</p>
        {{> footer}}
        """
}
