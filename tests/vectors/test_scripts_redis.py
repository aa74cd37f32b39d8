"""What the vectors cannot say: replies as the gateway reads them,
concurrency, idempotency under retries, events, and the scripts that
keep no quota state (reconcile, seed, heartbeat)."""

import threading

import pytest
import redis

from tgredis import SCRIPTS

T0 = 1700000000000


def server_ms(r):
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


def in_threads(count, work):
    """Runs work(i) in count threads started together; their results."""
    results = [None] * count
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def cluster(new_cluster):
    c = new_cluster()
    c.put_cluster(capacity=10000, reserved_ratio="0.2")
    c.put_app("a", guaranteed_quota=100, burst_quota=300, priority=1,
              max_borrow=0, cost_profile="standard", version=7)
    return c


# replies as the gateway reads them

def test_acquire_replies_with_the_application_configuration(cluster):
    reply = cluster.acquire("a", 10, 1, T0)
    assert reply == [0, 10, 2, 0, 290, 0, 100, 300, 1, 0, "standard", 7]


def test_unknown_application_and_cluster_keep_the_reply_length(new_cluster):
    c = new_cluster()
    assert c.acquire("a", 1, 1, T0) == [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, "", 0]
    c.put_cluster(capacity=10, reserved_ratio="0")
    assert c.acquire("a", 1, 1, T0) == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, "", 0]
    assert c.report("a", "g", 1, 1, 1, 1, T0) == [0, 0, 1]
    assert c.borrow("a", 1, T0) == [1, 0, 0]
    assert c.repay("a", 1, T0) == [1, 0, 0]
    # nothing was created for the unknown application
    assert not c.r.exists(c.key("state", "a"), c.key("rep", "g"))


def test_malformed_arguments_are_errors_not_decisions(cluster):
    with pytest.raises(redis.ResponseError, match="tollgate: .want_tokens"):
        cluster.acquire("a", "ten", 1, T0)
    with pytest.raises(redis.ResponseError, match="tollgate: .tokens. is "
                       "negative"):
        cluster.borrow("a", -5, T0)
    with pytest.raises(redis.ResponseError, match="on, off or auto"):
        cluster.emergency("maybe", now=T0)
    assert not cluster.r.exists(cluster.key("state", "a"))


def test_an_empty_now_uses_the_redis_clock(cluster):
    before = server_ms(cluster.r)
    assert cluster.acquire("a", 1, 1)[1] == 1
    after = server_ms(cluster.r)
    last_ms = int(cluster.r.hget(cluster.key("state", "a"), "g_last_ms"))
    assert before <= last_ms <= after


# idempotency

def test_a_retried_report_counts_once(cluster):
    cluster.acquire("a", 100, 1, T0)
    assert cluster.report("a", "g1", 41, 60, 40, 0, T0) == [1, 240, 0]
    for _ in range(3):
        assert cluster.report("a", "g1", 41, 60, 40, 0, T0)[0] == 0
    state = cluster.r.hgetall(cluster.key("state", "a"))
    assert state["used_total"] == "60"
    assert state["returned_total"] == "40"
    assert state["g_mtok"] == "40000"
    # the sequence is kept for an hour after the last report
    assert 3590000 < cluster.r.pttl(cluster.key("rep", "g1")) <= 3600000


def test_the_same_report_sent_at_once_by_many_clients_counts_once(cluster):
    cluster.acquire("a", 100, 1, T0)

    def send(i):
        return cluster.report("a", "g1", 5, 10, 0, 3, T0)[0]

    assert sorted(in_threads(8, send)) == [0] * 7 + [1]
    state = cluster.r.hgetall(cluster.key("state", "a"))
    assert state["used_total"] == "10"
    assert state["debt_mtok"] == "3000"


def test_sequences_are_per_gateway_and_application(cluster):
    cluster.put_app("b", guaranteed_quota=10, burst_quota=10)
    assert cluster.report("a", "g1", 1, 1, 0, 0, T0)[0] == 1
    assert cluster.report("b", "g1", 1, 1, 0, 0, T0)[0] == 1
    assert cluster.report("a", "g2", 1, 1, 0, 0, T0)[0] == 1
    assert cluster.report("a", "g1", 1, 1, 0, 0, T0)[0] == 0


