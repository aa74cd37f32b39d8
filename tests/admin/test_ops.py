"""Emergency, degradation, borrow/repay, and the live views, at the Redis
level (tests/admin/test_gateway.py has them felt by a real gateway)."""

import hashlib
import json
import time
from pathlib import Path

import websocket

REDIS_DIR = Path(__file__).resolve().parents[2] / "redis"


def gateway_script_ran(rd, name):
    """True when Redis has run the gateways' text of redis/NAME.lua: the
    library, a newline, the script (docs/redis-scripts.md)."""
    text = (REDIS_DIR / "lib/tollgate.lua").read_text() + "\n" + \
        (REDIS_DIR / f"{name}.lua").read_text()
    return rd.client.script_exists(
        hashlib.sha1(text.encode()).hexdigest())[0]


def test_emergency_on_off_auto_through_the_gateway_script(api, rd, cluster):
    key = f"tg:{{{cluster}}}:emergency"
    before = int(rd.client.get(f"tg:{{{cluster}}}:version") or 0)

    r = api.post(f"/clusters/{cluster}/emergency",
                 json={"action": "on", "reason": "disk array rebuild",
                       "duration_s": 60})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True and r.json()["mode"] == "manual"
    h = rd.client.hgetall(key)
    assert h["active"] == "1" and h["mode"] == "manual"
    assert h["set_by"] == "root-admin" and h["reason"] == "disk array rebuild"
    assert 59_000 <= int(h["until_ms"]) - time.time() * 1000 <= 60_500
    assert int(rd.client.get(f"tg:{{{cluster}}}:version")) == before + 1
    assert api.get(f"/clusters/{cluster}").json()["emergency"]["active"] is True

    # "off" holds the usage trigger, so a busy cluster stays off
    r = api.post(f"/clusters/{cluster}/emergency", json={"enable": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert r.json()["hold_until_ms"] > time.time() * 1000 + 290_000
    h = rd.client.hgetall(key)
    assert h["active"] == "0" and "hold_until_ms" in h

    r = api.post(f"/clusters/{cluster}/emergency", json={"action": "auto"})
    assert r.status_code == 200 and r.json()["hold_until_ms"] == 0
    assert "hold_until_ms" not in rd.client.hgetall(key)

    types = [e["type"] for e in api.get("/events", params={
        "cluster_id": cluster}).json()["items"]]
    assert types[:3] == ["cluster.emergency_auto", "cluster.emergency_off",
                         "cluster.emergency_on"]
    stream = rd.client.xrange(f"tg:{{{cluster}}}:events")
    assert [e["action"] for _, e in stream
            if e["type"] == "emergency"] == ["on", "off", "auto"]
    assert stream[0][1]["who"] == "root-admin"
    assert gateway_script_ran(rd, "emergency")


def test_expired_emergency_reads_as_inactive(api, rd, cluster):
    rd.client.hset(f"tg:{{{cluster}}}:emergency",
                   mapping={"active": "1", "mode": "auto",
                            "until_ms": int(time.time() * 1000) - 1})
    assert api.get(f"/clusters/{cluster}").json()["emergency"]["active"] is False


def test_emergency_validation(api, cluster):
    assert api.post(f"/clusters/{cluster}/emergency",
                    json={"enable": "yes"}).status_code == 400
    assert api.post(f"/clusters/{cluster}/emergency",
                    json={"action": "maybe"}).status_code == 400
    assert api.post(f"/clusters/{cluster}/emergency",
                    json={"action": "on", "enable": True}).status_code == 400
    assert api.post(f"/clusters/{cluster}/emergency",
                    json={"enable": True, "duration_s": 0}).status_code == 400
    assert api.post("/clusters/nope-none/emergency",
                    json={"enable": True}).status_code == 404


def test_degradation_override_written_and_removed(api, rd, uid):
    gw = "gw-" + uid
    r = api.put(f"/gateways/{gw}/degradation", json={"level": 3,
                                                     "reason": "redis upgrade"})
    assert r.status_code == 200 and r.json() == {"gateway_id": gw, "level": "3"}
    assert rd.client.hget("tg:degradation", gw) == "3"

    assert api.put("/gateways/*/degradation", json={"level": 1}).status_code == 200
    assert rd.client.hget("tg:degradation", "*") == "1"

    assert api.put(f"/gateways/{gw}/degradation",
                   json={"level": "auto"}).status_code == 200
    assert api.put("/gateways/*/degradation",
                   json={"level": "auto"}).status_code == 200
    assert not rd.client.hexists("tg:degradation", gw)
    assert not rd.client.hexists("tg:degradation", "*")
    assert api.put(f"/gateways/{gw}/degradation",
                   json={"level": 4}).status_code == 400

    events = api.get("/events", params={"type": "gateway.degradation"}).json()
    mine = [e for e in events["items"]
            if e["details"]["after"]["gateway_id"] == gw]
    assert [e["details"]["after"]["level"] for e in mine] == ["auto", "3"]


def test_borrow_and_repay_run_the_scripts(api, rd, uid, cluster):
    app = "b-" + uid
    api.post("/apps", json={"app_id": app, "cluster_id": cluster,
                            "guaranteed_quota": 10, "burst_quota": 20,
                            "max_borrow": 100})
    assert api.post(f"/apps/{app}/borrow", json={"tokens": 101}).status_code == 400
    assert api.post(f"/apps/{app}/borrow", json={"tokens": 0}).status_code == 400
    assert api.post(f"/apps/{app}/borrow", json={}).status_code == 400
    assert api.post(f"/apps/none-{uid}/borrow", json={"tokens": 1}).status_code == 404

    # 50 lent into the guaranteed bucket, 55 owed with 10 % interest
    r = api.post(f"/apps/{app}/borrow", json={"tokens": 50, "reason": "batch"})
    assert r.status_code == 200, r.text
    assert r.json() == {"app_id": app, "cluster_id": cluster, "tokens": 50,
                        "granted": 50, "debt": 55}
    state = rd.client.hgetall(f"tg:{{{cluster}}}:state:{app}")
    assert int(state["debt_mtok"]) == 55_000
    assert int(state["g_mtok"]) >= 50_000

    # the debt room left is 45 tokens: 40 more owe 44, 41 would not fit
    r = api.post(f"/apps/{app}/borrow", json={"tokens": 45})
    assert r.status_code == 200 and r.json()["granted"] == 40

    r = api.post(f"/apps/{app}/repay", json={"tokens": 20})
    assert r.status_code == 200 and r.json()["granted"] == 20
    assert r.json()["debt"] <= 99 - 20

    # without tokens, the whole debt, as far as the balance goes
    r = api.post(f"/apps/{app}/repay", json={})
    assert r.status_code == 200, r.text
    assert r.json()["debt"] == 0 or r.json()["granted"] > 0

    items = api.get("/events", params={"app_id": app}).json()["items"]
    assert [e["type"] for e in items[:4]] == ["app.repay", "app.repay",
                                              "app.borrow", "app.borrow"]
    assert items[3]["details"]["after"]["granted"] == 50
    assert items[3]["details"]["what"] == "batch"
    stream = [e for _, e in rd.client.xrange(f"tg:{{{cluster}}}:events")
              if e["type"] in ("borrow", "repay")]
    assert [(e["type"], e["who"]) for e in stream] == [
        ("borrow", "root-admin"), ("borrow", "root-admin"),
        ("repay", "root-admin"), ("repay", "root-admin")]
    assert gateway_script_ran(rd, "borrow") and gateway_script_ran(rd, "repay")


def write_registry(rd, cluster, gw, requests_total, rejected):
    now_ms = int(time.time() * 1000)
    rd.client.zadd(f"tg:{{{cluster}}}:gateways", {gw: now_ms})
    rd.client.hset(f"tg:{{{cluster}}}:gw:{gw}", mapping={
        "level": 1, "hit_rate_permille": 970, "requests": requests_total,
        "rejected": rejected, "updated_ms": now_ms})


def test_gateways_listed_from_registry(api, rd, uid, cluster):
    write_registry(rd, cluster, "gw-a-" + uid, 1000, 10)
    rd.client.zadd(f"tg:{{{cluster}}}:gateways",
                   {"gw-old-" + uid: int(time.time() * 1000) - 60_000})
    api.put(f"/gateways/gw-a-{uid}/degradation", json={"level": 2})

    body = api.get("/gateways", params={"cluster_id": cluster}).json()
    by_id = {g["gateway_id"]: g for g in body["items"]}
    live = by_id["gw-a-" + uid]
    assert live["alive"] is True and live["level"] == 1
    assert live["hit_rate"] == 0.97 and live["hit_rate_permille"] == 970
    assert live["requests"] == 1000
    assert live["forced_level"] == "2"
    assert by_id["gw-old-" + uid]["alive"] is False
    api.put(f"/gateways/gw-a-{uid}/degradation", json={"level": "auto"})


def test_realtime_reads_the_scripts_runtime_fields(api, rd, uid, cluster):
    gw = "gw-r-" + uid
    api.post("/apps", json={"app_id": "r-" + uid, "cluster_id": cluster,
                            "guaranteed_quota": 100, "burst_quota": 200})
    state = f"tg:{{{cluster}}}:state:r-{uid}"
    pool = f"tg:{{{cluster}}}:pool"
    # balances as the scripts store them: as of their *_last_ms, and
    # refilled by the reader; far in the future so no refill happens
    later_ms = int(time.time() * 1000) + 3_600_000
    rd.client.hset(state, mapping={
        "g_mtok": 42_500, "g_last_ms": later_ms, "b_mtok": 7_000,
        "b_last_ms": later_ms, "debt_mtok": 12_100, "granted_total": 0,
        "returned_total": 0, "used_total": 0})
    rd.client.hset(pool, mapping={"level_mtok": 1_234_000,
                                  "last_ms": later_ms, "granted_total": 0,
                                  "returned_total": 0})
    write_registry(rd, cluster, gw, 0, 0)
    time.sleep(1.2)

    # the next seconds: 100 requests, 25 rejected; 150 tokens granted,
    # 50 of them returned
    rd.client.hset(state, mapping={"granted_total": 150,
                                   "returned_total": 50, "used_total": 90})
    rd.client.hset(pool, mapping={"granted_total": 150,
                                  "returned_total": 50})
    write_registry(rd, cluster, gw, 100, 25)
    deadline = time.time() + 5
    while time.time() < deadline:
        snap = api.get("/metrics/realtime").json()
        c = next(c for c in snap["clusters"] if c["cluster_id"] == cluster)
        app = c["apps"][0]
        if app["granted_per_s"] > 0 and c["requests_per_s"] > 0:
            break
        time.sleep(0.3)
    assert app["app_id"] == "r-" + uid
    assert (app["tokens"], app["burst_tokens"], app["debt"]) == (42, 7, 13)
    assert 20 < app["granted_per_s"] <= 100 and app["used_per_s"] > 0
    assert 10 < app["usage_pct"] <= 50      # of 200 tokens/s
    assert "requests_per_s" not in app
    assert c["tokens"] == 1234 and c["gateways"] == 1
    assert 0.2 < c["rejection_rate"] < 0.3 and c["requests_per_s"] > 20


def realtime_apps(api, cluster, until, timeout_s=5):
    """The apps of cluster in the realtime snapshot, by id, once
    until(apps) holds (snapshots are taken once a second)."""
    deadline = time.time() + timeout_s
    while True:
        snap = api.get("/metrics/realtime").json()
        c = next((c for c in snap["clusters"] if c["cluster_id"] == cluster),
                 {"apps": []})
        apps = {a["app_id"]: a for a in c["apps"]}
        if until(apps) or time.time() > deadline:
            return apps
        time.sleep(0.2)


def test_realtime_refills_balances_to_now(api, rd, uid, cluster):
    """Refill pays debt first: 1000 tokens owed 2 s ago at 100 tokens/s
    read about 800 now, with an empty bucket; an application that never
    asked reads full buckets."""
    api.post("/apps", json={"app_id": "f-" + uid, "cluster_id": cluster,
                            "guaranteed_quota": 100, "burst_quota": 100})
    api.post("/apps", json={"app_id": "n-" + uid, "cluster_id": cluster,
                            "guaranteed_quota": 70, "burst_quota": 90})
    then_ms = int(time.time() * 1000) - 2000
    rd.client.hset(f"tg:{{{cluster}}}:state:f-{uid}", mapping={
        "g_mtok": 0, "g_last_ms": then_ms, "b_mtok": 0, "b_last_ms": then_ms,
        "debt_mtok": 1_000_000})

    apps = realtime_apps(api, cluster, lambda apps: "f-" + uid in apps
                         and apps["f-" + uid]["debt"] < 1000)
    owed = apps["f-" + uid]
    assert 600 <= owed["debt"] <= 800 and owed["tokens"] == 0, owed
    assert (apps["n-" + uid]["tokens"], apps["n-" + uid]["burst_tokens"]) \
        == (70, 20)


def test_websocket_pushes_a_snapshot_every_second(admin, token, cluster):
    url = admin.base.replace("http", "ws") + "/api/v1/ws?token=" + token
    ws = websocket.create_connection(url, timeout=3)
    try:
        first = json.loads(ws.recv())
        t0 = time.monotonic()
        second = json.loads(ws.recv())
        assert time.monotonic() - t0 <= 1.5
        assert first["type"] == "snapshot"
        assert second["data"]["ts_ms"] > first["data"]["ts_ms"]
        assert cluster in [c["cluster_id"] for c in second["data"]["clusters"]]
    finally:
        ws.close()


def test_websocket_without_valid_token_is_refused(admin):
    url = admin.base.replace("http", "ws") + "/api/v1/ws"
    for suffix in ("", "?token=not.a.token"):
        try:
            ws = websocket.create_connection(url + suffix, timeout=3)
        except Exception:
            continue
        ws.close()
        raise AssertionError("websocket accepted without a valid token")


def test_history_from_ring_buffer(api, cluster):
    time.sleep(2.5)
    now = int(time.time())
    r = api.get("/metrics/history", params={
        "metric": "requests_per_s", "cluster_id": cluster,
        "start": now - 30, "end": now, "step": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "memory"
    points = body["series"][0]["points"]
    assert len(points) >= 2 and all(p[1] == 0 for p in points)
    assert api.get("/metrics/history", params={"metric": "bogus"}
                   ).status_code == 400
