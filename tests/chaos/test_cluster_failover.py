"""A Redis Cluster master dies (SIGKILL) under load.

Six local nodes, three masters with a replica each, cluster-node-timeout
2000 ms (tgdist.RedisCluster).  The master serving the slot of {c1} is
killed; its replica is promoted once the others agree it failed.  What
must hold:

- every request is answered, none with a 5xx; the application, far
  under its quota, is never refused;
- the gateway notices (the level rises) and, once the replica is
  promoted, follows the slot to it (MOVED, or a refreshed slot map): it
  decides through Redis again, on the new master: its acquire calls
  succeed there and that node's state of the application grows;
- the level is back to 0 within 30 s of the promotion.
"""

import time

import tgchaos
from tgchaos import LevelWatch, Traffic, level_at_least, level_is

RATE_RPS = 100
WARM_S = 2.0
SYNC_MAX_S = 20.0
PROMOTE_MAX_S = 20.0
BACK_MAX_S = 20.0
RECOVER_MAX_S = 30.0

STATE = "tg:{c1}:state:steady"

# while the dead master's slots have no owner, the whole cluster answers
# CLUSTERDOWN (cluster-require-full-coverage)
CLUSTER_TROUBLE = tgchaos.REDIS_TROUBLE + (
    r"tollgate: redis \w+ failed: CLUSTERDOWN",
)


def granted_on(node):
    try:
        return int(node.client().hget(STATE, "granted_total") or 0)
    except tgchaos.redis.RedisError:
        return 0


def replica_in_sync(rcluster, master):
    """The master's replica, once the cluster knows it and it holds a
    copy: a replica that never synced is never promoted (Redis judges
    its data too old)."""
    found = []

    def synced():
        found[:] = [rcluster.replica_of(master)]
        info = found[0].client().info("replication")
        return info.get("master_link_status") == "up"

    tgchaos.tgdist.wait_for(lambda: _quiet(synced), SYNC_MAX_S,
                            "the replica never synced with its master")
    return found[0]


def _quiet(condition):
    """False rather than IndexError while CLUSTER REPLICAS is still
    empty (the nodes learn of each other by gossip)."""
    try:
        return condition()
    except IndexError:
        return False


def test_cluster_master_killed_replica_promoted_gateway_follows(
        record, redis_servers, gateway):
    rec = record("cluster_failover", "Redis Cluster master killed "
                 "(SIGKILL), replica promoted")
    rcluster = redis_servers.cluster()
    client = rcluster.client()
    tgchaos.tgdist.put_cluster(client, "c1", capacity=100000)
    tgchaos.tgdist.put_app(client, "c1", "steady", 100000)

    master = rcluster.node_of("tg:{c1}:cluster")
    replica = replica_in_sync(rcluster, master)
    spec = "cluster=" + ",".join(n.addr for n in rcluster.nodes)
    gw = tgchaos.start_gateway(gateway, spec,
                               expect_errors=CLUSTER_TROUBLE)

    traffic = Traffic(gw, "steady", RATE_RPS, threads=2)
    with LevelWatch(gw) as watch, traffic:
        time.sleep(WARM_S)
        assert granted_on(master) > 0, "the gateway never used the master"

        fault_at = time.monotonic()
        master.kill()

        promoted = tgchaos.tgdist.poll(
            lambda: replica.client().info("replication")["role"]
            == "master", PROMOTE_MAX_S)
        promoted_at = time.monotonic()
        assert promoted, f"replica :{replica.port} never promoted"

        # deciding through Redis again, on the new master
        granted_at_promotion = granted_on(replica)
        metrics_at_promotion = gw.metrics()
        back = tgchaos.tgdist.poll(
            lambda: granted_on(replica) > granted_at_promotion, BACK_MAX_S)
        back_at = time.monotonic()

        recover_s = watch.wait(level_is(0), promoted_at, RECOVER_MAX_S)
        detect_s = watch.wait(level_at_least(1), fault_at, 0)
        time.sleep(1)
        after = gw.metrics()

    rec["detect_s"] = detect_s
    rec["failover_s"] = promoted_at - fault_at
    rec["redis_again_s"] = back_at - fault_at
    rec["recover_s"] = (promoted_at - fault_at) + recover_s \
        if recover_s is not None else None
    rec["levels_seen"] = watch.levels(since=fault_at)
    rec.traffic([traffic])
    rec.note(f"replica promoted {promoted_at - fault_at:.1f} s after the "
             f"kill; acquire through it {back_at - fault_at:.1f} s after; "
             f"levels {rec['levels_seen']}")
    acquired = (tgchaos.redis_calls(after, "acquire")
                - tgchaos.redis_calls(metrics_at_promotion, "acquire"))
    print(f"\nmaster :{master.port} killed; :{replica.port} promoted after "
          f"{promoted_at - fault_at:.2f} s, granting after "
          f"{back_at - fault_at:.2f} s; levels {rec['levels_seen']}, level "
          f"0 {recover_s} s after the promotion; {acquired:.0f} acquire "
          f"calls since; statuses {rec['statuses']}")

    assert rec["errors_5xx"] == 0, rec["statuses"]
    assert traffic.statuses() == {200: len(traffic.between())}, (
        traffic.statuses())
    assert back, "no grant from the promoted replica: MOVED not followed"
    assert acquired > 0
    assert detect_s is not None, "the level never rose"
    assert recover_s is not None, (
        f"not back to level 0 within {RECOVER_MAX_S} s of the promotion: "
        f"{watch.latest()}")
