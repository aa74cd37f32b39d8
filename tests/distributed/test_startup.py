"""A gateway that has just started is not in an outage while its first
connection to Redis is still being made.

The degradation judge runs every 100 ms; a first connection whose first
reply takes longer (Redis far away, Sentinel asked first, a Redis
Cluster's slot map) used to be judged "redis unreachable", and the
gateway then spent the three holds it takes to come back (about 9 s) in
fail-local, deciding from local shares.  Now Redis is not called
unreachable before that first attempt has failed or had the time to end
(twice connect_timeout + timeout).  A Redis that refuses the connection
has failed at once: that start is still level 3 at once.
"""

import time

import tgdist
from tgdist import put_app, wait_for

DELAY_S = 0.4

# latency alone must not move the level here: only reachability is judged
CALM = tgdist.CALM_DEGRADATION


def level(gw):
    m = gw.metrics()
    return (int(m.value("tollgate_degradation_level")),
            int(m.value("tollgate_degradation_transitions_total")))


def test_a_slow_first_reply_is_not_an_outage(redis_servers, gateway):
    r, rc = redis_servers.single(c1=100000)
    put_app(rc, "c1", "early", 1000)
    proxy = redis_servers.proxy(r.port, DELAY_S)

    gw = gateway(http=tgdist.distributed_http(
                     f"127.0.0.1:{proxy.port} timeout=2s", "slowstart",
                     extra=CALM),
                 cluster="tollgate_cluster c1;")

    # requests while the first reply is on its way are answered
    statuses = [gw.request("GET", "/obj/1k", app="early").status
                for _ in range(5)]
    assert all(s < 500 for s in statuses), statuses

    # past the first reply and several judgements, still level 0
    time.sleep(4 * DELAY_S)
    assert level(gw) == (0, 0), gw.read_error_log()[-2000:]
    assert "degradation level" not in gw.read_error_log()

    # and it decides through Redis: the lease is served from L3
    wait_for(lambda: gw.request("GET", "/obj/1k", app="early").status == 200
             and gw.metrics().value("tollgate_l3_hits_total") > 0,
             10, "no lease hit through the slow Redis")


def test_a_refused_first_connection_is_an_outage_at_once(gateway):
    port = tgdist.free_ports(1)[0]

    gw = gateway(http=tgdist.distributed_http(f"127.0.0.1:{port}",
                                              "nostart", extra=CALM),
                 cluster="tollgate_cluster c1;",
                 expect_errors=("cannot connect to redis",))

    started = time.monotonic()
    wait_for(lambda: level(gw)[0] == 3, 5, "never reached level 3")
    assert time.monotonic() - started < 1.0
    assert "redis unreachable" in gw.read_error_log()


def test_a_declared_cluster_missing_from_redis_is_seeded_not_refused(
        redis_servers, gateway):
    """The cluster comes from nginx.conf, the application from Redis (the
    admin wrote it).  An acquire that finds the cluster missing (the seed
    not yet there, or the key gone) makes the gateway seed again; the
    application is not refused as unknown meanwhile."""
    r, rc = redis_servers.single()
    put_app(rc, "c9", "fromredis", 1000)

    gw = gateway(http=tgdist.distributed_http(
                     r.addr, "seeding",
                     extra="tollgate_cluster_capacity c9 capacity=100000;"),
                 cluster="tollgate_cluster c9;")

    wait_for(lambda: rc.exists("tg:{c9}:cluster"), 5,
             "the declared cluster was never seeded")
    rc.delete("tg:{c9}:cluster")

    statuses = [gw.request("GET", "/obj/1k", app="fromredis").status
                for _ in range(20)]

    assert 403 not in statuses, statuses
    assert statuses[-1] == 200, statuses
    assert rc.exists("tg:{c9}:cluster")
