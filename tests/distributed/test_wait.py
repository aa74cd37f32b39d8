"""tollgate_wait bounds how long a request the lease cannot cover waits
for the refill in flight; past it the request is decided locally
(docs/directives.md).

Redis sits DELAY_S away behind a proxy, farther than either wait, so a
new application's first request never sees its refill in time: it is
answered after the wait, not after the round trip.  Degradation is
calmed so that the slow calls do not change the level meanwhile.
"""

import time

import pytest

import tgdist
from tgdist import put_app

DELAY_S = 1.5


@pytest.mark.parametrize("wait_ms", [200, 700])
def test_a_request_waits_for_its_refill_no_longer_than_tollgate_wait(
        redis_servers, gateway, wait_ms):
    r, rc = redis_servers.single(c1=100000)
    put_app(rc, "c1", "new", 1000)
    proxy = redis_servers.proxy(r.port, DELAY_S)
    gw = gateway(http=tgdist.distributed_http(
                     f"127.0.0.1:{proxy.port} timeout=5s", "waiting",
                     extra=tgdist.CALM_DEGRADATION, wait=f"{wait_ms}ms"),
                 cluster="tollgate_cluster c1;")

    # the workers' connections to the proxy are made at start
    time.sleep(0.3)

    sent = time.monotonic()
    reply = gw.request("GET", "/obj/1k", app="new")
    took_s = time.monotonic() - sent

    print(f"\ntollgate_wait {wait_ms}ms, Redis {DELAY_S * 1000:.0f} ms "
          f"away: first request answered {reply.status} after "
          f"{took_s * 1000:.0f} ms")

    # decided locally once the wait was over: admitted, and said so
    assert reply.status == 200, reply
    assert wait_ms / 1000 <= took_s < wait_ms / 1000 + 0.4, took_s
    assert gw.metrics().value("tollgate_fail_open_total") == 1
