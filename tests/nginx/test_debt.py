"""Borrowing beyond burst, and debt kept across nginx -s reload."""

import time

from tgnginx import check_rejection, find_app, parse_policies, spend

GET_COST = 2


def test_borrowing_admits_past_burst_until_the_debt_ceiling(gateway):
    gw = gateway(http="""
        tollgate_cluster_capacity c1 capacity=100000 reserved=0.2;
        tollgate_app borrower guaranteed=10 burst=10 max_borrow=30;
    """)

    admitted, refusal = spend(gw, "borrower", 60)

    layers = [gw.entry(r)["layer"] for r in admitted]
    first_debt = layers.index("debt") if "debt" in layers else len(layers)
    assert first_debt > 0 and set(layers[:first_debt]) <= {"guaranteed", "burst"}
    assert set(layers[first_debt:]) == {"debt"}, layers
    # 30 tokens of debt buy 15 GETs, fewer once interest counts; the
    # refill while they run pays a little of it back
    borrowed = GET_COST * (len(layers) - first_debt)
    assert 20 <= borrowed <= 30 + 2 * GET_COST, layers

    assert refusal is not None, "borrowing went past max_borrow"
    assert check_rejection(gw, refusal) == "debt"
    assert parse_policies(refusal.header("RateLimit-Policy"))["debt"]["q"] == "30"

    # refill pays the debt first: half a second of it (5 tokens) makes
    # room to borrow again, not a balance to spend
    assert find_app(gw.status(), "borrower")["debt"] >= 20
    time.sleep(0.5)
    again = gw.request("GET", "/obj/1k", app="borrower")
    assert again.status == 200 and gw.entry(again)["layer"] == "debt"


def counters(gw, app):
    metrics = gw.metrics()
    return {decision: metrics.value("tollgate_requests_total", app=app,
                                    decision=decision)
            for decision in ("allowed", "rejected")} | {
        "cost": metrics.value("tollgate_cost_total", app=app)}


def test_reload_keeps_a_drained_app_drained_and_its_counters(gateway):
    # 40 tokens of debt repaid at 2 tokens/s: drained for about 20 s,
    # far longer than a reload takes
    gw = gateway(http="""
        tollgate_cluster_capacity c1 capacity=100000 reserved=0.2;
        tollgate_app drained guaranteed=2 burst=2 max_borrow=40;
        tollgate_app roomy guaranteed=10000 burst=10000;
    """)
    admitted, refusal = spend(gw, "drained", 60)
    assert refusal is not None and refusal.status == 429
    before = counters(gw, "drained")
    assert before["allowed"] == len(admitted) and before["rejected"] == 1
    status_before = find_app(gw.status(), "drained")

    gw.reload()

    assert counters(gw, "drained") == before
    status_after = find_app(gw.status(), "drained")
    for field in ("requests", "cost_total"):
        assert status_after[field] == status_before[field], field
    assert status_after["debt"] > 0
    assert gw.request("GET", "/obj/1k", app="roomy").status == 200
    after = gw.request("GET", "/obj/1k", app="drained")
    assert check_rejection(gw, after) == "debt"
