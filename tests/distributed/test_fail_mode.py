"""tollgate_fail_mode: what a gateway does with a request Redis cannot
decide (DESIGN section 4, docs/directives.md).

Level 3 is forced through the local control endpoint, so Redis stays up
and the only thing that changes between the three runs is the mode:

- local: an application known to the gateway gets its local share
  (quota / live gateways); one never heard of is admitted undecided;
- open: everything is admitted, and counted as fail-open;
- closed: everything is refused, known or not.

In every mode what the lease already holds is spent first: Redis
granted those tokens before the level changed.  Requests admitted
without a decision are counted in tollgate_fail_open_total and summed
up in a [warn] line at most once a second.
"""

import http.client
import re
import time

import pytest

import tgdist
from tgnginx import check_rejection

QUOTA = 10          # tokens/s, guaranteed = burst: 5 GETs a second
REQUESTS = 40       # at level 3, back to back: far past any share


def force_level(gw, level):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    conn.request("POST", f"/tollgate/control?level={level}")
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200, body
    assert f'"level":{level}'.encode() in body, body


def fail_open(gw):
    return gw.metrics().value("tollgate_fail_open_total")


def said(gw, pattern):
    """Waits for the [warn] line of the sync timer (every 100 ms) that
    sums up the requests admitted undecided; returns the log."""
    regex = re.compile(r"\[warn\].*admitted " + pattern)
    tgdist.wait_for(lambda: regex.search(gw.read_error_log()), 3,
                    f"no line matching {pattern!r} in the error log")
    return gw.read_error_log()


@pytest.fixture
def at_level_3(redis_servers, gateway):
    """A gateway in the mode asked, that took a lease for app "known" at
    level 0 and was then forced to level 3."""

    def start(mode):
        server, rc = redis_servers.single(c1=100000)
        tgdist.put_app(rc, "c1", "known", QUOTA)
        tgdist.put_app(rc, "c1", "fresh", QUOTA)

        gw = gateway(
            http=tgdist.distributed_http(
                server.addr, f"gw-{mode}",
                extra=f"tollgate_fail_mode {mode};"),
            cluster="tollgate_cluster c1;",
            server="location = /tollgate/control { tollgate_control; }")

        reply = gw.request("GET", "/obj/1k", app="known")
        assert reply.status == 200, reply
        tgdist.wait_for(lambda: tgdist.lease_of(gw, "known") is not None,
                        5, "no lease for app \"known\"")

        force_level(gw, 3)
        return gw

    return start


def burst(gw, app):
    """REQUESTS GETs as app, back to back: (admitted, refused) replies."""
    replies = [gw.request("GET", "/obj/1k", app=app)
               for _ in range(REQUESTS)]
    return ([r for r in replies if r.status == 200],
            [r for r in replies if r.status != 200])


def test_local_gives_a_known_application_its_share(at_level_3):
    gw = at_level_3("local")
    before = fail_open(gw)

    admitted, refused = burst(gw, "known")

    # lease (at most 16 tokens) and one second of the share: 8 + 5 GETs
    assert 1 <= len(admitted) <= 13, (len(admitted), len(refused))
    assert refused, "the local share never refused"
    layer = check_rejection(gw, refused[0])
    assert layer in ("guaranteed", "burst"), layer
    assert fail_open(gw) == before


def test_local_admits_an_application_it_never_heard_of(at_level_3):
    gw = at_level_3("local")
    before = fail_open(gw)

    reply = gw.request("GET", "/obj/1k", app="fresh")
    assert reply.status == 200, reply
    assert fail_open(gw) == before + 1

    # said, with the application, its cluster, the level and why
    said(gw, r'1 requests without a decision in zone "tg" since the last '
             r'such line, the last of app "fresh" in cluster "c1" at '
             r'level 3: no quota known for it yet')


