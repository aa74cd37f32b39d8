"""tollgate-admin against a Redis Cluster and a Sentinel-managed master.

The Redis Cluster is tests/distributed's: six nodes, three masters each
with a replica (tgdist.RedisCluster).  The admin is given two of them as
seeds (cluster=A,B) and a PostgreSQL database of its own, so that only
this module's storage clusters are synced.  Storage cluster ids are
picked by the hash slot of their tag so that each lives on another
master.  Keys are checked through redis.cluster.RedisCluster and
straight on the node that owns them, which would answer MOVED for a key
it does not own.

The tests of the cluster run in file order on one admin: a slot is
migrated, a shard failed over by hand, the data flushed and re-synced,
and at last a master killed.  The Sentinel test has its own servers.
"""

import time

import pytest
import redis
import requests

import tgdist
from conftest import Admin

# a failover the sentinels or the cluster completed: the next admin
# write must not wait for more than the admin's own timeouts
WRITE_AFTER_FAILOVER_S = 5.0


class Api:
    """An admin's session on /api/v1."""

    def __init__(self, admin):
        self.s = admin.session(admin.login())
        self.base = admin.base + "/api/v1"

    def __getattr__(self, method):
        def call(path, **kw):
            return self.s.request(method.upper(), self.base + path,
                                  timeout=10, **kw)
        return call


def start_admin(pg, db_url, redis_spec):
    admin = Admin(pg, None, extra_env={"TOLLGATE_DATABASE_URL": db_url,
                                       "TOLLGATE_REDIS": redis_spec})
    admin.start()
    return admin


def healthz(admin):
    return requests.get(admin.base + "/healthz", timeout=5)


def first_success(call, timeout_s):
    """Calls call() until it answers 200, for timeout_s at most; the last
    reply and how many calls were made."""
    started = time.monotonic()
    calls = 0
    while True:
        r = call()
        calls += 1
        if r.status_code == 200 or time.monotonic() - started > timeout_s:
            return r, calls
        time.sleep(0.1)


# the Redis Cluster ----------------------------------------------------------

def slot_map(rc):
    """CLUSTER SLOTS and a client, from the first node still alive."""
    for node in rc.nodes:
        if node.alive():
            try:
                c = node.client()
                return c.execute_command("CLUSTER SLOTS"), c
            except redis.RedisError:
                continue
    raise AssertionError("no node of the cluster answers")


def node_at(rc, port):
    return next(n for n in rc.nodes if n.port == port)


def owner(rc, key):
    """The master that serves key now."""
    ranges, c = slot_map(rc)
    slot = c.execute_command("CLUSTER", "KEYSLOT", key)
    return next(node_at(rc, master[1]) for start, end, master, *_ in ranges
                if start <= slot <= end)


def masters(rc):
    return [node_at(rc, port) for port in
            {master[1] for _, _, master, *_ in slot_map(rc)[0]}]


def ids_on_distinct_masters(rc, prefix, count=3):
    picked, ports = [], set()
    for i in range(500):
        cid = f"{prefix}{i}"
        port = owner(rc, f"tg:{{{cid}}}:cluster").port
        if port not in ports:
            ports.add(port)
            picked.append(cid)
            if len(picked) == count:
                return picked
    raise AssertionError("no ids on distinct masters")


def synced_replica(rc, master):
    """master's replica, once it holds every write master took.  A fresh
    cluster's nodes learn who replicates whom by gossip, and a replica's
    first sync waits for repl-diskless-sync-delay (5 s)."""
    c = master.client()
    myid = c.execute_command("CLUSTER", "MYID")
    tgdist.wait_for(lambda: c.execute_command("CLUSTER", "REPLICAS", myid),
                    10, f"{master.addr} has no replica")
    replica = rc.replica_of(master)
    tgdist.wait_for(lambda: acked(master), 15,
                    f"{replica.addr} never caught up with {master.addr}")
    return replica


def acked(master):
    """True once a replica has every write of master (WAIT)."""
    return master.client().execute_command("WAIT", 1, 1000) == 1


def redirects(node, kind):
    """How many MOVED or ASK replies node has sent (INFO errorstats)."""
    stat = node.client().info("errorstats").get(f"errorstat_{kind}")
    if stat is None:
        return 0
    # "count=N" alone is not split into a dict by redis-py
    return int(stat["count"] if isinstance(stat, dict)
               else stat.split("=", 1)[1])


def wait_owner(rc, key, node, timeout_s=15):
    tgdist.wait_for(lambda: owner(rc, key).port == node.port, timeout_s,
                    f"{node.addr} never took over {key}")


@pytest.fixture(scope="module")
def rcluster():
    rc = tgdist.RedisCluster()
    try:
        yield rc.start()
    finally:
        rc.cleanup()


