"""GET /api/v1/metrics/history from Prometheus: Debian's prometheus
scrapes a real gateway's /metrics, and an admin with
TOLLGATE_PROMETHEUS_URL asks it with query_range, without holding its
other requests while Prometheus thinks."""

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import Admin, free_port, stop, wait_for
from test_gateway import create_app, start_gateway, timed_requests

PROMETHEUS = "/usr/bin/prometheus"

SCRAPE = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gateway
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


class Prometheus:
    def __init__(self, gateway_port):
        self.dir = Path(tempfile.mkdtemp(prefix="tg-admin-prom-"))
        self.port = free_port()
        (self.dir / "prometheus.yml").write_text(
            SCRAPE.format(port=gateway_port))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir}/prometheus.yml",
             f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "log", "w"))
        wait_for(self.scraped, what="prometheus's first scrape")
        return self

    def scraped(self):
        targets = requests.get(self.url + "/api/v1/targets", timeout=1)
        return [t["health"] for t in targets.json()["data"]["activeTargets"]
                ] == ["up"]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc:
            stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class SilentServer:
    """Accepts TCP connections and never answers: a Prometheus that
    hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def admin_with(pg, rd):
    """Starts another tollgate-admin on the same database and Redis,
    with TOLLGATE_PROMETHEUS_URL set; returns a session on /api/v1."""
    started = []

    def start(url):
        a = Admin(pg, rd, extra_env={"TOLLGATE_PROMETHEUS_URL": url})
        started.append(a)
        a.start()
        s = a.session(a.login())
        s.base = a.base + "/api/v1"
        return s

    yield start
    for a in started:
        a.stop()
        Path(a.log_path).unlink(missing_ok=True)


def history(s, **params):
    return s.get(s.base + "/metrics/history", params=params, timeout=30)


def test_history_comes_from_prometheus_scraping_the_gateway(
        admin_with, api, rd, gateway, uid, cluster):
    app = "h-" + uid
    create_app(api, app, cluster, 20)
    gw = start_gateway(gateway, rd, cluster, "gw-h-" + uid)
    prom = Prometheus(gw.port).start()
    try:
        s = admin_with(prom.url)
        # 80 tokens/s against 20: most are refused, over a few scrapes
        replies = timed_requests(gw, app, 4, rate_rps=40)
        assert {200, 429} <= {status for _, status in replies}

        def points(metric):
            now = int(time.time())
            r = history(s, metric=metric, cluster_id=cluster, app_id=app,
                        start=now - 60, end=now, step=1)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["source"] == "prometheus", body
            values = [v for series in body["series"]
                      for _, v in series["points"]]
            return body, values

        deadline = time.monotonic() + 20
        while True:
            body, rps = points("requests_per_s")
            if rps and max(rps) > 0:
                break
            assert time.monotonic() < deadline, "prometheus has no rate"
            time.sleep(0.5)
        assert body["series"][0]["labels"] == {"cluster_id": cluster,
                                               "app_id": app}

        _, rejected = points("rejection_rate")
        assert rejected and 0 < max(rejected) < 1
        _, usage = points("usage_pct")
        assert usage and max(usage) > 0

        # balances are Redis's: the ring buffer answers
        r = history(s, metric="tokens", cluster_id=cluster)
        assert r.status_code == 200 and r.json()["source"] == "memory"
    finally:
        prom.stop()


def test_a_hung_prometheus_holds_only_the_request_that_asked(admin_with,
                                                             cluster):
    silent = SilentServer()
    try:
        s = admin_with(f"http://127.0.0.1:{silent.port}")
        result = {}

        def ask():
            started = time.monotonic()
            r = history(s, metric="requests_per_s", cluster_id=cluster)
            result["status"] = r.status_code
            result["took_s"] = time.monotonic() - started

        asker = threading.Thread(target=ask)
        asker.start()
        time.sleep(0.5)
        # meanwhile the daemon answers everything else at once
        for _ in range(5):
            started = time.monotonic()
            r = s.get(s.base + "/clusters/" + cluster, timeout=5)
            assert r.status_code == 200
            assert time.monotonic() - started < 0.5
        asker.join(30)
        assert result["status"] == 503 and 4 <= result["took_s"] <= 10, \
            result
    finally:
        silent.close()


def test_an_unreachable_prometheus_is_a_503(admin_with, cluster):
    s = admin_with(f"http://127.0.0.1:{free_port()}")
    r = history(s, metric="rejection_rate", cluster_id=cluster)
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
