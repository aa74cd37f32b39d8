"""Redis goes away under load and comes back: killed (SIGKILL) and
restarted empty on the same port, frozen (SIGSTOP) then continued
(SIGCONT), or cut off by a network partition then healed.

One gateway limits "metered" (G = B = QUOTA_TPS, declared in nginx.conf,
so that the gateway seeds it into Redis) while it is offered three times
its quota.  What must hold (DESIGN §4):

- every request is answered, none with a 5xx, and a declared
  application is never refused as unknown;
- /tollgate/control shows level 3 (fail-local) within 1 s of the fault;
- meanwhile the quota still binds, at the local share: with one live
  gateway the whole quota.  Admitted during the outage, at most
      share x duration x 1.1 + bucket + lease
  where the bucket is one second of the share (the local buckets start
  full) and the lease is what the gateway held when Redis went away
  (granted before, spent first); and at least 80 % of share x duration;
- once Redis is back: level 0 within 30 s, one step per hold;
- the gateway decides through Redis again: lease hits and acquire calls
  grow, and Redis grants tokens (a Redis restarted empty is sent the
  scripts again);
- the usage counted during the outage reaches Redis once: used_total
  equals what the gateway admitted (minus, for a Redis restarted
  empty, what the lost Redis had been told), within a lease, and stays
  so after more syncs;
- a Redis restarted empty gets the configuration of nginx.conf again.
"""

import os
import random
import signal
import time

import pytest

import tgchaos
from tgchaos import GET_COST, LevelWatch, Traffic, level_at_most, level_is

QUOTA_TPS = 100
OFFERED_RPS = 3 * QUOTA_TPS / GET_COST
WARM_S = 2.0
OUTAGE_S = 4.0
AFTER_S = 2.0
DETECT_MAX_S = 1.0
SETTLE_MAX_S = 20.0
RECOVER_MAX_S = 30.0
REPORTED_MAX_S = 10.0

DECLARE = f"""
    tollgate_cluster_capacity c1 capacity=100000 reserved=0.2;
    tollgate_app metered guaranteed={QUOTA_TPS} burst={QUOTA_TPS};
"""

STATE = "tg:{c1}:state:metered"


def used_total(client):
    return int(client.hget(STATE, "used_total") or 0)


class Kill:
    scenario = "Redis killed (SIGKILL), restarted empty on its port"
    forgets = True

    def start(self, redis_servers):
        self.server, _ = redis_servers.single()
        return self.server

    def inject(self):
        """Reads what Redis was told of the usage at the moment of the
        crash: CLIENT PAUSE holds the scripts (they write) back, so no
        report lands between this read and the kill."""
        client = self.server.client()
        client.execute_command("CLIENT", "PAUSE", "5000", "WRITE")
        self.reported_before = used_total(client)
        self.server.kill()

    def heal(self):
        tgchaos.restart_empty(self.server)

    def cleanup(self):
        pass


class Freeze(Kill):
    scenario = "Redis frozen (SIGSTOP), then SIGCONT"
    forgets = False

    def inject(self):
        self.reported_before = 0
        os.kill(self.server.proc.pid, signal.SIGSTOP)

    def heal(self):
        os.kill(self.server.proc.pid, signal.SIGCONT)


class Partition(Kill):
    scenario = ("Network partition: Redis in a namespace, "
                "veth link down, then up")
    forgets = False

    def start(self, redis_servers):
        refusal = tgchaos.netns_refusal()
        if refusal is not None:
            pytest.skip(refusal)
        self.netns = tgchaos.Netns(random.Random()).create()
        self.server = tgchaos.NetnsRedis(self.netns).start()
        return self.server

    def inject(self):
        self.reported_before = 0
        self.netns.cut()

    def heal(self):
        self.netns.heal()

    def cleanup(self):
        # the gateway fixture, requested after this one, has stopped it
        self.server.cleanup()
        self.netns.delete()


FAULTS = {"killed": Kill, "frozen": Freeze, "partitioned": Partition}


@pytest.fixture(params=list(FAULTS))
def fault(request, redis_servers):
    f = FAULTS[request.param]()
    f.name = request.param
    yield f
    f.cleanup()


