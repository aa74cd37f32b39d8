"""Emergency mode decided in Redis and felt by every gateway.

A small cluster is driven past 95 % of its capacity by three tenants of
priorities 0, 1 and 2 through three gateways.  Once Redis turns the
emergency on: P2 is refused at the cluster layer, P1 gets its guaranteed
rate and no more, P0 keeps guaranteed plus burst.
"""

import time

import tgdist
from tgdist import GET_COST, Load, put_app, put_cluster, wait_for
from tgnginx import check_rejection

CAPACITY_TPS = 200
G_TPS = 50
B_TPS = 150
MEASURE_S = 4


def emergency_on(gateways):
    return all(gw.metrics().value("tollgate_emergency_mode", cluster="c1")
               == 1 for gw in gateways)


def test_emergency_refuses_p2_holds_p1_to_guaranteed_serves_p0(
        redis_servers, gateway):
    r, rc = redis_servers.single()
    put_cluster(rc, "c1", capacity=CAPACITY_TPS, window_ms=2000)
    for priority in (0, 1, 2):
        put_app(rc, "c1", f"p{priority}", G_TPS, B_TPS, priority=priority)
    gateways = tgdist.start_gateways(gateway, 3, r.addr)

    # every tenant asks for its burst: 3 x 150 tokens/s against 200
    rate_rps = B_TPS / GET_COST / len(gateways)
    loads = {p: [Load(gw, f"p{p}", rate_rps) for gw in gateways]
             for p in (0, 1, 2)}
    everything = [load for group in loads.values() for load in group]

    started = time.monotonic()
    with tgdist.running(everything):
        wait_for(lambda: emergency_on(gateways), 15,
                 "no gateway saw the emergency within 15 s")
        on_after_s = time.monotonic() - started
        # the P2 denial cached before the switch, and leases, run out
        time.sleep(1.5)
        since = time.monotonic()
        time.sleep(MEASURE_S)
        until = time.monotonic()

    state = rc.hgetall("tg:{c1}:emergency")
    assert state["active"] == "1" and state["mode"] == "auto", state

    def admitted_tokens(p):
        return GET_COST * sum(load.count(200, since, until)
                              for load in loads[p])

    measured = until - since
    p0, p1, p2 = (admitted_tokens(p) for p in (0, 1, 2))
    print(f"\nemergency on after {on_after_s:.1f} s; over {measured:.1f} s "
          f"admitted P0 {p0 / measured:.0f}, P1 {p1 / measured:.0f}, "
          f"P2 {p2 / measured:.0f} tokens/s (G {G_TPS}, B {B_TPS})")

    for load in everything:
        assert set(load.statuses()) <= {200, 429}, load.statuses()

    assert p2 == 0
    # guaranteed only: G per second, plus what leases held at the start
    lease_slack = 3 * 16 * len(gateways)
    assert p1 <= G_TPS * measured + lease_slack, p1
    assert p1 >= 0.7 * G_TPS * measured, p1
    # P0 gets its burst above guaranteed
    assert p0 > 1.5 * G_TPS * measured, p0

    # the refusal of P2 names the cluster layer, from any gateway
    for gw in gateways:
        reply = gw.request("GET", "/obj/1k", app="p2")
        assert check_rejection(gw, reply) == "cluster"
        assert int(reply.header("Retry-After")) >= 1
