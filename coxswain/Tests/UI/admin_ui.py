#!/usr/bin/python3
"""The admin web UI in a real headless browser (Debian's chromium + chromedriver via
python3-selenium), against a real `cox serve` and a real `node` process.

Logs in, sees the fleet, adds a user and creates a join link (QR on the page), watches a live
event arrive when the node is killed, acknowledges the alert, verifies the audit chain and
creates an API token. Screenshots of every page go to --out. Exit status 0 when every step
passed; each step prints one line.

    admin_ui.py --cox .build-shared/debug/cox --node .build-shared/debug/node --out test-artifacts/ui
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    def __init__(self, cox, node):
        self.dir = tempfile.mkdtemp(prefix="pharos-ui-")
        self.cox, self.node = cox, node
        self.ui_port, self.node_port = free_port(), free_port()
        self.env = dict(os.environ, COX_CONFIG=f"{self.dir}/cox.yaml", COX_UI_LISTEN=f"127.0.0.1:{self.ui_port}",
                        COX_ACCOUNTS_SYNC="false", COX_RELAY_PUBLIC_ENDPOINT="relay.example.com:8443",
                        COX_FLEET_RECONCILE_INTERVAL="1", COX_FLEET_UNREACHABLE_AFTER_POLLS="1",
                        COX_FLEET_NODE_CALL_TIMEOUT_SECONDS="1")
        self.processes = []

    def run(self, *args, stdin=None):
        done = subprocess.run(args, env=self.env, input=stdin, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self, log, *args):
        out = open(f"{self.dir}/{log}", "w")
        process = subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def up(self):
        self.run(self.cox, "init", "--personal")
        self.run(self.cox, "users", "add", "Ops", "--email", "ops@example.com", "--admin")
        self.run(self.cox, "users", "passwd", "ops@example.com", stdin=PASSWORD + "\n")
        node_dir = f"{self.dir}/n1"
        os.makedirs(node_dir)
        with open(f"{self.dir}/n1.csr", "w") as f:
            f.write(self.run(self.node, "gen-csr", "--config-dir", node_dir))
        self.run(self.cox, "nodes", "enroll", "--csr", f"{self.dir}/n1.csr", "--addr", f"127.0.0.1:{self.node_port}",
                 "--name", "n1", "--region", "eu-test", "--out", node_dir)
        with open(f"{node_dir}/node.yaml", "w") as f:
            f.write(f"control:\n  listen_addr: 127.0.0.1:{self.node_port}\ndataplane:\n  backend: memory\n")
        self.node_process = self.start("node.log", self.node, "run", "--config-dir", node_dir)
        wait_for(lambda: connectable(self.node_port), "the node's control port")
        self.run(self.cox, "nodes", "status", "n1")
        self.start("cox.log", self.cox, "serve")
        wait_for(lambda: healthy(self.ui_port), "cox serve's admin API")

    def down(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_package(work, name, version, into):
    """A minimal .deb named as the controller's package directory wants it."""
    os.makedirs(f"{work}/DEBIAN", exist_ok=True)
    with open(f"{work}/DEBIAN/control", "w") as f:
        f.write(f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.com>\nDescription: t\n")
    os.makedirs(into, exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", work, f"{into}/{name}_{version}_all.deb"], check=True, capture_output=True)


def connectable(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def healthy(port):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200
    except OSError:
        return False


def wait_for(check, what, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cox", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    fleet = Fleet(os.path.abspath(args.cox), os.path.abspath(args.node))
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900"]:
        options.add_argument(flag)
    browser = None
    started = time.time()
    try:
        fleet.up()
        browser = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
        wait = WebDriverWait(browser, 20)
        base = f"http://127.0.0.1:{fleet.ui_port}"

        def shot(name):
            browser.save_screenshot(f"{args.out}/{name}.png")

        def step(text):
            print(f"  ok   {text} ({time.time() - started:.1f} s)", flush=True)

        browser.get(base + "/ui/")
        wait.until(EC.url_contains("/ui/login"))
        shot("01-login")
        browser.find_element(By.ID, "email").send_keys("ops@example.com")
        browser.find_element(By.ID, "password").send_keys("a wrong password")
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".error"), "wrong e-mail or password"))
        step("a wrong password is refused with a sentence on the login page")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(EC.presence_of_element_located((By.ID, "nodes-title")))
        row = browser.find_element(By.CSS_SELECTOR, "tbody tr[id^=node-]")
        assert "n1" in row.text and "active" in row.text and "eu-test" in row.text, row.text
        wait.until(EC.text_to_be_present_in_element((By.ID, "live-state"), "connected"))
        shot("02-fleet")
        step("logged in; the fleet shows node n1 active, the live feed is connected")

        browser.find_element(By.LINK_TEXT, "Users").click()
        browser.find_element(By.ID, "name").send_keys("Alice")
        browser.find_element(By.ID, "email").send_keys("alice@example.com")
        browser.find_element(By.XPATH, "//button[text()='Add user']").click()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "added alice@example.com"))
        shot("03-users")
        browser.find_element(By.CSS_SELECTOR, "button[aria-label='Create a join link for Alice']").click()
        link = wait.until(EC.presence_of_element_located((By.ID, "join-link"))).text
        assert link.startswith("pharosvpn://enroll?ca=") and "relay=relay.example.com%3A8443" in link, link
        assert "ops@example.com" in browser.find_element(By.CSS_SELECTOR, "header").text, "the header must still name the admin"
        qr = browser.find_element(By.CSS_SELECTOR, "img[alt^='QR code']")
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", qr) == 512
        shot("04-invite")
        step("added a user and created a join link; its 512 px QR code is on the page")

        browser.find_element(By.LINK_TEXT, "Fleet").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "live-state"), "connected"))
        fleet.node_process.kill()
        wait.until(EC.text_to_be_present_in_element((By.ID, "live-events"), "node n1 is unreachable"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "live-events"), "alert fleet_health"))
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-node-status]"), "unreachable"))
        shot("05-live-event")
        step("the node was killed: its status and a fleet_health alert arrived live, without a reload")

        browser.find_element(By.LINK_TEXT, "Alerts").click()
        browser.find_element(By.XPATH, "//button[text()='Acknowledge']").click()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "fleet_health acknowledged"))
        shot("06-alerts")
        step("acknowledged the alert")

        browser.find_element(By.LINK_TEXT, "Audit log").click()
        browser.find_element(By.XPATH, "//button[text()='Verify chain']").click()
        verdict = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".verdict"))).text
        assert verdict.startswith("intact"), verdict
        body = browser.find_element(By.TAG_NAME, "tbody").text
        for action in ["alert.ack", "enroll.invite", "user.add", "auth.login"]:
            assert action in body, f"{action} missing from the audit page"
        shot("07-audit")
        step(f"the audit log shows the UI's actions and verifies: {verdict}")

        browser.find_element(By.LINK_TEXT, "API tokens").click()
        browser.find_element(By.ID, "tname").send_keys("grafana")
        browser.find_element(By.XPATH, "//select[@id='tscope']/option[text()='monitor']").click()
        browser.find_element(By.XPATH, "//button[text()='Create token']").click()
        secret = wait.until(EC.presence_of_element_located((By.ID, "new-token"))).text
        assert secret.startswith("cox_mon_"), secret
        request = urllib.request.Request(f"{base}/api/sessions", headers={"Authorization": f"Bearer {secret}"})
        assert urllib.request.urlopen(request, timeout=5).status == 200
        shot("08-tokens")
        step("created a monitor token on the page; it works against the API")

        browser.find_element(By.LINK_TEXT, "Sessions").click()
        wait.until(EC.presence_of_element_located((By.ID, "open-title")))
        shot("09-sessions")
        browser.find_element(By.LINK_TEXT, "Profiles").click()
        shot("10-profiles")
        browser.find_element(By.LINK_TEXT, "Paths").click()
        wait.until(EC.presence_of_element_located((By.ID, "add-path-title")))
        # One node: a path of n1 to n1 is refused, and the page says why.
        browser.find_element(By.ID, "pathname").send_keys("loop")
        browser.find_element(By.XPATH, "//button[text()='Add path']").click()
        refusal = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".error"))).text
        assert "appears twice" in refusal, refusal
        shot("11-paths")
        step(f"the paths page refuses a path through one node twice: {refusal}")

        # Servers: the SSH key is made on a click (reading the page made none), a password is not
        # sent to a host whose key nobody vouched for, and the add-node form reaches SSH.
        packages = f"{fleet.dir}/state/packages"
        make_package(f"{fleet.dir}/pkg", "pharos-node", "9.9.9", packages)
        browser.find_element(By.LINK_TEXT, "Servers").click()
        wait.until(EC.presence_of_element_located((By.ID, "make-key")))
        assert "No agent was installed over SSH." in browser.page_source
        browser.find_element(By.ID, "make-key").click()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "the controller's SSH key is SHA256:"))
        key = browser.find_element(By.ID, "ssh-key").text
        assert key.startswith("ssh-ed25519 "), key
        browser.find_element(By.ID, "ktarget").send_keys(f"root@127.0.0.1:{free_port()}")
        browser.find_element(By.ID, "kpassword").send_keys("not sent anywhere")
        browser.find_element(By.XPATH, "//button[text()='Install the key']").click()
        refusal = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".error"))).text
        assert "no host key is pinned" in refusal and "--host-key" in refusal, refusal
        closed = free_port()
        browser.find_element(By.ID, "ntarget").send_keys(f"root@127.0.0.1:{closed}")
        browser.find_element(By.XPATH, "//select[@id='npackage']/option[text()='pharos-node_9.9.9_all.deb']").click()
        browser.find_element(By.XPATH, "//button[text()='Install and enroll the node']").click()
        # The page before had an error line too: wait for the new one's text, not for any .error.
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".error"), f"port {closed}"))
        unreachable = browser.find_element(By.CSS_SELECTOR, ".error").text
        assert f"cannot reach root@127.0.0.1:{closed} over SSH" in unreachable and "(ssh exited 255)" in unreachable, unreachable
        shot("12-servers")
        step(f"the servers page made the SSH key on a click, refused a password to an unvouched host, and its add-node form reached SSH: {unreachable}")
        print(f"==> UI test passed in {time.time() - started:.1f} s; screenshots in {args.out}")
    except Exception as error:  # noqa: BLE001 - report any failure with the page and logs
        print(f"  FAIL {error!r}", file=sys.stderr)
        if browser:
            browser.save_screenshot(f"{args.out}/failure.png")
            print(f"  page: {browser.current_url}\n{browser.find_element(By.TAG_NAME, 'body').text[:2000]}", file=sys.stderr)
        for log in ["cox.log", "node.log"]:
            path = f"{fleet.dir}/{log}"
            if os.path.exists(path):
                print(f"--- {log}\n" + open(path).read()[-3000:], file=sys.stderr)
        sys.exit(1)
    finally:
        if browser:
            browser.quit()
        fleet.down()


if __name__ == "__main__":
    main()
