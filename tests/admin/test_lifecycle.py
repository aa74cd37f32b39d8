"""Start-up re-sync, health, configuration precedence and shutdown."""

import os
import signal
import subprocess
import tempfile
import time

import requests

from conftest import ADMIN_BIN, ADMIN_PASSWORD, ADMIN_USER, Admin, wait_for


def test_healthz_reports_both_stores(admin):
    r = requests.get(admin.base + "/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


def test_restart_resyncs_an_emptied_redis(pg, rd, api, uid, cluster):
    api.post("/apps", json={"app_id": "s-" + uid, "cluster_id": cluster,
                            "guaranteed_quota": 5, "burst_quota": 6})
    rd.client.flushall()
    # a stale application that PostgreSQL does not have
    rd.client.sadd(f"tg:{{{cluster}}}:apps", "ghost-" + uid)
    rd.client.hset(f"tg:{{{cluster}}}:app:ghost-{uid}", "version", 1)

    second = Admin(pg, rd)
    second.start()
    try:
        h = rd.client.hgetall(f"tg:{{{cluster}}}:app:s-{uid}")
        assert h["burst_quota"] == "6" and h["cluster_id"] == cluster
        assert rd.client.hget(f"tg:{{{cluster}}}:cluster", "capacity") == "10000"
        assert rd.client.hget("tg:profiles", "standard") == "2,1,65536"
        assert "ghost-" + uid not in rd.client.smembers(f"tg:{{{cluster}}}:apps")
        assert not rd.client.exists(f"tg:{{{cluster}}}:app:ghost-{uid}")
    finally:
        assert second.stop() == 0


def test_running_daemon_resyncs_after_redis_restart(api, rd, uid, cluster):
    api.post("/apps", json={"app_id": "t-" + uid, "cluster_id": cluster,
                            "guaranteed_quota": 5, "burst_quota": 6})
    rd.restart()
    key = f"tg:{{{cluster}}}:app:t-{uid}"
    deadline = time.time() + 10
    while time.time() < deadline and not rd.client.exists(key):
        time.sleep(0.2)
    assert rd.client.hget(key, "guaranteed_quota") == "5"


def test_config_file_and_environment_precedence(pg, rd):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("# file settings; the environment wins\n"
                "listen = 127.0.0.1:1\n"
                "jwt_secret = " + "f" * 40 + "\n"
                "token_ttl_s = 120\n")
    a = Admin(pg, rd)
    a.env["TOLLGATE_JWT_SECRET"] = "e" * 40
    try:
        a.log = open(a.log_path, "w")
        a.proc = subprocess.Popen([ADMIN_BIN, "--config", f.name], env=a.env,
                                  stdout=subprocess.DEVNULL, stderr=a.log)
        wait_for(lambda: requests.get(a.base + "/healthz", timeout=1)
                 .status_code == 200, what="tollgate-admin")
        r = requests.post(a.base + "/api/v1/auth/login",
                          json={"username": ADMIN_USER, "password": ADMIN_PASSWORD})
        assert r.json()["expires_at"] - time.time() <= 121    # from the file
    finally:
        assert a.stop() == 0
        os.unlink(f.name)
    lines = a.log_text().splitlines()
    assert lines and all(line.startswith("ts=") and " level=" in line
                         for line in lines), lines


def test_sigterm_stops_gracefully(pg, rd):
    a = Admin(pg, rd)
    a.start()
    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(timeout=10) == 0
    assert 'msg="shutting down"' in a.log_text()
