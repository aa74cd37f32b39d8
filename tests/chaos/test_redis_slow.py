"""A slow Redis: the gateway reaches it through a TCP proxy that holds
every chunk bound for Redis for a delay (delayproxy.py: asyncio, in a
process of its own), so each round trip takes that much longer.

- 20 ms a round trip is level 1 (conserve: p99 above 10 ms), 150 ms is
  level 2 (local-first: above 100 ms); both shown alike by
  /tollgate/control, /tollgate/status and /metrics.  The Redis timeout
  is raised to 1 s, so that 150 ms is slow, not failed.
- An application paid by a live lease is not slowed: the p99 of its
  request time, as nginx logs it ($request_time), stays within
  MARGIN_MS of the p99 with no delay.  A request that waited for one
  refill would take the whole delay (20 or 150 ms); the margin is far
  below that, and far above the noise of a loopback request (nginx's
  own measure, to the millisecond, is used because the client's, taken
  by Python threads on a busy two-core host, moves by tens of ms from
  one second to the next for reasons of its own; it is recorded too).
  The limiter's own histogram counts the requests whose check took over
  1 ms, that is, that waited: at most 1 % of them may.
- With the delay gone, the gateway steps back to level 0.
"""

import time

import tgchaos
from tgchaos import LevelWatch, Traffic, level_at_least, level_is, p99_ms

RATE_RPS = 150
MEASURE_S = 4.0
MARGIN_MS = 5.0
WAITED_MAX = 0.01
LEVEL_WAIT_S = 10.0
SETTLE_MAX_S = 20.0
RECOVER_MAX_S = 30.0


def shown_everywhere(gw):
    """The level as /tollgate/control, /tollgate/status and /metrics
    show it."""
    return (tgchaos.control(gw)["level"],
            gw.status()["degradation_level"],
            int(gw.metrics().value("tollgate_degradation_level")))


def checks_over_1ms(metrics):
    return (metrics.value("tollgate_check_duration_seconds_bucket",
                          le="+Inf")
            - metrics.value("tollgate_check_duration_seconds_bucket",
                            le="0.001000"))


def measure(gw, traffic):
    """MEASURE_S of the traffic: nginx's p99 and the client's (ms), the
    requests, and those whose check took over 1 ms."""
    before = gw.metrics()
    start, start_unix = time.monotonic(), time.time()
    time.sleep(MEASURE_S)
    end, end_unix = time.monotonic(), time.time()
    after = gw.metrics()
    time.sleep(0.2)             # nginx logs a request after replying
    replies = traffic.between(start, end)
    return {"p99_ms": p99_ms(tgchaos.timing_log(gw, start_unix, end_unix)),
            "client_p99_ms": p99_ms(r.latency_s for r in replies),
            "requests": len(replies),
            "waited": checks_over_1ms(after) - checks_over_1ms(before)}


def test_slow_redis_is_conserve_then_local_first_and_leases_keep_latency(
        record, redis_servers, delay_proxy, gateway):
    rec = record("redis_slow", "Redis slowed by a delay proxy: 20 ms, "
                 "then 150 ms a round trip")
    server, client = redis_servers.single(c1=100000)
    tgchaos.tgdist.put_app(client, "c1", "leased", 1000000)
    proxy = delay_proxy(server.port)
    gw = tgchaos.start_gateway(gateway, f"127.0.0.1:{proxy.port}",
                               timeout="1s", timing=True)

    traffic = Traffic(gw, "leased", RATE_RPS, threads=3)
    with LevelWatch(gw) as watch, traffic:
        time.sleep(2)
        base = measure(gw, traffic)

        # the level must be the delay's doing: start from normal (a busy
        # host can hold a healthy Redis at level 1 a while)
        assert watch.wait(level_is(0), time.monotonic(), SETTLE_MAX_S) \
            is not None, f"not at level 0 before the delay: {watch.latest()}"

        phases = {}
        for delay_ms, level in ((20, 1), (150, 2)):
            proxy.set_delay(delay_ms / 1000)
            slowed_at = time.monotonic()
            detect_s = watch.wait(level_at_least(level), slowed_at,
                                  LEVEL_WAIT_S)
            assert detect_s is not None, (
                f"{delay_ms} ms: level {level} not shown in "
                f"{LEVEL_WAIT_S} s: {watch.latest()}")
            # the lease follows the new level's horizon, then measure
            time.sleep(1)
            phase = measure(gw, traffic)
            phase.update(level=level, detect_s=detect_s,
                         shown=shown_everywhere(gw),
                         levels=watch.levels(slowed_at))
            phases[delay_ms] = phase

        proxy.set_delay(0)
        healed_at = time.monotonic()
        recover_s = watch.wait(level_is(0), healed_at, RECOVER_MAX_S)

    rec["detect_s"] = phases[20]["detect_s"]
    rec["recover_s"] = recover_s
    rec["baseline"] = base
    rec["phases"] = phases
    rec.traffic([traffic])
    rec.note(f"level 1 {phases[20]['detect_s']:.2f} s after 20 ms, level 2 "
             f"{phases[150]['detect_s']:.2f} s after 150 ms; leased p99 "
             f"(nginx) {base['p99_ms']:.0f}, {phases[20]['p99_ms']:.0f}, "
             f"{phases[150]['p99_ms']:.0f} ms; (client) "
             f"{base['client_p99_ms']:.1f}, "
             f"{phases[20]['client_p99_ms']:.1f}, "
             f"{phases[150]['client_p99_ms']:.1f} ms; checks that waited: "
             f"{phases[20]['waited']:.0f}, {phases[150]['waited']:.0f}")
    print(f"\nbaseline {base}; {phases}; back to 0 after {recover_s} s")

    assert rec["errors_5xx"] == 0, rec["statuses"]
    assert traffic.statuses() == {200: len(traffic.between())}, (
        traffic.statuses())
    for delay_ms, phase in phases.items():
        level = phase["level"]
        # no more than the delay calls for: 20 ms is slow, not failing
        assert phase["shown"] == (level, level, level), (delay_ms, phase)
        assert phase["p99_ms"] <= base["p99_ms"] + MARGIN_MS, (
            f"{delay_ms} ms away: p99 {phase['p99_ms']:.0f} ms against "
            f"{base['p99_ms']:.0f} ms without delay")
        assert phase["waited"] <= WAITED_MAX * phase["requests"], (
            delay_ms, phase)
    assert recover_s is not None and recover_s <= RECOVER_MAX_S, (
        f"not back to level 0 {RECOVER_MAX_S} s after the delay went: "
        f"{watch.latest()}")
