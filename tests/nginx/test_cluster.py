"""The storage cluster (DESIGN §3, L1) in standalone: bursts leave the
reserve to guaranteed traffic, and emergency mode at 95 % of capacity
keeps P0 at guaranteed + burst, holds P1 to guaranteed, refuses P2."""

from tgnginx import check_rejection, drive

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


def emergency_on(gw):
    # before the cluster's first request its gauge may not be there yet
    samples = gw.metrics().samples("tollgate_emergency_mode")
    return any(s.value == 1 for s in samples
               if s.labels.get("cluster") == "c1")


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


def test_a_flooding_tenant_leaves_the_others_their_guaranteed_rate(gateway):
    # The hog may burst to the whole capacity, but only while the pool
    # stays above its reserve of 50: the 40 tokens/s guaranteed to steady
    # always find tokens, and together they never exceed capacity.
    gw = gateway(http="""
        tollgate_cluster_capacity c1 capacity=100 reserved=0.5;
        tollgate_app hog guaranteed=10 burst=100;
        tollgate_app steady guaranteed=40 burst=40;
    """)

    replies, elapsed_s = drive(gw, ["hog", "steady"], seconds=3)

    admitted = {app: GET_COST * sum(r.status == 200 for r in rs)
                for app, rs in replies.items()}
    assert admitted["steady"] >= 0.85 * 40 * elapsed_s, admitted
    assert admitted["hog"] >= 10 * elapsed_s, admitted
    # the pool starts full: one second of capacity on top of the rate
    assert sum(admitted.values()) <= 100 * elapsed_s + 100 + 2 * GET_COST
