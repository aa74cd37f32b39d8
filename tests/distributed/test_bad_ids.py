"""Malformed application ids in distributed mode: refused with a 400 that
says why, before any node is taken in shared memory or any call goes to
Redis, whether or not a well-formed id that looks like them is live in
the gateway.  (The gateway checks an id's characters only when the id is
not in its worker's cache of nodes, which never holds a malformed one.)
"""

import threading
import time

import pytest

import tgdist
from tgdist import lease_of, put_app

MALFORMED = [
    ("65 characters", "a" * 65),
    ("8 KiB", "b" * 8192),
    ("a live id and a slash", "live/"),
    ("a live id and a space", "live x"),
    ("path characters", "live/../live"),
    ("a quote", 'li"ve'),
    ("8 characters, one bad", "live-ok!"),
]


class Seen:
    result = None
    commands = ()


def commands_during(server, action, settle_s=0.3):
    """What Redis was sent (MONITOR) while action ran, and for settle_s
    after: an acquire the request started would go out within it."""
    seen = Seen()
    commands = []
    ready = threading.Event()
    stop = threading.Event()

    def watch():
        with server.client().monitor() as m:
            ready.set()
            for event in m.listen():
                commands.append(event["command"])
                if stop.is_set():
                    break

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    ready.wait(5)
    time.sleep(0.05)
    seen.result = action()
    time.sleep(settle_s)
    stop.set()
    # one more command wakes the watcher so that it sees the stop
    server.client().ping()
    t.join(5)
    seen.commands = commands
    return seen


@pytest.mark.parametrize("app", [m[1] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_id_is_refused_before_redis(redis_servers, gateway, app):
    r, rc = redis_servers.single(c1=100000)
    put_app(rc, "c1", "live", 1000)
    put_app(rc, "c1", "live-ok_", 1000)
    gw = gateway(http=tgdist.distributed_http(r.addr, "badids"),
                 cluster="tollgate_cluster c1;")

    # the well-formed neighbours are live in this worker's cache
    assert gw.request("GET", "/obj/1k", app="live").status == 200
    assert gw.request("GET", "/obj/1k", app="live-ok_").status == 200
    seen = commands_during(r, lambda: gw.request("GET", "/obj/1k", app=app))
    reply = seen.result

    assert reply.status == 400, reply
    assert reply.json()["error"] == "invalid_app"
    assert gw.entry(reply)["decision"] == "invalid_app"
    assert not gw.upstream_saw(reply)
    assert lease_of(gw, app) is None
    assert not [c for c in seen.commands if app in c], seen.commands
    assert gw.request("GET", "/obj/1k", app="live").status == 200
