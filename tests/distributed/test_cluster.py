"""Redis Cluster: six nodes, three masters with a replica each.  Two
storage clusters whose hash tags land on different shards are limited
at the same time through the same gateways; each one's keys and script
calls stay on its own shard."""

import time

import tgdist
from tgdist import (Load, put_app, running, script_calls, statuses_of,
                    wait_for)
from test_shared_quota import SharedQuota, run_shared_quota

# the second storage cluster is served under /other/
OTHER_LOCATION = """
        location /other/ {{
            tollgate_cluster {cluster};
            tollgate zone=tg app=$http_x_app_id;
            proxy_pass http://storage/;
        }}
"""


def clusters_on_two_shards(rcluster, candidates=20):
    """Two storage cluster ids whose {tag} slots are served by two
    different masters."""
    ids = [f"sc{i}" for i in range(candidates)]
    first = rcluster.node_of(f"tg:{{{ids[0]}}}:cluster")
    for other in ids[1:]:
        if rcluster.node_of(f"tg:{{{other}}}:cluster") is not first:
            return ids[0], other
    raise AssertionError("every candidate id lands on one shard")


def test_two_storage_clusters_on_two_shards_hold_their_limits(
        redis_servers, gateway):
    rcluster = redis_servers.cluster()
    one, two = clusters_on_two_shards(rcluster)
    shard_one = rcluster.node_of(f"tg:{{{one}}}:cluster")
    shard_two = rcluster.node_of(f"tg:{{{two}}}:cluster")

    spec = "cluster=" + ",".join(n.addr for n in rcluster.nodes[:3])
    gateways = tgdist.start_gateways(
        gateway, 2, spec, cluster=one,
        server=OTHER_LOCATION.format(cluster=two))

    rc = rcluster.client()
    first = SharedQuota(gateways, rc, cluster=one)
    second = SharedQuota(gateways, rc, cluster=two, path="/other/obj/1k")
    calls_before = [script_calls(s.client()) for s in (shard_one, shard_two)]

    run_shared_quota([first, second], 5)
    first.check(f"Redis Cluster, {one} on :{shard_one.port}")
    second.check(f"Redis Cluster, {two} on :{shard_two.port}")

    # each storage cluster's state lives on its own shard, and both
    # shards ran scripts
    for cluster, shard in ((one, shard_one), (two, shard_two)):
        key = f"tg:{{{cluster}}}:state:hot"
        assert rcluster.node_of(key) is shard
        assert shard.client().exists(key), key
    calls_after = [script_calls(s.client()) for s in (shard_one, shard_two)]
    assert all(a > b for a, b in zip(calls_after, calls_before)), (
        calls_before, calls_after)

    # a replica takes over the first shard: the gateways are answered
    # MOVED and follow the slot to its new master
    put_app(rc, one, "steady", 100000)
    loads = [Load(gw, "steady", 50) for gw in gateways]
    promoted = rcluster.replica_of(shard_one)
    with running(loads):
        time.sleep(1)
        promoted.client().execute_command("CLUSTER FAILOVER")
        wait_for(lambda: rcluster.node_of(f"tg:{{{one}}}:cluster")
                 is promoted, 15, "the replica never took the slots over")
        calls_at_switch = script_calls(promoted.client())
        time.sleep(3)

    statuses = statuses_of(loads)
    print(f"\nthrough the failover of :{shard_one.port} to "
          f":{promoted.port}: {statuses}")
    assert set(statuses) == {200}, statuses
    assert script_calls(promoted.client()) > calls_at_switch
