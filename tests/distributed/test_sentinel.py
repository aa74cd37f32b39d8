"""The shared quota again, with the gateways finding Redis through
Sentinel, and a failover in the middle of the traffic: every request is
still answered without a 5xx, and the gateways follow the new master."""

import time

import tgdist
from tgdist import (Load, put_app, running, script_calls, statuses_of,
                    wait_for)
from test_shared_quota import SharedQuota, run_shared_quota


def test_shared_quota_through_sentinel_survives_a_failover(
        redis_servers, gateway):
    sentinels = redis_servers.sentinel()
    spec = ("sentinel=" + ",".join(s.addr for s in sentinels.sentinels)
            + f" master={sentinels.MASTER_NAME}")
    gateways = tgdist.start_gateways(gateway, 3, spec)
    old = sentinels.master
    rc = old.client()

    shared = SharedQuota(gateways, rc)
    run_shared_quota([shared], 5)
    shared.check("Sentinel")

    # traffic that is never limited, through the failover
    put_app(rc, "c1", "steady", 100000)
    loads = [Load(gw, "steady", 50) for gw in gateways]
    with running(loads):
        time.sleep(1)
        sentinels.sentinels[0].client().execute_command(
            "SENTINEL", "FAILOVER", sentinels.MASTER_NAME)
        wait_for(lambda: sentinels.master_port() != old.port, 20,
                 "the sentinels never named a new master")
        new = sentinels.replica
        assert sentinels.master_port() == new.port
        wait_for(lambda: new.client().info("replication")["role"] == "master",
                 10, "the replica never took the master role")
        calls_at_switch = script_calls(new.client())
        time.sleep(3)

    statuses = statuses_of(loads)
    print(f"\nthrough the failover: {statuses}")
    assert set(statuses) == {200}, statuses

    # the gateways run their scripts on the new master now
    assert script_calls(new.client()) > calls_at_switch
    beats = new.client().zrange("tg:{c1}:gateways", 0, -1, withscores=True)
    assert {gw for gw, _ in beats} == {"gw1", "gw2", "gw3"}
    oldest_ms = min(score for _, score in beats)
    assert time.time() * 1000 - oldest_ms < 2500, beats
    for gw in gateways:
        assert f'master "{sentinels.MASTER_NAME}" is {new.addr}' in (
            gw.read_error_log())
