"""Fixtures of the Redis script tests: one private redis-server for the
session, the scripts loaded once, and a fresh storage cluster id for
every use, so that no test sees another's keys."""

import itertools

import pytest

from tgredis import Cluster, RedisServer, Scripts


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()
    server.cleanup()


@pytest.fixture(scope="session")
def scripts(redis_server):
    return Scripts(redis_server.client())


_ids = itertools.count(1)


@pytest.fixture
def new_cluster(redis_server, scripts):
    """new_cluster() -> a Cluster with an id no other test uses."""

    def make(name="c"):
        return Cluster(redis_server.client(), scripts,
                       f"{name}-{next(_ids)}")

    return make
