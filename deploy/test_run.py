"""`make run` end to end: deploy/run.sh starts the local stack (PostgreSQL,
Redis, tollgate-admin with the dashboard, nginx with the module in front of
the WebDAV storage), the lines it prints work, each mode's gateway behaves
as described, and a signal or a piece that cannot start stops everything
it started and removes its temporary folder.

Run with: python3 -m pytest -q deploy/test_run.py
The module, tollgate-admin and the dashboard must be built (`make module
admin web`), or run.sh builds them first.
"""

import os
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest
import redis
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_SH = os.path.join(ROOT, "deploy", "run.sh")
READY = "Ctrl-C stops the stack"
PASSWORD = "run test password"
PORT_VARS = ("TOLLGATE_PORT", "TOLLGATE_STORAGE_PORT", "TOLLGATE_ADMIN_PORT",
             "TOLLGATE_REDIS_PORT", "TOLLGATE_PG_PORT")
# a stack takes a few seconds; builds run first when one is missing
START_S = 240
STOP_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pids_under(prefix):
    """PIDs of processes whose command line names the folder: nginx (-p),
    postgres (-D, and its children's titles carry the folder's name as
    cluster_name), the admin daemon's copy, runuser."""
    name = os.path.basename(prefix)
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if name in cmdline:
            pids.append(int(pid))
    return pids


def run_folders():
    return {d for d in os.listdir("/tmp") if d.startswith("tollgate-run.")}