def test_redis_outage_keeps_the_local_share_and_recovers(
        record, fault, redis_servers, gateway):
    rec = record(f"redis_{fault.name}", fault.scenario)
    server = fault.start(redis_servers)
    client = server.client()
    gw = tgchaos.start_gateway(gateway, server.addr, declare=DECLARE)
    tgchaos.wait_seeded(gw, client, "c1", "metered")

    traffic = Traffic(gw, "metered", OFFERED_RPS, threads=3)
    with LevelWatch(gw) as watch, traffic:
        time.sleep(WARM_S)
        # a busy host can hold a healthy Redis at level 1 a while (one
        # slow call in the window is its p99); that changes nothing here
        assert watch.wait(level_at_most(1), time.monotonic(),
                          SETTLE_MAX_S) is not None, (
            f"degraded before the fault: {watch.latest()}")
        lease = tgchaos.app_status(gw, "metered")["lease"]
        lease_tokens = max(lease["balance"], lease["target"])

        fault_at = time.monotonic()
        fault.inject()
        try:
            detect_s = watch.wait(level_is(3), fault_at, DETECT_MAX_S + 2)
            time.sleep(max(0.0, fault_at + OUTAGE_S - time.monotonic()))
        finally:
            heal_at = time.monotonic()
            fault.heal()

        recover_s = watch.wait(level_is(0), heal_at, RECOVER_MAX_S)
        rec["levels_seen"] = watch.levels(since=fault_at)
        rec["detect_s"] = detect_s
        rec["recover_s"] = recover_s
        assert recover_s is not None, (
            f"not back to level 0 within {RECOVER_MAX_S} s of the heal: "
            f"{watch.latest()}")

        # deciding through Redis again
        before = gw.metrics()
        granted_before = int(client.hget(STATE, "granted_total") or 0)
        time.sleep(AFTER_S)
        after = gw.metrics()
        granted_after = int(client.hget(STATE, "granted_total") or 0)

    rec.traffic([traffic])

    # every figure first, so that a failure still records them all ------

    # the local share held during the outage
    outage = traffic.between(fault_at, heal_at)
    admitted = traffic.admitted_tokens(fault_at, heal_at)
    duration_s = heal_at - fault_at
    share_tps = QUOTA_TPS          # one live gateway
    bucket_tokens = QUOTA_TPS      # one second of the share
    allowance = share_tps * duration_s * 1.1 + bucket_tokens + lease_tokens
    rec["allowance_tokens"] = round(allowance)
    rec["admitted_tokens"] = admitted
    rec["over_admission_tokens"] = round(admitted - allowance)
    rec.note(f"outage {duration_s:.1f} s at {OFFERED_RPS * GET_COST:.0f} "
             f"tokens/s offered; share {share_tps} tokens/s, lease "
             f"{lease_tokens} tokens held at the fault; levels shown "
             f"{rec['levels_seen']}")

    # through Redis again after the recovery
    hits = (after.value("tollgate_l3_hits_total")
            - before.value("tollgate_l3_hits_total"))
    acquired = (tgchaos.redis_calls(after, "acquire")
                - tgchaos.redis_calls(before, "acquire"))

    # usage is reported with the heartbeat (every second), a report that
    # failed is sent again: wait for it, then two heartbeats more
    admitted_total = tgchaos.app_status(gw, "metered")["cost_total"]
    expected = admitted_total - fault.reported_before
    tgchaos.tgdist.poll(lambda: used_total(client) == expected,
                        REPORTED_MAX_S)
    first = used_total(client)
    time.sleep(2.5)
    second = used_total(client)
    rec["used_reported_tokens"] = first
    rec.note(f"used_total {first} tokens in Redis, expected {expected}")

    print(f"\n{fault.name}: level 3 after {detect_s} s, level 0 "
          f"{recover_s:.2f} s after the heal, levels {rec['levels_seen']}; "
          f"outage: {len(outage)} requests, admitted {admitted} tokens "
          f"(allowance {allowance:.0f}); statuses {rec['statuses']}; "
          f"after recovery: {hits:.0f} lease hits, {acquired:.0f} acquire "
          f"calls, Redis granted {granted_after - granted_before} tokens; "
          f"used_total {first} then {second}, expected {expected} (the "
          f"gateway admitted {admitted_total} tokens in all)")

    # then what must hold ---------------------------------------------

    assert rec["errors_5xx"] == 0, rec["statuses"]
    assert set(traffic.statuses(fault_at)) <= {200, 429}, (
        traffic.statuses(fault_at))
    assert detect_s is not None and detect_s <= DETECT_MAX_S, (
        f"level 3 shown {detect_s} s after the fault, levels "
        f"{rec['levels_seen']}")
    assert admitted <= allowance, (admitted, allowance)
    assert admitted >= 0.8 * share_tps * duration_s, (
        f"admitted {admitted} tokens in {duration_s:.1f} s: the local "
        f"share ({share_tps} tokens/s) was not given")
    assert len(outage) >= 0.8 * OFFERED_RPS * duration_s, (
        f"only {len(outage)} requests answered during the outage")

    assert hits > 0.5 * QUOTA_TPS / GET_COST * AFTER_S, hits
    assert acquired > 0
    assert granted_after > granted_before

    assert abs(first - expected) <= lease_tokens, (first, expected)
    assert second == first, (
        f"used_total {first}, then {second} after more syncs")

    if fault.forgets:
        # EVALSHA answered, not NOSCRIPT: the scripts were loaded again
        evalsha = client.info("commandstats").get("cmdstat_evalsha", {})
        assert evalsha.get("calls", 0) - evalsha.get("failed_calls", 0) \
            > 0, evalsha
        app = client.hgetall("tg:{c1}:app:metered")
        assert int(app.get("guaranteed_quota", -1)) == QUOTA_TPS, app
        assert client.hget("tg:{c1}:cluster", "capacity") == "100000"
