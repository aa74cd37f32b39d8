"""Borrowing in distributed mode: an application with max_borrow spends
beyond its burst, the debt (with interest) is kept in Redis, and once
the debt reaches max_borrow the refusal names the debt layer."""

import time

import tgdist
from tgdist import GET_COST, put_app
from tgnginx import check_rejection, spend

G_TPS = 20
MAX_BORROW = 100


def test_borrower_gets_beyond_burst_then_is_refused_at_debt(
        redis_servers, gateway):
    r, rc = redis_servers.single(c1=100000)
    put_app(rc, "c1", "borrower", G_TPS, max_borrow=MAX_BORROW)
    put_app(rc, "c1", "plain", G_TPS)
    gw1, gw2 = tgdist.start_gateways(gateway, 2, r.addr)

    # the same spending without max_borrow stops at the bucket
    started = time.monotonic()
    plain, refusal = spend(gw1, "plain", 500)
    plain_s = time.monotonic() - started
    assert refusal is not None
    assert check_rejection(gw1, refusal) == "guaranteed"

    # through both gateways in turn, as fast as they answer
    started = time.monotonic()
    admitted, refusal = [], None
    for i in range(500):
        gw = (gw1, gw2)[i % 2]
        reply = gw.request("GET", "/obj/1k", app="borrower")
        if reply.status != 200:
            refusal = reply
            break
        admitted.append(reply)
    elapsed_s = time.monotonic() - started

    spent = GET_COST * len(admitted)
    within_quota = G_TPS + G_TPS * elapsed_s
    state = rc.hgetall("tg:{c1}:state:borrower")
    print(f"\nwithout borrowing {GET_COST * len(plain)} tokens in "
          f"{plain_s:.2f} s; with max_borrow={MAX_BORROW}: {spent} tokens "
          f"in {elapsed_s:.2f} s (bucket and refill {within_quota:.0f}); "
          f"state {state}")

    assert refusal is not None, "max_borrow never stopped the borrower"
    gw = (gw1, gw2)[len(admitted) % 2]
    assert check_rejection(gw, refusal) == "debt"

    # beyond burst by most of what max_borrow lends (10 % interest)
    assert spent > within_quota + 0.8 * MAX_BORROW / 1.1, spent
    assert spent <= within_quota + MAX_BORROW / 1.1 + GET_COST, spent
    # each reply is in the access log of the gateway that answered it
    assert any((gw1, gw2)[i % 2].entry(reply)["layer"] == "local"
               for i, reply in enumerate(admitted))

    debt_mtok = int(state.get("debt_mtok", 0))
    assert 0 < debt_mtok <= MAX_BORROW * 1000, state