# concurrency: Redis runs each script alone, so no interleaving of
# clients may grant more than the buckets and the pool hold

def test_concurrent_acquires_at_one_instant_grant_the_buckets_once(cluster):
    def take(i):
        return sum(cluster.acquire("a", 3, 1, T0)[1] for _ in range(50))

    granted = in_threads(8, take)
    # guaranteed 100 + burst 300 - 100: one second of B, not a token more
    assert sum(granted) == 300
    state = cluster.r.hgetall(cluster.key("state", "a"))
    pool = cluster.r.hgetall(cluster.key("pool"))
    assert state["granted_total"] == pool["granted_total"] == "300"


def test_concurrent_acquires_never_exceed_the_refill(cluster):
    start = server_ms(cluster.r)

    def take(i):
        total = 0
        while server_ms(cluster.r) < start + 600:
            total += cluster.acquire("a", 7, 1)[1]
        return total

    granted = sum(in_threads(6, take))
    end = server_ms(cluster.r)
    # full buckets at start, then B = 300 tokens/s at most
    assert 300 <= granted <= 300 + 300 * (end - start) // 1000 + 1


def test_concurrent_applications_never_exceed_the_pool(new_cluster):
    c = new_cluster()
    c.put_cluster(capacity=100, reserved_ratio="0.2")
    for app in ("a", "b", "c"):
        c.put_app(app, guaranteed_quota=40, burst_quota=100, priority=0)

    def take(i):
        app = "abc"[i % 3]
        return sum(c.acquire(app, 2, 1, T0)[1] for _ in range(40))

    assert sum(in_threads(6, take)) <= 100
    assert int(c.r.hget(c.key("pool"), "level_mtok")) >= 0


# events

def test_automatic_emergency_is_recorded_on_and_off(new_cluster):
    c = new_cluster()
    c.put_cluster(capacity=100, reserved_ratio="0", window_ms=1000)
    c.put_app("a", guaranteed_quota=100, burst_quota=100, priority=1)
    c.acquire("a", 100, 1, T0, gateway="gw-7")
    assert c.acquire("a", 1, 1, T0 + 10, gateway="gw-7")[5] == 1
    assert c.acquire("a", 1, 1, T0 + 300010, gateway="gw-8")[5] == 0
    events = c.events()
    assert [e["type"] for e in events] == ["emergency_on", "emergency_off"]
    assert events[0]["who"] == "gw-7"
    assert events[0]["after"] == f"auto until {T0 + 300010}"
    assert events[1]["reason"] == "expired"
    emergency = c.r.hgetall(c.key("emergency"))
    assert emergency["active"] == "0" and emergency["mode"] == "off"


def test_operator_actions_are_recorded_with_who_and_why(cluster):
    cluster.put_app("a", max_borrow=50)
    cluster.borrow("a", 20, T0, who="alice")
    cluster.repay("a", 5, T0, who="bob")
    cluster.emergency("on", "disk rebuild", 60000, "carol", T0)
    borrow, repay, emergency = cluster.events()
    assert (borrow["type"], borrow["who"], borrow["lent"]) == \
        ("borrow", "alice", "20")
    assert (repay["type"], repay["who"], repay["repaid"]) == \
        ("repay", "bob", "5")
    assert emergency["reason"] == "disk rebuild"
    assert emergency["before"] == "off"
    assert emergency["after"] == f"manual until {T0 + 60000}"
    state = cluster.r.hgetall(cluster.key("emergency"))
    assert state["set_by"] == "carol"


# reconcile

def test_reconcile_corrects_the_pool_after_a_lost_state(cluster):
    cluster.put_app("b", guaranteed_quota=100, burst_quota=100)
    cluster.acquire("a", 30, 1, T0)
    cluster.acquire("b", 20, 1, T0)
    assert cluster.reconcile(["a", "b"], T0) == [0, 0]

    # b deleted: its 20 tokens are no longer anyone's
    cluster.r.delete(cluster.key("state", "b"))
    assert cluster.reconcile(["a"], T0 + 5) == [20, 1]
    pool = cluster.r.hgetall(cluster.key("pool"))
    assert pool["granted_total"] == "30"
    assert pool["reconciled_ms"] == str(T0 + 5)
    assert pool["level_mtok"] == str((10000 - 50) * 1000)
    assert cluster.reconcile(["a"], T0 + 6) == [0, 0]


