"""Configuration lives in Redis: changes written there reach every
gateway within about a second, applications unknown to Redis are
refused, and nginx.conf only seeds what Redis does not have."""

import socket
import time

import tgdist
from tgdist import GET_COST, Load, put_app, put_cluster, wait_for
from tgnginx import spend

OLD_TPS = 40
NEW_TPS = 1000
# the heartbeat that notices a new version runs every second
CHANGE_WITHIN_S = 1.0


def test_quota_change_in_redis_reaches_three_gateways_within_a_second(
        redis_servers, gateway):
    r, rc = redis_servers.single(c1=100000)
    put_app(rc, "c1", "tuned", OLD_TPS)
    gateways = tgdist.start_gateways(gateway, 3, r.addr)

    # each gateway offers the whole old quota: three times it in all, far
    # below the new one
    loads = [Load(gw, "tuned", OLD_TPS / GET_COST) for gw in gateways]
    with tgdist.running(loads):
        time.sleep(3)
        changed = time.monotonic()
        put_app(rc, "c1", "tuned", NEW_TPS)
        time.sleep(3)
    ended = time.monotonic()

    # before: the three share the old quota (not necessarily evenly)
    refused_before = sum(load.count(429, changed - 2, changed)
                         for load in loads)
    admitted_before = sum(load.count(200, changed - 2, changed)
                          for load in loads)
    assert refused_before > 0
    assert GET_COST * admitted_before <= 2 * OLD_TPS + 3 * 16, (
        admitted_before)

    # after: every one of them admits all it is offered
    for i, load in enumerate(loads):
        before = load.count(200, changed - 2, changed) / 2
        refused_at = [r.at for r in load.samples(429, since=changed)]
        late_s = (max(refused_at) - changed) if refused_at else 0.0
        after = load.count(200, changed + CHANGE_WITHIN_S, ended)
        offered = load.count(None, changed + CHANGE_WITHIN_S, ended)
        print(f"\ngw{i + 1}: {before:.1f} admitted/s before the change; "
              f"last refusal {late_s:.2f} s after it; {after}/{offered} "
              f"admitted from {CHANGE_WITHIN_S} s on")

        assert late_s <= CHANGE_WITHIN_S, (
            f"gw{i + 1} still refused {late_s:.2f} s after the change")
        assert after == offered and offered > 0

    for gw in gateways:
        assert tgdist.lease_of(gw, "tuned")["guaranteed_quota"] == NEW_TPS


def test_unknown_app_is_refused_until_redis_knows_it(redis_servers, gateway):
    r, rc = redis_servers.single(c1=100000)
    gateways = tgdist.start_gateways(gateway, 2, r.addr)

    for gw in gateways:
        reply = gw.request("GET", "/obj/1k", app="newcomer")
        assert reply.status == 403, reply
        assert gw.entry(reply)["decision"] == "unknown_app"
        assert not gw.upstream_saw(reply)

    added = time.monotonic()
    put_app(rc, "c1", "newcomer", 100)

    for i, gw in enumerate(gateways):
        first_ok = None
        while time.monotonic() < added + 5:
            reply = gw.request("GET", "/obj/1k", app="newcomer")
            assert reply.status in (200, 403), reply
            if reply.status == 200:
                first_ok = time.monotonic() - added
                break
            time.sleep(0.02)
        print(f"\ngw{i + 1} served the new app {first_ok} s after it "
              "was written")
        assert first_ok is not None and first_ok <= 1.5


SEEDING_HTTP = """
    tollgate_cluster_capacity c1 capacity=5000 reserved=0.1;
    tollgate_cluster_capacity c2 capacity=5000 reserved=0.1;
    tollgate_app seeded guaranteed=30 burst=60 priority=0 max_borrow=10
                 cluster=c1;
    tollgate_app kept guaranteed=500 burst=500 cluster=c1;
"""


