"""Emergency, degradation, borrow/repay, and the live views."""

import json
import time

import websocket


def test_emergency_on_and_off_at_redis_level(api, rd, cluster):
    key = f"tg:{{{cluster}}}:emergency"
    before = int(rd.client.get(f"tg:{{{cluster}}}:version") or 0)

    r = api.post(f"/clusters/{cluster}/emergency",
                 json={"enable": True, "reason": "disk array rebuild",
                       "duration_s": 60})
    assert r.status_code == 200, r.text
    h = rd.client.hgetall(key)
    assert h["active"] == "1" and h["mode"] == "manual"
    assert h["set_by"] == "root-admin" and h["reason"] == "disk array rebuild"
    assert 59_000 <= int(h["until_ms"]) - time.time() * 1000 <= 60_500
    assert int(rd.client.get(f"tg:{{{cluster}}}:version")) == before + 1
    assert api.get(f"/clusters/{cluster}").json()["emergency"]["active"] is True

    r = api.post(f"/clusters/{cluster}/emergency", json={"enable": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert rd.client.hget(key, "active") == "0"

    types = [e["type"] for e in api.get("/events", params={
        "cluster_id": cluster}).json()["items"]]
    assert types[:2] == ["cluster.emergency_off", "cluster.emergency_on"]


def test_expired_emergency_reads_as_inactive(api, rd, cluster):
    rd.client.hset(f"tg:{{{cluster}}}:emergency",
                   mapping={"active": "1", "mode": "auto",
                            "until_ms": int(time.time() * 1000) - 1})
    assert api.get(f"/clusters/{cluster}").json()["emergency"]["active"] is False


def test_emergency_validation(api, cluster):
    assert api.post(f"/clusters/{cluster}/emergency",
                    json={"enable": "yes"}).status_code == 400
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


def test_borrow_and_repay_are_validated_then_unavailable(api, uid, cluster):
    api.post("/apps", json={"app_id": "b-" + uid, "cluster_id": cluster,
                            "guaranteed_quota": 10, "burst_quota": 20,
                            "max_borrow": 100})
    assert api.post(f"/apps/b-{uid}/borrow", json={"tokens": 101}).status_code == 400
    assert api.post(f"/apps/b-{uid}/borrow", json={"tokens": 0}).status_code == 400
    assert api.post(f"/apps/none-{uid}/borrow", json={"tokens": 1}).status_code == 404

    r = api.post(f"/apps/b-{uid}/borrow", json={"tokens": 50})
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    assert "borrow.lua" in r.json()["message"]
    assert api.post(f"/apps/b-{uid}/repay", json={}).status_code == 503

    types = [e["type"] for e in api.get("/events", params={
        "app_id": "b-" + uid}).json()["items"]]
    assert types[:2] == ["app.repay", "app.borrow"]


def write_registry(rd, cluster, gw, requests_total, rejected):
    now_ms = int(time.time() * 1000)
    rd.client.zadd(f"tg:{{{cluster}}}:gateways", {gw: now_ms})
    rd.client.hset(f"tg:{{{cluster}}}:gw:{gw}", mapping={
        "level": 1, "hit_rate": 0.97, "requests": requests_total,
        "rejected": rejected, "version": 7, "updated_ms": now_ms})


def test_gateways_listed_from_registry(api, rd, uid, cluster):
    write_registry(rd, cluster, "gw-a-" + uid, 1000, 10)
    rd.client.zadd(f"tg:{{{cluster}}}:gateways",
                   {"gw-old-" + uid: int(time.time() * 1000) - 60_000})
    api.put(f"/gateways/gw-a-{uid}/degradation", json={"level": 2})

    body = api.get("/gateways", params={"cluster_id": cluster}).json()
    by_id = {g["gateway_id"]: g for g in body["items"]}
    live = by_id["gw-a-" + uid]
    assert live["alive"] is True and live["level"] == 1
    assert live["hit_rate"] == 0.97 and live["requests"] == 1000
    assert live["forced_level"] == "2"
    assert by_id["gw-old-" + uid]["alive"] is False
    api.put(f"/gateways/gw-a-{uid}/degradation", json={"level": "auto"})


def test_realtime_rates_from_counters(api, rd, uid, cluster):
    gw = "gw-r-" + uid
    api.post("/apps", json={"app_id": "r-" + uid, "cluster_id": cluster,
                            "guaranteed_quota": 100, "burst_quota": 200})
    state = f"tg:{{{cluster}}}:state:r-{uid}"
    rd.client.hset(state, mapping={"tokens": 42, "granted": 0,
                                   "requests": 0, "rejected": 0})
    write_registry(rd, cluster, gw, 0, 0)
    time.sleep(1.2)

    # the next seconds see 100 more requests, 25 rejected, 50 tokens granted
    rd.client.hset(state, mapping={"granted": 50, "requests": 100,
                                   "rejected": 25})
    write_registry(rd, cluster, gw, 100, 25)
    deadline = time.time() + 5
    while time.time() < deadline:
        snap = api.get("/metrics/realtime").json()
        c = next(c for c in snap["clusters"] if c["cluster_id"] == cluster)
        app = c["apps"][0]
        if app["requests_per_s"] > 0:
            break
        time.sleep(0.3)
    assert app["app_id"] == "r-" + uid and app["tokens"] == 42
    assert app["rejection_rate"] == 0.25
    assert 20 < app["requests_per_s"] <= 100
    assert c["gateways"] == 1 and 0.2 < c["rejection_rate"] < 0.3


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
