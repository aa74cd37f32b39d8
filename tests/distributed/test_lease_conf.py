"""tollgate_lease sizes what a gateway holds: the target follows demand
over `horizon`, clamped to `min` and `max` (docs/directives.md).

Two gateways share one Redis and one application with a quota far above
the load, and see the same paced load at once; one caps its leases with
max, the other does not.  The uncapped one shows that the load asks for
more than the cap, so the capped one's staying under it is the cap at
work, not a light load.  A third gateway with a large min holds that
much after a single request.
"""

import tgdist
from tgdist import Load, put_app, run_loads, wait_for

RATE_RPS = 300      # 600 tokens/s: 600 tokens over a 1 s horizon
CAP_TOKENS = 200
MIN_TOKENS = 500
SECONDS = 3


def target(gw, app):
    lease = tgdist.lease_of(gw, app)
    return 0 if lease is None else lease["lease"]["target"]


def test_lease_target_follows_demand_within_min_and_max(redis_servers,
                                                         gateway):
    r, rc = redis_servers.single(c1=10000000)
    put_app(rc, "c1", "app", 1000000)

    capped, free = (
        gateway(http=tgdist.distributed_http(r.addr, gateway_id,
                                             extra=f"tollgate_lease {lease};"),
                cluster="tollgate_cluster c1;")
        for gateway_id, lease in (
            ("capped", f"horizon=1s max={CAP_TOKENS}"),
            ("free", "horizon=1s")))

    highest = {"capped": 0, "free": 0}

    def sample():
        highest["capped"] = max(highest["capped"], target(capped, "app"))
        highest["free"] = max(highest["free"], target(free, "app"))

    loads = [Load(gw, "app", RATE_RPS, threads=3) for gw in (capped, free)]
    run_loads(loads, SECONDS, sample=sample, every_s=0.2)
    sample()

    print(f"\nhighest lease target at {RATE_RPS} requests/s over a 1 s "
          f"horizon: {highest['free']} tokens, {highest['capped']} with "
          f"max={CAP_TOKENS}")

    for load in loads:
        assert load.statuses() == {200: len(load.replies)}

    assert highest["free"] > CAP_TOKENS, highest
    assert 0 < highest["capped"] <= CAP_TOKENS, highest

    # min: what even one request's lease holds
    big = gateway(http=tgdist.distributed_http(
                      r.addr, "big",
                      extra=f"tollgate_lease min={MIN_TOKENS};"),
                  cluster="tollgate_cluster c1;")
    assert big.request("GET", "/obj/1k", app="app").status == 200
    wait_for(lambda: target(big, "app") >= MIN_TOKENS, 5,
             f"lease target {target(big, 'app')} below min={MIN_TOKENS}")
