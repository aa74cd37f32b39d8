"""Fixtures of the gateway suite: real nginx, real module, real upstream.

`gateway(...)` starts a Gateway (see tgnginx.py) and, at teardown, stops
it by PID and fails the test if its error log holds an [alert], [emerg]
or [crit] line, a worker killed by a signal, or an [error] line the test
did not declare with expect_errors.
"""

import pytest

from tgnginx import MODULE, NGINX, Gateway, config_test


def pytest_sessionstart(session):
    # not a skip: a suite that cannot run must not look green; and one
    # clear line rather than every test failing on the same dlopen()
    if not MODULE.exists():
        raise pytest.UsageError(
            f"{MODULE} is missing: build it with `make module` "
            "(or point TOLLGATE_MODULE at a build)")
    code, output = config_test()
    if code != 0 and "dlopen()" in output:
        raise pytest.UsageError(f"nginx cannot load {MODULE}:\n{output}")


@pytest.fixture
def gateway():
    started = []

    def start(**snippets):
        gw = Gateway(**snippets)
        started.append(gw)
        return gw.start()

    yield start

    problems = []
    for gw in started:
        problems += gw.stop()
        problems += gw.error_log_problems()
        gw.cleanup()
    assert not problems, f"{NGINX} logged:\n" + "\n".join(problems)
