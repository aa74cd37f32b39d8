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


class SharedQuota:
    """"hot" driven at three times its quota and "calm" under its quota,
    through every gateway, in one storage cluster (path routes to it)."""

    def __init__(self, gateways, r, cluster="c1", path="/obj/1k"):
        self.cluster = cluster
        put_cluster(r, cluster, capacity=100000)
        put_app(r, cluster, "hot", HOT_TPS)
        put_app(r, cluster, "calm", CALM_TPS)

        # three times the quota in all, shared by the gateways
        hot_rps = 3 * HOT_TPS / GET_COST / len(gateways)
        calm_rps = CALM_TPS / GET_COST / 2 / len(gateways)
        self.hot = [Load(gw, "hot", hot_rps, path=path) for gw in gateways]
        self.calm = [Load(gw, "calm", calm_rps, threads=1, path=path)
                     for gw in gateways]
        self.watch = LeaseWatch(gateways, cluster, "hot")
        self.duration = None

    @property
    def loads(self):
        return self.hot + self.calm

    def busiest_second(self):
        """The most requests of hot admitted within one second, once the
        first two seconds have emptied the initial bucket."""
        start = min(s.at for load in self.hot for s in load.replies)
        times = sorted(s.at for load in self.hot
                       for s in load.samples(200, since=start + 2))
        most, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most

    def check(self, label):
        admitted_tokens = GET_COST * sum(load.count(200) for load in self.hot)
        sent = sum(len(load.replies) for load in self.hot)
        duration = self.duration
        exact = HOT_TPS * duration + HOT_TPS
        lease_bound = self.watch.bound()
        overshoot = admitted_tokens - exact

        busiest = GET_COST * self.busiest_second()

        print(f"\n[{label}] hot: {sent} requests in {duration:.2f} s "
              f"({GET_COST * sent / duration:.0f} tokens/s offered), "
              f"admitted {admitted_tokens} tokens; G x T + B = {exact:.0f}; "
              f"lease bound {lease_bound} tokens (held {self.watch.held}, "
              f"targets {self.watch.target}); "
              f"measured overshoot {overshoot:+.0f} tokens; busiest second "
              f"after the first two: {busiest} tokens (G = {HOT_TPS})")

        for load in self.loads:
            assert set(load.statuses()) <= {200, 429}, load.statuses()

        # three times the quota was offered: unlimited, it would show
        assert GET_COST * sent > 2.7 * HOT_TPS * duration, "too little load"
        assert admitted_tokens <= exact + lease_bound, (
            f"admitted {admitted_tokens} > bound {exact + lease_bound}")
        # any one second: its refill, the bucket, what leases held
        assert busiest <= HOT_TPS + HOT_TPS + lease_bound, busiest

        # and the quota is not stranded in leases: the app gets most of it
        assert admitted_tokens >= 0.85 * HOT_TPS * duration, admitted_tokens

        for load in self.calm:
            assert load.statuses().get(429, 0) == 0, (
                f"calm app refused through {load.gw.port}: "
                f"{load.statuses()}")
            assert load.count(200) > 0


def run_shared_quota(scenarios, seconds):
    """Runs the scenarios together; each keeps the duration."""
    def sample():
        for scenario in scenarios:
            scenario.watch.sample()

    duration = run_loads([load for s in scenarios for load in s.loads],
                         seconds, sample=sample)
    sample()
    for scenario in scenarios:
        scenario.duration = duration


def test_three_gateways_hold_one_quota_and_spare_the_calm_app(
        redis_servers, gateway):
    r, rc = redis_servers.single()
    gateways = tgdist.start_gateways(gateway, 3, r.addr)

    shared = SharedQuota(gateways, rc)
    run_shared_quota([shared], SECONDS)
    shared.check("standalone Redis")

    # each gateway took its part and Redis counted them all
    for load in shared.hot:
        assert load.count(200) > 0, f"{load.gw.port} admitted nothing"
    live = tgdist.cluster_status(gateways[0], "c1")["live_gateways"]
    assert live == 3
