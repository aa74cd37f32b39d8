"""Emergency mode in standalone (DESIGN §3, L1): at 95 % of capacity P0
keeps guaranteed + burst, P1 is held to guaranteed, P2 is refused."""

import threading
import time

from tgnginx import check_rejection

GUARANTEED_TPS = 10
BURST_TPS = 40
GET_COST = 2

# Bursts stop at the reserve (20 tokens), guaranteed grants may use it:
# with all three apps asking for more than their burst, the cluster grants
# its whole 100 tokens/s and its usage passes 95 % within the window.
EMERGENCY_HTTP = f"""
    tollgate_cluster_capacity c1 capacity=100 reserved=0.2 window=2s;
    tollgate_app p0 guaranteed={GUARANTEED_TPS} burst={BURST_TPS} priority=0;
    tollgate_app p1 guaranteed={GUARANTEED_TPS} burst={BURST_TPS} priority=1;
    tollgate_app p2 guaranteed={GUARANTEED_TPS} burst={BURST_TPS} priority=2;
"""


def drive(gw, apps, seconds=None, until=None):
    """GETs as each app from its own thread, a few hundred a second,
    for seconds or until until() is true; returns the replies per app and
    how long the traffic lasted."""
    stop = threading.Event()
    replies = {app: [] for app in apps}

    def traffic(app):
        with gw.client() as c:
            while not stop.is_set():
                replies[app].append(c.request("GET", "/obj/1k", app=app))
                time.sleep(0.003)

    threads = [threading.Thread(target=traffic, args=(app,)) for app in apps]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        if until is None:
            time.sleep(seconds)
        else:
            deadline = started + 15
            while not until():
                assert time.monotonic() < deadline, "condition never met"
                time.sleep(0.25)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return replies, time.monotonic() - started


def emergency_on(gw):
    return gw.metrics().value("tollgate_emergency_mode", cluster="c1") == 1


def test_emergency_keeps_p0_holds_p1_to_guaranteed_and_refuses_p2(gateway):
    gw = gateway(http=EMERGENCY_HTTP)
    assert not emergency_on(gw)

    drive(gw, ["p0", "p1", "p2"], until=lambda: emergency_on(gw))
    replies, elapsed_s = drive(gw, ["p0", "p1", "p2"], seconds=3)

    admitted = {app: GET_COST * sum(r.status == 200 for r in rs)
                for app, rs in replies.items()}
    # the buckets were emptied by the first drive; allow one bucket's worth
    # on top of the rate, and a slow client's shortfall below it
    p0_ceiling = BURST_TPS * elapsed_s + BURST_TPS + 2 * GET_COST
    p1_ceiling = GUARANTEED_TPS * elapsed_s + GUARANTEED_TPS + 2 * GET_COST
    assert 0.6 * BURST_TPS * elapsed_s <= admitted["p0"] <= p0_ceiling, admitted
    assert 0.5 * GUARANTEED_TPS * elapsed_s <= admitted["p1"] <= p1_ceiling, \
        admitted
    assert admitted["p2"] == 0, admitted

    assert check_rejection(gw, replies["p2"][-1]) == "cluster"
    assert {gw.entry(r)["layer"] for r in replies["p2"][-20:]} == {"cluster"}
    assert emergency_on(gw), "emergency mode ended before its 5 minutes"
