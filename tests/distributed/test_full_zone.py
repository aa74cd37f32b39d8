"""A distributed zone full of applications still reports and still
decides locally.

An application's record holds what every request needs; a report on its
way to Redis and a local share (while Redis cannot be asked) live in an
extra record made when needed (docs/limitations.md).  Records are carved
from whole pages, which are never given back, so a zone that filled with
records would have had no room left for extras: reports would wait for
ever and, in an outage, every request would be admitted undecided.  The
records leave a thirty-second of the zone's pages to the slab, enough
for reports to go on; past that, a local share evicts an idle
application and takes its record.

Here a 256 KiB zone (about a thousand applications) sees three thousand.
"""

import tgdist
from tgdist import ask_each, put_app, wait_for

ZONE = "tg:256k"
APPS = 3000
RECENT = 200


def counters(gw):
    m = gw.metrics()
    return {
        "evictions": m.value("tollgate_zone_evictions_total", zone="tg"),
        "reports": m.value("tollgate_redis_calls_total", script="report",
                           result="ok"),
        "fail_open": m.value("tollgate_fail_open_total"),
        "level": m.value("tollgate_degradation_level"),
    }


def test_a_full_zone_reports_and_decides_locally_in_an_outage(
        redis_servers, gateway):
    r, rc = redis_servers.single(c1=100000000)
    for i in range(APPS):
        put_app(rc, "c1", f"a{i}", 1000, bump=False)

    gw = gateway(zone=ZONE,
                 http=tgdist.distributed_http(
                     r.addr, "full", extra=tgdist.CALM_DEGRADATION),
                 cluster="tollgate_cluster c1;",
                 expect_errors=("cannot connect to redis", "lost redis"))

    names = [f"a{i}" for i in range(APPS)]
    assert set(ask_each(gw, names)) == {200}

    full = counters(gw)
    assert full["evictions"] > APPS / 2, full
    assert full["level"] == 0 and full["fail_open"] == 0, full

    # the zone is full: what the recent applications used still goes to
    # Redis, one report per period
    recent = names[-RECENT:]
    ask_each(gw, recent)
    wait_for(lambda: counters(gw)["reports"] >= full["reports"] + 3, 5,
             f"no report from a full zone: {counters(gw)}")

    # Redis gone: applications known and still in the zone, whose
    # reports went and whose extra records were freed, need one each for
    # a local share; none is admitted undecided
    older = names[-2 * RECENT:-RECENT]
    r.kill()
    wait_for(lambda: counters(gw)["level"] == 3, 5, "never reached level 3")
    before = counters(gw)
    statuses = ask_each(gw, older) + ask_each(gw, older)
    after = counters(gw)

    undecided = after["fail_open"] - before["fail_open"]
    print(f"\nfull zone: {full}; in the outage, {len(statuses)} requests "
          f"of {RECENT} applications, {undecided:.0f} admitted undecided")
    assert set(statuses) == {200}
    assert undecided == 0
