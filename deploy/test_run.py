"""`make run` end to end: deploy/run.sh starts nginx with the module in
front of the WebDAV storage, the curl lines it prints work, and a signal
stops everything it started and removes its temporary folder.

Run with: python3 -m pytest -q deploy/test_run.py
The module must be built (`make module`), or named by TOLLGATE_MODULE.
"""

import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_SH = os.path.join(ROOT, "deploy", "run.sh")
READY = "Ctrl-C stops nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_pids_under(prefix):
    """PIDs of processes whose command line names the prefix."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "nginx" in cmdline and prefix in cmdline:
            pids.append(int(pid))
    return pids


class Gateway:
    """deploy/run.sh in its own session, as a terminal would run it."""

    def __init__(self, tmp_path, port=None, storage_port=None):
        self.port = port or free_port()
        self.storage_port = storage_port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.out_path = tmp_path / "run.out"
        env = dict(os.environ, TOLLGATE_PORT=str(self.port),
                   TOLLGATE_STORAGE_PORT=str(self.storage_port))
        with open(self.out_path, "w") as out:
            self.proc = subprocess.Popen(
                ["bash", RUN_SH], env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.prefix = None

    def output(self):
        return self.out_path.read_text()

    def wait_ready(self, seconds=180):
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

    def signal_group(self, sig):
        os.killpg(self.proc.pid, sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def gateway(tmp_path):
    gw = Gateway(tmp_path)
    try:
        gw.wait_ready()
        yield gw
        if os.path.exists(gw.prefix):
            with open(os.path.join(gw.prefix, "logs", "error.log")) as f:
                bad = [line for line in f
                       if re.search(r"\[(alert|crit|emerg)\]", line)]
            assert bad == []
    finally:
        gw.stop()


def test_objects_are_stored_read_and_deleted_through_the_gateway(gateway):
    url = gateway.url + "/bucket/a/b/object.bin"
    body = os.urandom(70000)        # two 64 KiB quanta: cost 2 + 2
    web = {"X-App-Id": "web"}

    r = requests.put(url, data=body, headers=web)
    assert r.status_code == 201
    stored = os.path.join(gateway.prefix, "data", "bucket/a/b/object.bin")
    with open(stored, "rb") as f:
        assert f.read() == body

    r = requests.get(url, headers=web)
    assert r.status_code == 200
    assert r.content == body

    assert requests.delete(url, headers=web).status_code == 204
    assert not os.path.exists(stored)
    assert requests.get(url, headers=web).status_code == 404


def test_a_small_quota_is_exhausted_by_a_loop_and_answered_429(gateway):
    url = gateway.url + "/bucket/missing"
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


def test_requests_without_a_declared_application_are_refused(gateway):
    url = gateway.url + "/bucket/x"
    assert requests.get(url).status_code == 400
    assert requests.get(url, headers={"X-App-Id": "nobody"}).status_code \
        == 403


def test_status_and_metrics_show_the_sample_applications(gateway):
    requests.get(gateway.url + "/x", headers={"X-App-Id": "backup"})

    status = requests.get(gateway.url + "/tollgate/status")
    assert status.status_code == 200
    apps = {a["app_id"] for z in status.json()["zones"] for a in z["apps"]}
    assert {"web", "backup", "analytics"} <= apps

    metrics = requests.get(gateway.url + "/metrics")
    assert metrics.status_code == 200
    assert re.search(r'tollgate_requests_total\{[^}]*app="backup",'
                     r'decision="allowed"\} [1-9]', metrics.text)


def test_ctrl_c_stops_nginx_and_removes_the_temporary_folder(gateway):
    assert nginx_pids_under(gateway.prefix)

    # a terminal's Ctrl-C signals the whole foreground process group
    gateway.signal_group(signal.SIGINT)
    assert gateway.proc.wait(timeout=20) == 130

    assert not os.path.exists(gateway.prefix)
    assert nginx_pids_under(gateway.prefix) == []
    with pytest.raises(requests.ConnectionError):
        requests.get(gateway.url + "/", timeout=2)


def test_sigterm_to_the_script_alone_stops_nginx_too(gateway):
    gateway.proc.terminate()
    assert gateway.proc.wait(timeout=20) == 143

    assert not os.path.exists(gateway.prefix)
    assert nginx_pids_under(gateway.prefix) == []


def test_a_busy_port_is_reported_and_nothing_is_left_behind(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        before = set(os.listdir("/tmp"))

        gw = Gateway(tmp_path, port=port)
        assert gw.proc.wait(timeout=120) == 1

    assert "127.0.0.1:%d is in use" % port in gw.output()
    left = {d for d in set(os.listdir("/tmp")) - before
            if d.startswith("tollgate-run.")}
    assert left == set()