def test_reconcile_tolerates_one_token(cluster):
    cluster.acquire("a", 30, 1, T0)
    cluster.r.hincrby(cluster.key("pool"), "granted_total", -1)
    assert cluster.reconcile(["a"], T0) == [-1, 0]
    cluster.r.hincrby(cluster.key("pool"), "granted_total", -1)
    assert cluster.reconcile(["a"], T0) == [-2, 1]
    assert cluster.r.hget(cluster.key("pool"), "granted_total") == "30"


def test_reconcile_does_not_create_a_pool(cluster):
    cluster.acquire("a", 30, 1, T0)
    cluster.r.delete(cluster.key("pool"))
    assert cluster.reconcile(["a"], T0) == [-30, 0]
    assert not cluster.r.exists(cluster.key("pool"))


# seed

def test_seed_creates_only_what_is_absent(new_cluster):
    c = new_cluster()
    app = ["a", c.cid, 10, 20, 0, 5, "standard", 0]
    assert c.seed([100, "0.2", "", 0], "a", app) == [1, 1]
    assert c.r.get(c.key("version")) == "1"
    assert c.r.smembers(c.key("apps")) == {"a"}
    assert c.r.hget(c.key("cluster"), "window_ms") is None

    app[2] = 99
    assert c.seed([500, "0.5", "2000", 0], "a", app) == [0, 0]
    assert c.r.get(c.key("version")) == "1"
    assert c.r.hget(c.key("app", "a"), "guaranteed_quota") == "10"
    assert c.acquire("a", 100, 1, T0)[6:8] == [10, 20]


def test_seed_of_a_cluster_alone(new_cluster):
    c = new_cluster()
    assert c.seed([100, "0.2", "1000", 0]) == [1, 0]
    assert c.r.hgetall(c.key("cluster")) == {
        "capacity": "100", "reserved_ratio": "0.2", "window_ms": "1000",
        "version": "0"}


def test_the_admin_replaces_a_seeded_application(new_cluster):
    c = new_cluster()
    c.seed([100, "0.2", "", 0], "a", ["a", c.cid, 10, 20, 0, 5, "std", 0])
    admin = (SCRIPTS / "admin_put_app.lua").read_text()
    assert c.r.eval(admin, 3, c.key("app", "a"), c.key("apps"),
                    c.key("version"), 1, "a", c.cid, 30, 40, 1, 0,
                    "std") == 1
    assert c.acquire("a", 100, 1, T0)[6:] == [30, 40, 1, 0, "std", 1]


# heartbeat

def test_heartbeat_counts_live_gateways_and_drops_silent_ones(new_cluster):
    c = new_cluster()
    c.put_cluster(capacity=100, reserved_ratio="0.2")
    assert c.heartbeat("g1", now=T0)[0] == 1
    assert c.heartbeat("g2", now=T0 + 1000)[0] == 2
    # g2 has been silent for exactly 10 s: gone
    assert c.heartbeat("g1", 2, 987, 1000, 3, now=T0 + 11000) == [1, 0, 0]
    assert c.r.zrange(c.key("gateways"), 0, -1) == ["g1"]
    assert c.r.hgetall(c.key("gw", "g1")) == {
        "level": "2", "hit_rate_permille": "987", "requests": "1000",
        "rejected": "3", "updated_ms": str(T0 + 11000)}
    assert 29000 < c.r.pttl(c.key("gw", "g1")) <= 30000


def test_heartbeat_tells_the_version_and_the_emergency(new_cluster):
    c = new_cluster()
    c.seed([100, "0.2", "", 0])
    c.emergency("on", "test", 5000, "ops", T0)
    assert c.heartbeat("g1", now=T0 + 1000) == [1, 1, 1]
    c.r.incr(c.key("version"))
    assert c.heartbeat("g1", now=T0 + 5000) == [1, 2, 0]