@pytest.fixture(scope="module")
def cluster_db(pg):
    return pg.create_database("tg_redis_cluster")


def cluster_spec(rc):
    """One seed, and another that is a replica at the start."""
    return f"cluster={rc.nodes[0].addr},{rc.nodes[4].addr} timeout=500ms"


@pytest.fixture(scope="module")
def cadmin(pg, cluster_db, rcluster):
    admin = start_admin(pg, cluster_db, cluster_spec(rcluster))
    try:
        yield admin
    finally:
        assert admin.stop() == 0, admin.log_text()[-3000:]


@pytest.fixture(scope="module")
def capi(cadmin):
    return Api(cadmin)


@pytest.fixture(scope="module")
def ids(rcluster, capi):
    """Three storage clusters on three masters, one application each."""
    picked = ids_on_distinct_masters(rcluster, "shard-")
    for cid in picked:
        r = capi.put(f"/clusters/{cid}", json={"capacity": 1000,
                                               "reserved_ratio": 0.1})
        assert r.status_code == 201, r.text
        r = capi.post("/apps", json={"app_id": f"{cid}-a", "cluster_id": cid,
                                     "guaranteed_quota": 100,
                                     "burst_quota": 200, "max_borrow": 100})
        assert r.status_code == 201, r.text
    return picked


def assert_config_on_owner(rc, cid, guaranteed="100"):
    node = owner(rc, f"tg:{{{cid}}}:cluster")
    direct = node.client()
    assert direct.hget(f"tg:{{{cid}}}:cluster", "capacity") == "1000"
    assert direct.smembers(f"tg:{{{cid}}}:apps") == {f"{cid}-a"}
    app = direct.hgetall(f"tg:{{{cid}}}:app:{cid}-a")
    assert app["cluster_id"] == cid and app["burst_quota"] == "200"
    assert app["guaranteed_quota"] == guaranteed
    assert rc.client().hgetall(f"tg:{{{cid}}}:app:{cid}-a") == app
    return node


def test_each_storage_cluster_is_written_on_its_own_master(rcluster, capi,
                                                          ids):
    ports = {assert_config_on_owner(rcluster, cid).port for cid in ids}
    assert len(ports) == 3
    # each command went straight to its slot's master
    assert [redirects(node, "MOVED") for node in masters(rcluster)] \
        == [0, 0, 0]

    # the global hashes live in slots of their own
    r = capi.put("/gateways/*/degradation", json={"level": 2})
    assert r.status_code == 200, r.text
    rc = rcluster.client()
    assert owner(rcluster, "tg:degradation").client().hget(
        "tg:degradation", "*") == "2"
    assert rc.hget("tg:profiles", "standard") == "2,1,65536"
    assert capi.put("/gateways/*/degradation",
                    json={"level": "auto"}).status_code == 200
    assert rc.hget("tg:degradation", "*") is None


def test_config_notice_reaches_a_subscriber_of_another_node(rcluster, capi,
                                                            ids):
    cid = ids[0]
    home = owner(rcluster, f"tg:{{{cid}}}:cluster")
    other = next(n for n in rcluster.nodes if n.port != home.port)
    sub = other.client().pubsub()
    sub.subscribe("tg:config")
    assert sub.get_message(timeout=2)["type"] == "subscribe"

    r = capi.patch(f"/apps/{cid}-a/quota", json={"guaranteed_quota": 110})
    assert r.status_code == 200, r.text

    deadline = time.monotonic() + 3
    seen = []
    while time.monotonic() < deadline and cid not in seen:
        msg = sub.get_message(timeout=0.5)
        if msg and msg["type"] == "message":
            seen.append(msg["data"])
    sub.close()
    assert cid in seen
    assert_config_on_owner(rcluster, cid, guaranteed="110")


def test_borrow_repay_and_emergency_on_every_master(rcluster, capi, ids):
    for cid in ids:
        app = f"{cid}-a"
        direct = owner(rcluster, f"tg:{{{cid}}}:cluster").client()

        r = capi.post(f"/apps/{app}/borrow", json={"tokens": 20})
        assert r.status_code == 200, r.text
        assert (r.json()["granted"], r.json()["debt"]) == (20, 22)
        assert direct.hget(f"tg:{{{cid}}}:state:{app}", "debt_mtok") \
            == "22000"

        r = capi.post(f"/apps/{app}/repay", json={"tokens": 10})
        assert r.status_code == 200 and r.json()["granted"] == 10, r.text

        r = capi.post(f"/clusters/{cid}/emergency",
                      json={"action": "on", "reason": "drill",
                            "duration_s": 60})
        assert r.status_code == 200 and r.json()["active"] is True, r.text
        assert direct.hget(f"tg:{{{cid}}}:emergency", "active") == "1"
        assert capi.post(f"/clusters/{cid}/emergency",
                         json={"action": "auto"}).status_code == 200