def test_nginx_conf_seeds_absent_keys_and_never_overwrites(
        redis_servers, gateway):
    r, rc = redis_servers.single()
    # what the admin wrote before the gateway started
    put_cluster(rc, "c2", capacity=777, reserved_ratio="0.3")
    put_app(rc, "c1", "kept", 7)
    kept_before = rc.hgetall("tg:{c1}:app:kept")
    c2_before = rc.hgetall("tg:{c2}:cluster")

    gw = gateway(http=tgdist.distributed_http(r.addr, "gw1", SEEDING_HTTP),
                 cluster="tollgate_cluster c1;")

    wait_for(lambda: rc.exists("tg:{c1}:app:seeded"), 5,
             "the gateway never seeded tg:{c1}:app:seeded")
    seeded = rc.hgetall("tg:{c1}:app:seeded")
    assert seeded.items() >= {
        "app_id": "seeded", "cluster_id": "c1", "guaranteed_quota": "30",
        "burst_quota": "60", "priority": "0", "max_borrow": "10",
        "cost_profile": "standard"}.items(), seeded
    assert rc.sismember("tg:{c1}:apps", "seeded")
    cluster = rc.hgetall("tg:{c1}:cluster")
    assert cluster["capacity"] == "5000", cluster
    assert float(cluster["reserved_ratio"]) == 0.1, cluster
    assert int(rc.get("tg:{c1}:version")) >= 2

    # existing values win over nginx.conf
    assert rc.hgetall("tg:{c1}:app:kept") == kept_before
    assert rc.hgetall("tg:{c2}:cluster") == c2_before

    # and the gateway limits by them: 7 tokens, not 500
    admitted, refusal = spend(gw, "kept", 50)
    assert refusal is not None and refusal.status == 429
    assert GET_COST * len(admitted) <= 7 + 7, len(admitted)
    assert tgdist.lease_of(gw, "kept")["guaranteed_quota"] == 7

    admitted, refusal = spend(gw, "seeded", 50)
    assert refusal is not None
    assert 60 <= GET_COST * len(admitted) <= 60 + 30, len(admitted)


def test_the_profile_redis_names_is_kept_across_reloads(redis_servers,
                                                        gateway):
    """An application's record in the zone names its cost profile by a
    key of the profile's name, not by its place in nginx.conf: a reload
    that puts another profile first leaves the charge as it was, and one
    that changes the profile charges the new cost at once, both before
    the application's next acquire."""
    r, rc = redis_servers.single(c1=1_000_000)
    put_app(rc, "c1", "weighty", 1_000_000, profile="heavy")
    http = tgdist.distributed_http(r.addr, "prof")

    gw = gateway(http=http + "tollgate_cost_profile heavy base=7;\n",
                 cluster="tollgate_cluster c1;")

    def cost():
        reply = gw.request("GET", "/obj/1k", app="weighty")
        assert reply.status == 200
        return int(gw.entry(reply)["cost"])

    # the first request is charged before Redis named the profile
    cost()
    wait_for(lambda: cost() == 7, 5, "the heavy profile never applied")
    acquires = gw.metrics().value("tollgate_redis_calls_total",
                                  script="acquire", result="ok")

    gw.reconfigure(http=http + "tollgate_cost_profile light base=1;\n"
                               "tollgate_cost_profile heavy base=7;\n")
    gw.reload()
    assert cost() == 7

    gw.reconfigure(http=http + "tollgate_cost_profile heavy base=9;\n")
    gw.reload()
    assert cost() == 9

    # a profile no longer defined: the built-in default (base 2)
    gw.reconfigure(http=http)
    gw.reload()
    assert cost() == 2

    # all of it from the lease taken before the reloads
    assert gw.metrics().value("tollgate_redis_calls_total", script="acquire",
                              result="ok") <= acquires + 1


def test_a_gateway_without_an_id_registers_under_its_host_name(
        redis_servers, gateway):
    r, rc = redis_servers.single(c1=100000)
    put_app(rc, "c1", "a1", 1000)
    gw = gateway(http=f"tollgate_redis {r.addr};",
                 cluster="tollgate_cluster c1;")

    assert gw.request("GET", "/obj/1k", app="a1").status == 200

    # nginx keeps the host name in lower case
    name = socket.gethostname().lower()
    wait_for(lambda: rc.zscore("tg:{c1}:gateways", name) is not None, 5,
             f"no gateway {name!r} in {rc.zrange('tg:{c1}:gateways', 0, -1)}")
