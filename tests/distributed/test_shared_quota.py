"""Three gateways share one application's quota through one Redis.

Over-admission across gateways is bounded by the tokens held in their
leases (DESIGN §3, docs/accuracy.md): what Redis grants is exact, and a
gateway can only spend early what it was granted.  Over a run that
starts with a full bucket B, the application's admitted cost is at most

    G x duration + B + sum over gateways of the most each held in lease

and the test prints that bound beside the measured figure.
"""

import tgdist
from tgdist import GET_COST, Load, put_app, put_cluster, run_loads

HOT_TPS = 200          # the quota the hot application is driven at 3x
CALM_TPS = 200         # the quota the calm application stays under
SECONDS = 10


class LeaseWatch:
    """The most each gateway held in lease for one application, from its
    tollgate_overshoot_bound_tokens and its lease target."""

    def __init__(self, gateways, cluster, app):
        self.gateways = gateways
        self.cluster = cluster
        self.app = app
        self.held = [0] * len(gateways)
        self.target = [0] * len(gateways)

    def sample(self):
        for i, gw in enumerate(self.gateways):
            held = gw.metrics().value("tollgate_overshoot_bound_tokens",
                                      cluster=self.cluster, app=self.app)
            self.held[i] = max(self.held[i], int(held))
            entry = tgdist.lease_of(gw, self.app)
            if entry is not None:
                self.target[i] = max(self.target[i],
                                     entry["lease"]["target"])

    def bound(self):
        """What the gateways may have held at once: for each, the larger
        of what it was seen holding and its largest lease target."""
        return sum(max(h, t) for h, t in zip(self.held, self.target))


def shared_quota_run(gateways, r, seconds, cluster="c1"):
    """Drives "hot" at three times its quota and "calm" under its quota
    through every gateway; returns the loads, the lease watch and the
    duration."""
    put_cluster(r, cluster, capacity=100000)
    put_app(r, cluster, "hot", HOT_TPS)
    put_app(r, cluster, "calm", CALM_TPS)

    # each gateway is driven at the whole quota: three times in all
    hot_rps = HOT_TPS / GET_COST
    calm_rps = CALM_TPS / GET_COST / 2 / len(gateways)
    hot = [Load(gw, "hot", hot_rps) for gw in gateways]
    calm = [Load(gw, "calm", calm_rps, threads=1) for gw in gateways]
    watch = LeaseWatch(gateways, cluster, "hot")

    duration = run_loads(hot + calm, seconds, sample=watch.sample)
    watch.sample()
    return hot, calm, watch, duration


def check_shared_quota(hot, calm, watch, duration, label):
    admitted_tokens = GET_COST * sum(load.count(200) for load in hot)
    sent = sum(len(load.replies) for load in hot)
    exact = HOT_TPS * duration + HOT_TPS
    lease_bound = watch.bound()
    overshoot = admitted_tokens - exact

    print(f"\n[{label}] hot: {sent} requests in {duration:.2f} s "
          f"({GET_COST * sent / duration:.0f} tokens/s offered), "
          f"admitted {admitted_tokens} tokens; G x T + B = {exact:.0f}; "
          f"lease bound {lease_bound} tokens "
          f"(held {watch.held}, targets {watch.target}); "
          f"measured overshoot {overshoot:+.0f} tokens")

    for load in hot + calm:
        assert set(load.statuses()) <= {200, 429}, load.statuses()

    # three times the quota was offered: without a limit it would show
    assert GET_COST * sent > 2.5 * exact, "the load never reached 3x"
    assert admitted_tokens <= exact + lease_bound, (
        f"admitted {admitted_tokens} > bound {exact + lease_bound}")

    # and the quota is not stranded in leases: the app gets most of it
    assert admitted_tokens >= 0.85 * HOT_TPS * duration, admitted_tokens

    for load in calm:
        assert load.statuses().get(429, 0) == 0, (
            f"calm app refused through {load.gw.port}: {load.statuses()}")
        assert load.count(200) > 0


def test_three_gateways_hold_one_quota_and_spare_the_calm_app(
        redis_servers, gateway):
    r, _ = redis_servers.single()
    gateways = tgdist.start_gateways(gateway, 3, r.addr)

    hot, calm, watch, duration = shared_quota_run(gateways, r.client(),
                                                  SECONDS)
    check_shared_quota(hot, calm, watch, duration, "standalone Redis")

    # each gateway took its part and Redis counted them all
    for load in hot:
        assert load.count(200) > 0, f"{load.gw.port} admitted nothing"
    live = tgdist.cluster_status(gateways[0], "c1")["live_gateways"]
    assert live == 3