def test_live_views_read_the_runtime_keys_of_every_master(rcluster, cadmin,
                                                          capi, ids):
    rc = rcluster.client()
    now_ms = int(time.time() * 1000)
    later_ms = now_ms + 3_600_000
    for n, cid in enumerate(ids):
        rc.zadd(f"tg:{{{cid}}}:gateways", {f"gw-{cid}": now_ms})
        rc.hset(f"tg:{{{cid}}}:gw:gw-{cid}", mapping={
            "level": 1 + n, "hit_rate_permille": 900, "requests": 10,
            "rejected": 0, "updated_ms": now_ms})
        rc.hset(f"tg:{{{cid}}}:state:{cid}-a", mapping={
            "g_mtok": 40_000 + n * 1000, "g_last_ms": later_ms,
            "b_mtok": 0, "b_last_ms": later_ms, "debt_mtok": 0})

    def realtime():
        snap = capi.get("/metrics/realtime").json()
        return {c["cluster_id"]: c for c in snap["clusters"]}

    want = {cid: (1, 40 + n) for n, cid in enumerate(ids)}
    deadline = time.monotonic() + 5
    while True:
        got = {cid: (c["gateways"], c["apps"][0]["tokens"])
               for cid, c in realtime().items() if cid in want}
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert got == want

    items = capi.get("/gateways").json()["items"]
    levels = {g["cluster_id"]: (g["gateway_id"], g["level"]) for g in items}
    for n, cid in enumerate(ids):
        assert levels[cid] == (f"gw-{cid}", 1 + n)

    r = healthz(cadmin)
    assert r.status_code == 200 and r.json()["redis"] == "ok", r.text


def migrate_slot(rc, key, dst):
    """Moves key's slot to dst as redis-cli --cluster reshard would;
    returns the slot, once the keys are on dst and before the owner
    changes (the slot is then migrating), and a function that ends the
    move by telling every master."""
    src = owner(rc, key)
    src_c, dst_c = src.client(), dst.client()
    slot = src_c.execute_command("CLUSTER", "KEYSLOT", key)
    src_id = src_c.execute_command("CLUSTER", "MYID")
    dst_id = dst_c.execute_command("CLUSTER", "MYID")

    dst_c.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src_c.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    keys = src_c.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    assert keys
    src_c.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000,
                          "KEYS", *keys)

    def finish():
        for node in masters(rc):
            node.client().execute_command("CLUSTER", "SETSLOT", slot,
                                          "NODE", dst_id)
    return slot, finish


def test_a_migrated_slot_is_followed(rcluster, capi, ids):
    cid = ids[0]
    key = f"tg:{{{cid}}}:cluster"
    src = owner(rcluster, key)
    dst = owner(rcluster, f"tg:{{{ids[1]}}}:cluster")

    r = capi.post(f"/clusters/{cid}/emergency",
                  json={"action": "on", "reason": "move", "duration_s": 60})
    assert r.status_code == 200, r.text
    slot, finish = migrate_slot(rcluster, key, dst)

    # migrating: the source answers ASK for keys it gave away
    asked = redirects(src, "ASK")
    assert capi.get(f"/clusters/{cid}").json()["emergency"]["active"] is True
    assert redirects(src, "ASK") > asked

    finish()
    assert owner(rcluster, key).port == dst.port

    # the admin's map still names the source: MOVED, then the new owner
    moved = redirects(src, "MOVED")
    r = capi.patch(f"/apps/{cid}-a/quota", json={"guaranteed_quota": 120})
    assert r.status_code == 200, r.text
    assert redirects(src, "MOVED") > moved
    assert dst.client().hget(f"tg:{{{cid}}}:app:{cid}-a",
                             "guaranteed_quota") == "120"
    with pytest.raises(redis.ResponseError, match="MOVED"):
        src.client().hget(f"tg:{{{cid}}}:app:{cid}-a", "guaranteed_quota")
    assert capi.post(f"/clusters/{cid}/emergency",
                     json={"action": "auto"}).status_code == 200


