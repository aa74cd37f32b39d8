"""Applications: CRUD, validation, capacity, and the Redis copy."""

import concurrent.futures

import requests


def app_body(uid, cluster, **kw):
    body = {"app_id": "a-" + uid, "cluster_id": cluster,
            "guaranteed_quota": 100, "burst_quota": 200}
    body.update(kw)
    return body


def test_create_read_update_delete(api, rd, uid, cluster):
    r = api.post("/apps", json=app_body(uid, cluster, priority=1, max_borrow=50))
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["cost_profile"] == "standard" and app["priority"] == 1

    assert api.get("/apps/a-" + uid).json()["guaranteed_quota"] == 100

    r = api.put("/apps/a-" + uid, json={"guaranteed_quota": 300,
                                        "burst_quota": 400, "priority": 0})
    assert r.status_code == 200, r.text
    assert r.json()["version"] > app["version"]
    assert r.json()["max_borrow"] == 0      # PUT replaces every setting

    h = rd.client.hgetall(f"tg:{{{cluster}}}:app:a-{uid}")
    assert h["guaranteed_quota"] == "300" and h["priority"] == "0"
    assert h["version"] == str(r.json()["version"])
    assert "a-" + uid in rd.client.smembers(f"tg:{{{cluster}}}:apps")

    assert api.delete("/apps/a-" + uid).status_code == 204
    assert api.get("/apps/a-" + uid).status_code == 404
    assert not rd.client.exists(f"tg:{{{cluster}}}:app:a-{uid}")
    assert "a-" + uid not in rd.client.smembers(f"tg:{{{cluster}}}:apps")


def test_quota_patch_reaches_redis_and_bumps_version(api, rd, uid, cluster):
    api.post("/apps", json=app_body(uid, cluster))
    version_key = f"tg:{{{cluster}}}:version"
    before = int(rd.client.get(version_key))
    pubsub = rd.client.pubsub()
    pubsub.subscribe("tg:config")
    pubsub.get_message(timeout=1)

    r = api.patch(f"/apps/a-{uid}/quota", json={"burst_quota": 900})
    assert r.status_code == 200, r.text
    assert r.json()["guaranteed_quota"] == 100      # untouched
    assert rd.client.hget(f"tg:{{{cluster}}}:app:a-{uid}", "burst_quota") == "900"
    assert int(rd.client.get(version_key)) == before + 1
    msg = pubsub.get_message(timeout=2)
    assert msg and msg["data"] == cluster
    pubsub.close()


def test_change_is_recorded_as_event_with_before_and_after(api, uid, cluster):
    api.post("/apps", json=app_body(uid, cluster))
    api.patch(f"/apps/a-{uid}/quota", json={"guaranteed_quota": 150})
    events = api.get("/events", params={"app_id": "a-" + uid}).json()
    assert [e["type"] for e in events["items"]] == ["app.quota", "app.create"]
    details = events["items"][0]["details"]
    assert details["who"] == "root-admin"
    assert details["before"]["guaranteed_quota"] == 100
    assert details["after"]["guaranteed_quota"] == 150


def test_invalid_input_is_400(api, uid, cluster):
    cases = [
        app_body(uid, cluster, app_id="bad id"),
        app_body(uid, cluster, app_id="x" * 65),
        app_body(uid, cluster, guaranteed_quota=-1),
        app_body(uid, cluster, guaranteed_quota=2 ** 41, burst_quota=2 ** 41),
        app_body(uid, cluster, guaranteed_quota=1.5),
        app_body(uid, cluster, guaranteed_quota="100"),
        app_body(uid, cluster, burst_quota=50),            # below guaranteed
        app_body(uid, cluster, priority=3),
        app_body(uid, cluster, colour="red"),              # unknown field
        app_body(uid, cluster, cost_profile="nope"),       # unknown profile
        {"app_id": "a-" + uid},                            # missing fields
    ]
    for body in cases:
        r = api.post("/apps", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] == "bad_request" and r.json()["message"]
    assert api.get("/apps/a-" + uid).status_code == 404


