"""Fixtures of the chaos suite.

`gateway(...)` and `redis_servers` are those of tests/distributed (its
conftest.py, loaded here under another name, which loads tests/nginx's
in turn): gateways and Redis processes are stopped by PID at teardown,
gateways first, and a gateway's error log may hold no [alert], [emerg],
[crit], worker killed by a signal, or [error] the test did not declare.

`delay_proxy(target_port)` starts a delayproxy.AdjustableDelayProxy
(no delay at first) and stops it by PID at teardown.

`record(name, scenario)` gives a tgchaos.Record, written to
build/chaos/NAME.json (TOLLGATE_CHAOS_RESULTS) when the test ends, with
its outcome, for tests/chaos/render.py.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

import tgchaos
from delayproxy import AdjustableDelayProxy

_DIST_CONFTEST = (Path(__file__).resolve().parents[1]
                  / "distributed/conftest.py")
_spec = importlib.util.spec_from_file_location("tollgate_dist_conftest",
                                               _DIST_CONFTEST)
_dist = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _dist
_spec.loader.exec_module(_dist)

pytest_sessionstart = _dist.pytest_sessionstart
redis_servers = _dist.redis_servers
gateway = _dist.gateway


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.chaos_outcome = report.outcome


@pytest.fixture
def record(request):
    made = []

    def make(name, scenario):
        rec = tgchaos.Record(name, scenario)
        made.append(rec)
        return rec

    yield make

    outcome = getattr(request.node, "chaos_outcome", "error")
    for rec in made:
        rec.write(outcome)


@pytest.fixture
def delay_proxy():
    started = []

    def start(target_port):
        proxy = AdjustableDelayProxy(target_port, 0)
        started.append(proxy)
        return proxy.start()

    yield start

    for proxy in started:
        proxy.stop()
