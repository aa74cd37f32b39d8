"""One of three gateways dies (SIGKILL to its master and workers): the
others learn that they are two, and their local shares grow to match.

The local share (level 3) of an application is its quota divided by the
live gateways, last known.  The three gateways are forced to level 3
through Redis (HSET tg:degradation * 3, announced on tg:config), each
offered the whole quota, so that each admits its share: QUOTA/3 per
second.  Then gw3 is killed.
Its heartbeats stop, and once they are older than 10 s Redis no longer
counts it: the survivors' status must show live_gateways 2 within
LIVE_MAX_S, after which each admits QUOTA/2 per second.

Admitted rates are measured in a window after a settling time, so that
the local buckets (one second of the share, full at first) are empty:
each gateway is offered twice the larger share, so the bucket drains in
about a second.
"""

import time

import tgchaos
from tgchaos import GET_COST, LevelWatch, Traffic, level_is

QUOTA_TPS = 120
OFFERED_RPS = QUOTA_TPS / GET_COST     # the whole quota, to each gateway
SETTLE_S = 1.5
MEASURE_S = 4.0
LIVE_MAX_S = 15.0
FORCE_MAX_S = 3.0
RECOVER_MAX_S = 30.0
TOLERANCE = 0.15


def live_gateways(gw):
    return tgchaos.tgdist.cluster_status(gw, "c1")["live_gateways"]


def measure_shares(traffics):
    """Tokens per second each traffic's gateway admitted over MEASURE_S,
    after SETTLE_S."""
    time.sleep(SETTLE_S)
    start = time.monotonic()
    time.sleep(MEASURE_S)
    end = time.monotonic()
    return [t.admitted_tokens(start, end) / (end - start) for t in traffics]


def test_killed_gateway_leaves_its_share_to_the_survivors(
        record, redis_servers, gateway):
    rec = record("gateway_killed", "One of three gateways killed "
                 "(SIGKILL); survivors at level 3")
    server, client = redis_servers.single(c1=100000)
    tgchaos.tgdist.put_app(client, "c1", "shared", QUOTA_TPS)
    gateways = [tgchaos.start_gateway(gateway, server.addr, f"gw{i + 1}")
                for i in range(3)]
    survivors, victim = gateways[:2], gateways[2]

    traffics = [Traffic(gw, "shared", OFFERED_RPS, threads=2)
                for gw in gateways]
    for t in traffics:
        t.start()
    try:
        tgchaos.tgdist.wait_for(
            lambda: all(live_gateways(gw) == 3 for gw in gateways), 10,
            "the gateways never counted three")

        tgchaos.redis_override(client, "*", "3")
        forced_at = time.monotonic()
        tgchaos.tgdist.wait_for(
            lambda: all(tgchaos.control(gw)["level"] == 3
                        for gw in gateways), FORCE_MAX_S,
            "tg:degradation * = 3 not applied by every gateway")
        force_s = time.monotonic() - forced_at

        thirds = measure_shares(traffics)

        traffics[2].stop()
        fault_at = time.monotonic()
        tgchaos.kill_gateway(victim)

        tgchaos.tgdist.wait_for(
            lambda: all(live_gateways(gw) == 2 for gw in survivors),
            LIVE_MAX_S, f"the survivors still count "
            f"{[live_gateways(gw) for gw in survivors]} gateways")
        detect_s = time.monotonic() - fault_at

        halves = measure_shares(traffics[:2])

        # release: the survivors step back to level 0
        tgchaos.redis_override(client, "*", "auto")
        with LevelWatch(survivors[0]) as watch:
            released_at = time.monotonic()
            recover_s = watch.wait(level_is(0), released_at, RECOVER_MAX_S)
    finally:
        for t in traffics[:2]:
            t.stop()
        if not traffics[2].stopping.is_set():
            traffics[2].stop()

    third, half = QUOTA_TPS / 3, QUOTA_TPS / 2
    rec["detect_s"] = detect_s
    rec["recover_s"] = recover_s
    rec["force_s"] = force_s
    rec["shares_of_three_tps"] = thirds
    rec["shares_of_two_tps"] = halves
    rec.traffic(traffics)
    # what the two survivors admitted beyond their two halves
    rec["allowance_tokens"] = round(2 * half * MEASURE_S)
    rec["over_admission_tokens"] = round(
        sum(halves) * MEASURE_S - 2 * half * MEASURE_S)
    rec.note(f"shares with 3 live: {[round(s) for s in thirds]} tokens/s "
             f"(quota/3 = {third:.0f}); with 2 live: "
             f"{[round(s) for s in halves]} tokens/s (quota/2 = "
             f"{half:.0f}); live count 2 after {detect_s:.1f} s")
    print(f"\nforced in {force_s:.2f} s; shares of three {thirds}; "
          f"live 2 after {detect_s:.2f} s; shares of two {halves}; level 0 "
          f"{recover_s} s after the release; statuses {rec['statuses']}")

    assert rec["errors_5xx"] == 0, rec["statuses"]
    for t in traffics:
        assert set(t.statuses()) <= {200, 429}, t.statuses()
    for share in thirds:
        assert abs(share - third) <= TOLERANCE * third, (thirds, third)
    for share in halves:
        assert abs(share - half) <= TOLERANCE * half, (halves, half)
    assert recover_s is not None, (
        f"not back to level 0 within {RECOVER_MAX_S} s of the release")