class Stack:
    """deploy/run.sh in its own session, as a terminal would run it."""

    def __init__(self, tmp_path, mode="standalone", **env_extra):
        self.ports = {var: free_port() for var in PORT_VARS}
        env = dict(os.environ, TOLLGATE_MODE=mode,
                   TOLLGATE_ADMIN_PASSWORD=PASSWORD)
        for var in ("TOLLGATE_ADMIN_USER", "TOLLGATE_MODULE",
                    "TOLLGATE_ADMIN_BIN", "TOLLGATE_DASHBOARD"):
            env.pop(var, None)
        env.update({var: str(port) for var, port in self.ports.items()})
        env.update(env_extra)
        self.url = "http://127.0.0.1:%d" % self.ports["TOLLGATE_PORT"]
        self.admin_url = "http://127.0.0.1:%d" % \
            self.ports["TOLLGATE_ADMIN_PORT"]
        self.out_path = tmp_path / ("run-%s.out" % uuid.uuid4().hex[:8])
        with open(self.out_path, "w") as out:
            self.proc = subprocess.Popen(
                ["bash", RUN_SH], env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.prefix = None

    def output(self):
        return self.out_path.read_text()

    def wait_ready(self, seconds=START_S):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.output()
            if READY in text:
                self.prefix = re.search(r"/tmp/tollgate-run\.\w+",
                                        text).group(0)
                return
            if self.proc.poll() is not None:
                pytest.fail("run.sh exited with %d:\n%s"
                            % (self.proc.returncode, text))
            time.sleep(0.2)
        pytest.fail("run.sh not ready after %d s:\n%s"
                    % (seconds, self.output()))

    def wait_exit(self, seconds=STOP_S):
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pytest.fail("run.sh still running after %d s:\n%s"
                        % (seconds, self.output()))

    def signal_group(self, sig):
        os.killpg(self.proc.pid, sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def assert_all_gone(self):
        assert not os.path.exists(self.prefix)
        assert pids_under(self.prefix) == []
        assert [var for var, port in self.ports.items()
                if port_open(port)] == []

    def log(self, name):
        with open(os.path.join(self.prefix, "logs", name)) as f:
            return f.read()

    def admin_session(self):
        r = requests.post(self.admin_url + "/api/v1/auth/login",
                          json={"username": "admin", "password": PASSWORD},
                          timeout=10)
        assert r.status_code == 200, r.text
        s = requests.Session()
        s.headers["Authorization"] = "Bearer " + r.json()["token"]
        return s


def started(tmp_path, mode):
    stack = Stack(tmp_path, mode)
    try:
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack


def check_logs_and_stop(stack):
    """The logs hold no failure of the run, then the stack stops."""
    try:
        if os.path.exists(stack.prefix):
            bad = [line for line in stack.log("error.log").splitlines()
                   if re.search(r"\[(alert|crit|emerg)\]", line)]
            bad += [line for line in stack.log("admin.log").splitlines()
                    if "level=error" in line]
            assert bad == []
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    stack = started(tmp_path_factory.mktemp("standalone"), "standalone")
    yield stack
    check_logs_and_stop(stack)


@pytest.fixture(scope="module")
def distributed(tmp_path_factory):
    stack = started(tmp_path_factory.mktemp("distributed"), "distributed")
    yield stack
    check_logs_and_stop(stack)


@pytest.fixture
def stack(tmp_path):
    """A stack of the test's own, for a test that stops it."""
    s = started(tmp_path, "standalone")
    yield s
    s.stop()


# the gateway, standalone ---------------------------------------------------

def test_objects_are_stored_read_and_deleted_through_the_gateway(standalone):
    url = standalone.url + "/bucket/a/b/object.bin"
    body = os.urandom(70000)        # two 64 KiB quanta: cost 2 + 2
    web = {"X-App-Id": "web"}

    r = requests.put(url, data=body, headers=web)
    assert r.status_code == 201
    stored = os.path.join(standalone.prefix, "data", "bucket/a/b/object.bin")
    with open(stored, "rb") as f:
        assert f.read() == body

    r = requests.get(url, headers=web)
    assert r.status_code == 200
    assert r.content == body

    assert requests.delete(url, headers=web).status_code == 204
    assert not os.path.exists(stored)
    assert requests.get(url, headers=web).status_code == 404


def test_a_small_quota_is_exhausted_by_a_loop_and_answered_429(standalone):
    url = standalone.url + "/bucket/missing"
    codes = []

    with requests.Session() as s:
        for _ in range(12):
            r = s.get(url, headers={"X-App-Id": "analytics"})
            codes.append(r.status_code)
            if r.status_code == 429:
                last_429 = r

    # analytics holds 10 tokens and a GET costs 2: the upstream's 404
    # comes back until the tokens are spent, then the limiter answers
    assert codes[0] == 404
    assert 429 in codes
    assert codes.index(429) <= 7
    assert int(last_429.headers["Retry-After"]) >= 1
    assert "RateLimit" in last_429.headers


def test_requests_without_a_declared_application_are_refused(standalone):
    url = standalone.url + "/bucket/x"
    assert requests.get(url).status_code == 400
    assert requests.get(url, headers={"X-App-Id": "nobody"}).status_code \
        == 403


def test_status_and_metrics_show_the_sample_applications(standalone):
    requests.get(standalone.url + "/x", headers={"X-App-Id": "backup"})

    status = requests.get(standalone.url + "/tollgate/status")
    assert status.status_code == 200
    apps = {a["app_id"] for z in status.json()["zones"] for a in z["apps"]}
    assert {"web", "backup", "analytics"} <= apps

    metrics = requests.get(standalone.url + "/metrics")
    assert metrics.status_code == 200
    assert re.search(r'tollgate_requests_total\{[^}]*app="backup",'
                     r'decision="allowed"\} [1-9]', metrics.text)


def test_the_standalone_gateway_has_no_redis_and_no_control_endpoint(
        standalone):
    with open(os.path.join(standalone.prefix, "nginx.conf")) as f:
        conf = f.read()
    assert "tollgate_redis" not in re.sub(r"#.*", "", conf)
    r = requests.get(standalone.url + "/tollgate/control",
                     headers={"X-App-Id": "web"})
    assert r.status_code == 404     # the storage's answer, not a control's


# the rest of the stack -----------------------------------------------------

def test_the_admin_answers_healthz_with_postgres_and_redis_up(standalone):
    r = requests.get(standalone.admin_url + "/healthz", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


def test_the_printed_login_and_apps_lines_work(standalone):
    out = standalone.output()
    assert 'user "admin", password "%s"' % PASSWORD in out
    login = re.search(r"^\s*(token=\$\(curl .*/api/v1/auth/login.*)$", out,
                      re.M).group(1)
    apps = re.search(r"^\s*(curl .*Bearer \$token.*/api/v1/apps)$", out,
                     re.M).group(1)

    r = subprocess.run(["bash", "-c", "set -e; %s; echo \"$token\"; %s"
                        % (login, apps)],
                       capture_output=True, text=True, timeout=30)

    assert r.returncode == 0, r.stderr
    token, listing = r.stdout.split("\n", 1)
    assert token.count(".") == 2          # a JWT
    assert '"items"' in listing


def test_the_dashboard_is_served_at_root_with_its_assets(standalone):
    r = requests.get(standalone.admin_url + "/", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<title>Tollgate</title>" in r.text

    scripts = re.findall(r'src="(/[^"]+\.js)"', r.text)
    assert scripts
    js = requests.get(standalone.admin_url + scripts[0], timeout=5)
    assert js.status_code == 200
    assert len(js.content) > 1000


def test_the_printed_redis_and_postgres_are_those_the_admin_uses(standalone):
    redis_port = standalone.ports["TOLLGATE_REDIS_PORT"]
    pg_port = standalone.ports["TOLLGATE_PG_PORT"]
    out = standalone.output()
    assert "127.0.0.1:%d" % redis_port in out
    assert "127.0.0.1:%d" % pg_port in out

    assert redis.Redis(port=redis_port).ping()

    # the admin created its user in this database at start
    r = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-h", "127.0.0.1",
         "-p", str(pg_port), "-U", "postgres", "-d", "tollgate", "-At",
         "-c", "SELECT role FROM users WHERE username = 'admin'"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "admin"


# distributed mode ----------------------------------------------------------

def test_distributed_mode_registers_the_sample_applications(distributed):
    api = distributed.admin_session()

    r = api.get(distributed.admin_url + "/api/v1/apps")
    assert r.status_code == 200
    apps = {a["app_id"]: a for a in r.json()["items"]}
    assert apps["web"]["cluster_id"] == "local"
    assert apps["web"]["guaranteed_quota"] == 200
    assert apps["backup"]["max_borrow"] == 100
    assert apps["analytics"]["priority"] == 2

    r = api.get(distributed.admin_url + "/api/v1/clusters/local")
    assert r.status_code == 200
    assert r.json()["capacity"] == 1000

    r = requests.get(distributed.url + "/x", headers={"X-App-Id": "web"})
    assert r.status_code == 404     # admitted, answered by the storage


def test_distributed_gateway_obeys_an_app_created_through_the_admin(
        distributed):
    api = distributed.admin_session()
    app = "made-" + uuid.uuid4().hex[:8]
    url = distributed.url + "/bucket/missing"
    headers = {"X-App-Id": app}

    assert requests.get(url, headers=headers).status_code == 403

    # 2 tokens/s, a bucket of 2: one GET, then a 429
    r = api.post(distributed.admin_url + "/api/v1/apps",
                 json={"app_id": app, "cluster_id": "local",
                       "guaranteed_quota": 2, "burst_quota": 2})
    assert r.status_code == 201, r.text
    created = time.monotonic()

    codes = []
    while time.monotonic() - created < 5:
        codes.append(requests.get(url, headers=headers).status_code)
        if codes[-1] != 403:
            break
        time.sleep(0.1)
    assert codes[-1] == 404, "still %s after 5 s" % codes[-1]

    codes = [requests.get(url, headers=headers).status_code
             for _ in range(5)]
    assert 429 in codes


def test_distributed_gateway_reports_to_the_admin_and_opens_control(
        distributed):
    r = requests.get(distributed.url + "/tollgate/control")
    assert r.status_code == 200
    assert r.json()["gateway_id"] == "local-1"

    api = distributed.admin_session()
    deadline = time.monotonic() + 10
    while True:
        r = api.get(distributed.admin_url + "/api/v1/gateways")
        assert r.status_code == 200
        alive = [g["gateway_id"] for g in r.json()["items"] if g["alive"]]
        if "local-1" in alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert alive == ["local-1"]


# stopping ------------------------------------------------------------------

def test_ctrl_c_stops_every_server_and_removes_the_folder(stack):
    assert pids_under(stack.prefix)

    # a terminal's Ctrl-C signals the whole foreground process group
    stack.signal_group(signal.SIGINT)
    assert stack.wait_exit() == 130

    stack.assert_all_gone()
    with pytest.raises(requests.ConnectionError):
        requests.get(stack.url + "/", timeout=2)


def test_sigterm_to_the_script_alone_stops_every_server(stack):
    stack.proc.terminate()
    assert stack.wait_exit() == 143

    stack.assert_all_gone()


def test_a_server_that_dies_is_named_and_the_rest_stopped(stack):
    redis_pid = int(re.search(r"redis-server, PID (\d+)",
                              stack.output()).group(1))

    os.kill(redis_pid, signal.SIGKILL)

    assert stack.wait_exit() == 1
    assert "redis (PID %d) exited" % redis_pid in stack.output()
    stack.assert_all_gone()


def failed_start(tmp_path, **env):
    """run.sh with env, which must fail: its output.  Nothing is left
    behind: no folder, no server on a port but those env holds."""
    before = run_folders()
    stack = Stack(tmp_path, **env)

    assert stack.wait_exit() == 1
    assert run_folders() - before == set()
    assert [var for var, port in stack.ports.items()
            if var not in env and port_open(port)] == []
    return stack.output()


@pytest.mark.parametrize("var", ["TOLLGATE_PORT", "TOLLGATE_ADMIN_PORT"])
def test_a_busy_port_is_reported_and_nothing_is_left_behind(tmp_path, var):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        output = failed_start(tmp_path, **{var: str(port)})

    assert "127.0.0.1:%d is in use" % port in output


def test_a_missing_build_is_named(tmp_path):
    output = failed_start(tmp_path,
                          TOLLGATE_ADMIN_BIN="/nonexistent/tollgate-admin")

    assert "/nonexistent/tollgate-admin is missing" in output


def test_a_piece_that_cannot_start_is_named_and_the_rest_stopped(tmp_path):
    # PostgreSQL and Redis start before the admin daemon, which exits
    output = failed_start(tmp_path, TOLLGATE_ADMIN_BIN="/bin/false")

    assert "cannot start tollgate-admin" in output
    assert "it exited at start" in output