def test_open_admits_everything_and_counts_it(at_level_3):
    gw = at_level_3("open")
    before = fail_open(gw)

    for app in ("known", "fresh"):
        admitted, refused = burst(gw, app)
        assert len(admitted) == REQUESTS and not refused, refused[:1]

    # all but what the lease paid for (at most 8 GETs) were undecided
    undecided = fail_open(gw) - before
    assert 2 * REQUESTS - 8 <= undecided <= 2 * REQUESTS, undecided
    assert gw.metrics().value("tollgate_fail_open_active") == 1

    # a summary a second, not a line a request
    log = said(gw, r'[0-9]+ requests without a decision.*fail mode open')
    lines = [line for line in log.splitlines()
             if "without a decision" in line]
    assert 1 <= len(lines) <= 3, lines


def test_closed_refuses_what_redis_cannot_decide(at_level_3):
    gw = at_level_3("closed")
    before = fail_open(gw)

    admitted, refused = burst(gw, "known")

    # only the lease pays: 16 tokens at most
    assert len(admitted) <= 8, (len(admitted), len(refused))
    assert len(refused) >= REQUESTS - 8
    assert check_rejection(gw, refused[-1]) == "local"
    assert refused[-1].header("Retry-After") == "1"
    assert '"local";q=0;w=1' in refused[-1].header("RateLimit-Policy")

    # never heard of: refused too, not admitted as in the other modes
    reply = gw.request("GET", "/obj/1k", app="fresh")
    assert check_rejection(gw, reply) == "local"

    assert fail_open(gw) == before
    assert gw.metrics().value("tollgate_fail_open_active") == 0


# a zone full of applications whose refills are all in flight ------------

DELAY_S = 6.0       # every refill stays in flight for as long
APPS = 300          # far more than a 32 KiB zone holds
THREADS = 6


@pytest.mark.parametrize("mode", ["local", "closed"])
def test_a_zone_with_no_record_to_spare_follows_the_mode(
        redis_servers, gateway, mode):
    """Redis is slow to answer, so every new application's first refill
    stays in flight and its record cannot be evicted (the reply would
    come back to a stranger).  Once the zone is full of them, a new
    application finds no record at all: admitted undecided in mode
    local, refused in mode closed."""
    r, _ = redis_servers.single(c1=100000)
    proxy = redis_servers.proxy(r.port, DELAY_S)
    gw = gateway(
        zone="tg:32k",
        http=tgdist.distributed_http(
            f"127.0.0.1:{proxy.port} timeout=15s", f"gw-{mode}",
            extra=f"tollgate_fail_mode {mode};\n"
                  + tgdist.CALM_DEGRADATION,
            wait="0ms"),
        cluster="tollgate_cluster c1;")

    names = [f"new{i}" for i in range(APPS)]
    statuses = tgdist.ask_each(gw, names, THREADS)

    m = gw.metrics()
    held = m.value("tollgate_zone_apps", zone="tg")
    evicted = m.value("tollgate_zone_evictions_total", zone="tg")
    undecided = m.value("tollgate_fail_open_total")
    print(f"\n{mode}: {held:.0f} applications held, {evicted:.0f} evicted, "
          f"{undecided:.0f} admitted undecided; statuses "
          f"{ {s: statuses.count(s) for s in set(statuses)} }")

    # every record's refill was in flight: nothing could be evicted, and
    # most applications never had a record
    assert evicted == 0
    assert held < APPS / 2, held

    if mode == "local":
        assert set(statuses) == {200}
        assert undecided == APPS

        # the log sums up a second at a time and names the last request
        said(gw, r'[0-9]+ requests without a decision')
        time.sleep(1.1)
        assert gw.request("GET", "/obj/1k", app="one-more").status == 200
        said(gw, r'1 requests without a decision in zone "tg".*app '
                 r'"one-more" in cluster "c1" at level 0: no room in the '
                 r'zone for it, every record is in use')
    else:
        assert set(statuses) == {429}
        assert undecided == 0