def test_sql_injection_as_app_id_is_400_and_table_intact(api, pg, uid, cluster):
    api.post("/apps", json=app_body(uid, cluster))
    count = pg.sql("SELECT count(*) FROM applications")
    evil = "x'; DROP TABLE applications; --"
    assert api.post("/apps", json=app_body(uid, cluster, app_id=evil)
                    ).status_code == 400
    assert api.get("/apps/" + requests.utils.quote(evil)).status_code == 400
    assert api.get("/apps", params={"prefix": evil}).status_code == 400
    assert pg.sql("SELECT count(*) FROM applications") == count
    assert api.get("/apps/a-" + uid).status_code == 200


def test_malformed_json_is_400(api):
    for raw in (b"{", b"[1, 2]", b'{"a": 1, "a": 2}', b"", b"null"):
        r = api.post("/apps", data=raw,
                     headers={"Content-Type": "application/json"})
        assert r.status_code == 400, raw
        assert r.json()["error"] == "bad_request"


def test_oversized_body_is_413(api, uid, cluster):
    body = app_body(uid, cluster)
    body["pad"] = "x" * (100 * 1024)
    r = api.post("/apps", json=body)
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"


def test_non_json_body_is_415(api):
    r = api.post("/apps", data="app_id=x",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type"


def test_duplicate_is_409_and_unknown_cluster_404(api, uid, cluster):
    assert api.post("/apps", json=app_body(uid, cluster)).status_code == 201
    assert api.post("/apps", json=app_body(uid, cluster)).status_code == 409
    r = api.post("/apps", json=app_body("z" + uid, "no-such-cluster"))
    assert r.status_code == 404


def test_guaranteed_sum_over_capacity_needs_force(api, rd, uid, cluster):
    # capacity 10000, reserved 0.1: guaranteed quotas may sum to 9000
    assert api.post("/apps", json=app_body(uid, cluster, guaranteed_quota=8000,
                                           burst_quota=8000)).status_code == 201
    over = app_body("b" + uid, cluster, guaranteed_quota=1001, burst_quota=2000)
    r = api.post("/apps", json=over)
    assert r.status_code == 409 and "force=true" in r.json()["message"]
    assert api.post("/apps", json=over, params={"force": "true"}).status_code == 201

    # lowering a quota of an over-committed cluster is always allowed
    r = api.patch(f"/apps/a-{uid}/quota", json={"guaranteed_quota": 7000})
    assert r.status_code == 200
    # and a smaller cluster capacity is refused in the same way
    r = api.put(f"/clusters/{cluster}", json={"capacity": 5000})
    assert r.status_code == 409
    assert rd.client.hget(f"tg:{{{cluster}}}:cluster", "capacity") == "10000"


def test_list_is_paginated_and_searchable_by_prefix(api, uid, cluster):
    for i in range(5):
        assert api.post("/apps", json=app_body(f"{uid}-{i}", cluster,
                                               guaranteed_quota=1,
                                               burst_quota=1)).status_code == 201
    page = api.get("/apps", params={"prefix": "a-" + uid, "limit": 2,
                                    "offset": 2}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 2
    assert [a["app_id"] for a in page["items"]] == [f"a-{uid}-2", f"a-{uid}-3"]
    assert api.get("/apps", params={"cluster_id": cluster}).json()["total"] == 5
    assert api.get("/apps", params={"limit": 0}).status_code == 400
    assert api.get("/apps", params={"limit": 501}).status_code == 400


def test_twenty_concurrent_updates_leave_row_and_redis_consistent(
        admin, token, api, pg, rd, uid, cluster):
    api.post("/apps", json=app_body(uid, cluster))

    def update(i):
        s = admin.session(token)
        return s.put(f"{admin.base}/api/v1/apps/a-{uid}",
                     json={"guaranteed_quota": 10 + i, "burst_quota": 1000 + i,
                           "max_borrow": i}).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        assert set(pool.map(update, range(20))) == {200}

    row = pg.sql("SELECT guaranteed_quota || ',' || burst_quota || ','"
                 " || max_borrow || ',' || version FROM applications"
                 f" WHERE app_id = 'a-{uid}'").split(",")
    h = rd.client.hgetall(f"tg:{{{cluster}}}:app:a-{uid}")
    assert [h["guaranteed_quota"], h["burst_quota"], h["max_borrow"],
            h["version"]] == row
    i = int(row[2])
    assert row[:2] == [str(10 + i), str(1000 + i)]     # one request's values
    assert pg.sql("SELECT count(*) FROM events"
                  f" WHERE app_id = 'a-{uid}' AND type = 'app.update'") == "20"
