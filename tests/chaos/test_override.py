"""An operator forces the degradation level, and `auto` releases it:
through the gateway's local control endpoint (POST
/tollgate/control?level=N), and through Redis (HSET tg:degradation with
"*" for every gateway or the gateway's id for one, announced on
tg:config as the admin does).

- A POST takes effect at once; a value in Redis within a second or two
  (the gateways read the hash when it is announced).
- The most specific override wins: the local endpoint over Redis, the
  gateway's own field over "*".
- Forced to level 3, the gateway calls no acquire script: its requests
  are decided locally; released, it steps back to level 0 (one level per
  hold) and asks Redis again.
- A level that is not 0..3 or auto is refused with 400.
"""

import http.client
import time

import tgchaos
from tgchaos import LevelWatch, Traffic, level_is

RATE_RPS = 50
REDIS_MAX_S = 2.5
RECOVER_MAX_S = 30.0


def forced_state(doc):
    return {k: doc[k] for k in ("level", "forced", "forced_local",
                                "forced_gateway", "forced_all")}


def acquire_calls(gw):
    return tgchaos.redis_calls(gw.metrics(), "acquire")


def test_levels_forced_and_released_locally_and_through_redis(
        record, redis_servers, gateway):
    rec = record("override", "Manual override: /tollgate/control and "
                 "tg:degradation, then auto")
    server, client = redis_servers.single(c1=100000)
    tgchaos.tgdist.put_app(client, "c1", "steady", 100000)
    gw = tgchaos.start_gateway(gateway, server.addr)

    traffic = Traffic(gw, "steady", RATE_RPS, threads=1)
    timings = {}
    with LevelWatch(gw) as watch, traffic:
        time.sleep(1)

        # the local endpoint: at once
        doc = tgchaos.control(gw, level=2)
        assert forced_state(doc) == {"level": 2, "forced": 2,
                                     "forced_local": 2, "forced_gateway": -1,
                                     "forced_all": -1}, doc
        assert gw.status()["degradation_level"] == 2
        assert gw.metrics().value("tollgate_degradation_level") == 2

        doc = tgchaos.control(gw, level=3)
        assert doc["level"] == 3, doc
        time.sleep(0.5)
        calls = acquire_calls(gw)
        time.sleep(2)
        assert acquire_calls(gw) == calls, "acquire called at level 3"

        released_at = time.monotonic()
        doc = tgchaos.control(gw, level="auto")
        assert doc["forced"] == -1 and doc["forced_local"] == -1, doc
        timings["local_release_s"] = watch.wait(level_is(0), released_at,
                                                RECOVER_MAX_S)
        assert timings["local_release_s"] is not None, watch.latest()
        calls = acquire_calls(gw)
        time.sleep(1)
        assert acquire_calls(gw) > calls, "Redis not asked after release"

        # Redis: every gateway, then this one
        at = time.monotonic()
        tgchaos.redis_override(client, "*", "3")
        timings["redis_all_s"] = watch.wait(level_is(3), at, REDIS_MAX_S)
        assert forced_state(tgchaos.control(gw)) == {
            "level": 3, "forced": 3, "forced_local": -1,
            "forced_gateway": -1, "forced_all": 3}

        at = time.monotonic()
        tgchaos.redis_override(client, "gw1", "1")
        timings["redis_gateway_s"] = watch.wait(level_is(1), at, REDIS_MAX_S)
        assert tgchaos.control(gw)["forced_gateway"] == 1

        # the local endpoint wins over Redis, and gives way again
        assert tgchaos.control(gw, level=0)["level"] == 0
        assert tgchaos.control(gw, level="auto")["level"] == 1

        at = time.monotonic()
        tgchaos.redis_override(client, "gw1", "auto")
        timings["redis_gateway_release_s"] = watch.wait(level_is(3), at,
                                                        REDIS_MAX_S)

        at = time.monotonic()
        tgchaos.redis_override(client, "*", "auto")
        timings["redis_release_s"] = watch.wait(level_is(0), at,
                                                RECOVER_MAX_S)

        levels = watch.levels()

    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    conn.request("POST", "/tollgate/control?level=7", body=b"")
    refused = conn.getresponse()
    refused.read()
    conn.close()

    rec["detect_s"] = timings["redis_all_s"]
    rec["recover_s"] = timings["redis_release_s"]
    rec["timings"] = timings
    rec["levels_seen"] = levels
    rec.traffic([traffic])
    rec.note("detect: HSET * 3 to level 3 shown; recover: HSET * auto to "
             "level 0 shown")
    print(f"\n{timings}; levels {levels}; statuses {rec['statuses']}")

    assert rec["errors_5xx"] == 0, rec["statuses"]
    assert traffic.statuses() == {200: len(traffic.between())}
    for name, took in timings.items():
        assert took is not None, f"{name}: not shown in time ({timings})"
    assert refused.status == 400