def test_manual_failover_then_a_write_succeeds(rcluster, capi, ids):
    cid = ids[1]
    key = f"tg:{{{cid}}}:cluster"
    master = owner(rcluster, key)
    replica = synced_replica(rcluster, master)

    replica.client().execute_command("CLUSTER", "FAILOVER")
    wait_owner(rcluster, key, replica)

    # the old master answers MOVED: the first call follows it
    r = capi.post(f"/apps/{cid}-a/borrow", json={"tokens": 5})
    assert r.status_code == 200, r.text
    assert replica.client().hget(f"tg:{{{cid}}}:state:{cid}-a", "debt_mtok")

    r = capi.patch(f"/apps/{cid}-a/quota", json={"guaranteed_quota": 130})
    assert r.status_code == 200, r.text
    assert replica.client().hget(f"tg:{{{cid}}}:app:{cid}-a",
                                 "guaranteed_quota") == "130"


def test_startup_resync_writes_every_cluster_on_its_master(
        pg, cluster_db, rcluster, cadmin, ids):
    cadmin.stop()
    try:
        for node in masters(rcluster):
            node.client().flushall()
        fresh = start_admin(pg, cluster_db, cluster_spec(rcluster))
        try:
            r = healthz(fresh)
            assert r.status_code == 200, r.text
            synced = [line for line in fresh.log_text().splitlines()
                      if "configuration synced to redis" in line]
            assert synced and "result=ok" in synced[0], fresh.log_text()
            for cid, guaranteed in zip(ids, ("120", "130", "100")):
                assert_config_on_owner(rcluster, cid, guaranteed)
            assert rcluster.client().hget("tg:profiles", "standard") \
                == "2,1,65536"
        finally:
            assert fresh.stop() == 0
    finally:
        cadmin.start()


def test_killed_master_replaced_then_a_write_succeeds(rcluster, cadmin, capi,
                                                      ids):
    cid = ids[2]
    key = f"tg:{{{cid}}}:cluster"
    master = owner(rcluster, key)
    replica = synced_replica(rcluster, master)
    assert healthz(cadmin).status_code == 200

    master.kill()
    # /healthz speaks for the whole cluster: one master down is down
    tgdist.wait_for(lambda: healthz(cadmin).status_code == 503, 3,
                    "/healthz stayed ok with a master killed")
    wait_owner(rcluster, key, replica)

    r, _ = first_success(lambda: capi.post(
        f"/clusters/{cid}/emergency",
        json={"action": "on", "reason": "failover", "duration_s": 60}),
        WRITE_AFTER_FAILOVER_S)
    assert r.status_code == 200, r.text
    assert replica.client().hget(f"tg:{{{cid}}}:emergency", "active") == "1"

    r = capi.patch(f"/apps/{cid}-a/quota", json={"guaranteed_quota": 140})
    assert r.status_code == 200, r.text
    assert replica.client().hget(f"tg:{{{cid}}}:app:{cid}-a",
                                 "guaranteed_quota") == "140"

    r, _ = first_success(lambda: healthz(cadmin), WRITE_AFTER_FAILOVER_S)
    assert r.status_code == 200, r.text
    assert "redis cluster slot map read" in cadmin.log_text()


# Sentinel -------------------------------------------------------------------

@pytest.fixture
def sentinels():
    s = tgdist.SentinelSet()
    try:
        yield s.start()
    finally:
        s.cleanup()


def test_sentinel_failover_then_a_write_succeeds(pg, sentinels):
    spec = ("sentinel=" + ",".join(s.addr for s in sentinels.sentinels)
            + f" master={sentinels.MASTER_NAME} timeout=500ms")
    admin = start_admin(pg, pg.create_database("tg_redis_sentinel"), spec)
    old, new = sentinels.master, sentinels.replica
    try:
        api = Api(admin)
        assert api.put("/clusters/sc", json={
            "capacity": 1000, "reserved_ratio": 0.1}).status_code == 201
        assert api.post("/apps", json={
            "app_id": "sa", "cluster_id": "sc", "guaranteed_quota": 100,
            "burst_quota": 200, "max_borrow": 100}).status_code == 201
        assert old.client().hget("tg:{sc}:app:sa", "guaranteed_quota") \
            == "100"
        tgdist.wait_for(lambda: acked(old), 15, "the replica lags")

        old.kill()
        tgdist.wait_for(lambda: sentinels.master_port() == new.port, 30,
                        "the sentinels never promoted the replica")

        # a call that fails on the old master asks the sentinels again
        # and is sent to the new one: the first call after the promotion
        # succeeds
        r = api.post("/apps/sa/borrow", json={"tokens": 10})
        assert r.status_code == 200, r.text
        assert new.client().hget("tg:{sc}:state:sa", "debt_mtok") == "11000"

        r = api.patch("/apps/sa/quota", json={"guaranteed_quota": 150})
        assert r.status_code == 200, r.text
        assert new.client().hget("tg:{sc}:app:sa", "guaranteed_quota") \
            == "150"
        assert healthz(admin).status_code == 200
        assert "sentinels name a new redis master" in admin.log_text()
    finally:
        assert admin.stop() == 0
