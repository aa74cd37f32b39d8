"""The Redis reply timeout measures silence, not the age of a busy
connection.

`tollgate_redis ... timeout=` bounds how long a connection with calls
pending may stay without a reply.  nginx does not move a timer by less
than 300 ms (NGX_TIMER_LAZY_DELAY), so a timer restarted at every reply
stays where it was first set as long as calls keep coming: under a
steady stream of calls it fired one timeout after the first call,
however fast the replies came, and the connection was dropped.  The
benchmark with 100 000 applications (an acquire per request) met it
every second, and the gateway spent the run at level 3.

Here every reply takes DELAY_S, under the timeout, and requests for new
applications keep an acquire pending for longer than the lazy delay:
no call may be given up.  Then Redis is frozen, and the timeout must
still find the silence.
"""

import signal
import threading
import time

import tgdist
from tgdist import put_app, wait_for

DELAY_S = 0.040
TIMEOUT = "100ms"
THREADS = 4
SECONDS = 2.0
APPS = 2000


def failed_calls(gw):
    m = gw.metrics()
    return sum(m.value("tollgate_redis_calls_total", script=s,
                       result="failed")
               for s in ("acquire", "report", "heartbeat"))


def test_a_steady_stream_of_timely_replies_is_not_a_timeout(
        redis_servers, gateway):
    r, rc = redis_servers.single(c1=10000000)
    for i in range(APPS):
        put_app(rc, "c1", f"new-{i}", 1000, bump=False)

    proxy = redis_servers.proxy(r.port, DELAY_S)
    gw = gateway(http=tgdist.distributed_http(
                     f"127.0.0.1:{proxy.port} timeout={TIMEOUT}", "steady",
                     extra=tgdist.CALM_DEGRADATION),
                 cluster="tollgate_cluster c1;")

    # each request names an application not seen yet: one acquire each,
    # waited for, so some call is pending all the time
    names = iter(range(APPS))
    names_lock = threading.Lock()
    statuses = []
    deadline = time.monotonic() + SECONDS

    def run():
        with gw.client() as c:
            while time.monotonic() < deadline:
                with names_lock:
                    i = next(names, None)
                if i is None:
                    return
                statuses.append(c.request("GET", "/obj/1k",
                                          app=f"new-{i}").status)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    acquires = gw.metrics().value("tollgate_redis_calls_total",
                                  script="acquire", result="ok")
    log = gw.read_error_log()
    print(f"\n{len(statuses)} requests, {acquires:.0f} acquires answered "
          f"in {SECONDS:.0f} s through a {DELAY_S * 1000:.0f} ms proxy")

    # calls pending for several times the lazy delay
    assert acquires >= 100
    assert "reply timed out" not in log, log[-2000:]
    assert failed_calls(gw) == 0
    assert gw.metrics().value("tollgate_degradation_level") == 0
    assert set(statuses) == {200}

    # a silent Redis is still given up after the timeout
    r.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with gw.client() as c:
            c.request("GET", "/obj/1k", app="new-frozen")
        wait_for(lambda: "reply timed out" in gw.read_error_log(), 5,
                 "a frozen Redis was never timed out")
        print(f"frozen Redis timed out within "
              f"{time.monotonic() - started:.2f} s")
        assert time.monotonic() - started < 2.0
    finally:
        r.proc.send_signal(signal.SIGCONT)
