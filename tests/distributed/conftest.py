"""Fixtures of the distributed-mode suite.

`gateway(...)` and the session check that the module loads are those of
tests/nginx (its conftest.py, loaded here under another name): each
gateway is stopped by PID at teardown and its error log must hold no
[alert], [emerg], [crit], "exited on signal" or undeclared [error].

`redis_servers` starts Redis processes (a single server, a Sentinel set,
a Redis Cluster, see tgdist.py) and stops them all by PID at teardown,
after the gateways that use them (fixtures are torn down in reverse).
"""

import importlib.util
import sys
from pathlib import Path

import pytest

import tgdist

_NGINX_CONFTEST = Path(__file__).resolve().parents[1] / "nginx/conftest.py"
_spec = importlib.util.spec_from_file_location("tollgate_nginx_conftest",
                                               _NGINX_CONFTEST)
_nginx = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _nginx
_spec.loader.exec_module(_nginx)

pytest_sessionstart = _nginx.pytest_sessionstart


class RedisProcesses:
    def __init__(self):
        self.started = []

    def _keep(self, thing):
        self.started.append(thing)
        return thing.start()

    def single(self, args=(), **clusters):
        """A redis-server holding the clusters named, each with the
        capacity given (clusters c1=100000); returns it and a client."""
        server = self._keep(tgdist.RedisServer(args=args))
        client = server.client()
        for cluster, capacity in clusters.items():
            tgdist.put_cluster(client, cluster, capacity=capacity)
        return server, client

    def sentinel(self):
        return self._keep(tgdist.SentinelSet())

    def cluster(self):
        return self._keep(tgdist.RedisCluster())

    def proxy(self, target_port, delay_s):
        return self._keep(tgdist.DelayProxy(target_port, delay_s))

    def stop_all(self):
        for thing in reversed(self.started):
            if isinstance(thing, tgdist.DelayProxy):
                thing.stop()
            else:
                thing.cleanup()


@pytest.fixture
def redis_servers():
    processes = RedisProcesses()
    yield processes
    processes.stop_all()


# declared after redis_servers in a test's arguments, gateways stop first
gateway = _nginx.gateway
