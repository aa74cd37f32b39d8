"""What the cheap request path must not change: batches of tokens taken
by the full rules (10 ms of an application's top rate), the application
id read straight from its header, and contexts reused across requests."""

import time

from tgnginx import find_app, spend

# burst 1000 tokens/s: a batch is 10 tokens, five GETs of 2 tokens
BATCHED = """
    tollgate_cluster_capacity c1 capacity=100000 reserved=0.1;
    tollgate_app batched guaranteed=100 burst=1000;
    tollgate_app small guaranteed=4 burst=10;
"""


def batch_of(gw, app):
    return find_app(gw.status(), app)["tokens"]["batch"]


def test_batch_pays_the_next_requests_and_is_taken_again_when_spent(gateway):
    gw = gateway(http=BATCHED)

    # the first GET takes its 2 tokens and a batch of 10
    seen = []
    with gw.client() as c:
        for _ in range(7):
            assert c.request("GET", "/obj/1k", app="batched").status == 200
            seen.append(batch_of(gw, "batched"))

    assert seen == [10, 8, 6, 4, 2, 0, 10], seen

    app = find_app(gw.status(), "batched")
    assert app["requests"]["allowed"] == 7
    assert app["cost_total"] == 14


def test_rate_too_small_for_a_batch_is_decided_request_by_request(gateway):
    gw = gateway(http=BATCHED)

    with gw.client() as c:
        admitted, refusal = spend(c, "small", 20)

    assert refusal is not None and refusal.status == 429
    assert batch_of(gw, "small") == 0
    # ten tokens held, two per GET, and at most a token of refill
    assert len(admitted) == 5, len(admitted)


def test_batches_admit_no_more_than_the_quota(gateway):
    gw = gateway(http=BATCHED)

    with gw.client() as c:
        started = time.monotonic()
        admitted, refusal = spend(c, "batched", 3000)
        elapsed_s = time.monotonic() - started

    assert refusal is not None, "batched was never refused"
    assert refusal.status == 429
    spent = 2 * len(admitted)
    # one second of burst held, refill at 1000 tokens/s while spending,
    # and the one batch that may still be unspent when refused
    assert spent <= 1000 + 1000 * elapsed_s + 10, (spent, elapsed_s)
    # and nothing was lost: what is held in a batch pays the same app
    assert spent >= 1000 - 2, spent


def test_app_header_is_read_as_http_variable_reads_it(gateway):
    gw = gateway(http=BATCHED, server="underscores_in_headers on;")

    with gw.client() as c:
        lower = c.request("GET", "/obj/1k", headers={"x-app-id": "batched"})
        underscored = c.request("GET", "/obj/1k",
                                headers={"X_App_Id": "batched"})
        other = c.request("GET", "/obj/1k", headers={"X-App-Idx": "batched"})

    assert lower.status == 200
    assert underscored.status == 200
    assert other.status == 400, other.status
    assert find_app(gw.status(), "batched")["requests"]["allowed"] == 2


def test_header_with_underscores_ignored_by_default(gateway):
    gw = gateway(http=BATCHED)

    with gw.client() as c:
        reply = c.request("GET", "/obj/1k", headers={"X_App_Id": "batched"})

    # nginx drops the invalid header name, so no application is named
    assert reply.status == 400, reply.status
    assert b"missing_app" in reply.body


def test_contexts_reused_across_requests_keep_nothing(gateway):
    gw = gateway(http=BATCHED)

    # allowed, refused and unnamed requests take turns on one connection:
    # a reused context must not carry a decision or an app to the next
    with gw.client() as c:
        for _ in range(5):
            assert c.request("GET", "/obj/1k", app="batched").status == 200
            assert c.request("GET", "/obj/1k", app="nobody").status == 403
            assert c.request("GET", "/obj/1k").status == 400

    assert find_app(gw.status(), "batched")["requests"]["allowed"] == 5

    # each line's decision, cost and layer are its own request's
    expected = {"200": ("2", "allowed", "guaranteed"),
                "403": ("0", "unknown_app", ""),
                "400": ("0", "missing_app", "")}
    lines = [line.split(" ") for line in gw.access_log.read_text().splitlines()
             if " /obj/1k " in line]
    assert len(lines) == 15, lines
    for fields in lines:
        status, cost, decision, layer = fields[3:7]
        assert (cost, decision, layer) == expected[status], fields


# ids of every length class the app table reads differently (1-3 bytes,
# 4-8 as two words, more as 8-byte words), and near misses of each
TABLE_IDS = ["a", "ab", "abc", "abcd", "abcdefg", "abcdefgh", "abcdefghi",
             "a" * 16 + "z", "app.tenant-" + "0" * 53]
NEAR_MISSES = ["b", "aB", "abd", "abce", "abcdxfg", "abcdefgg", "abcdxfghi",
               "a" * 15 + "bz", "app.tenant-" + "0" * 52 + "1", "abcde"]


def test_declared_ids_of_every_length_are_found_and_near_misses_are_not(
        gateway):
    http = "tollgate_cluster_capacity c1 capacity=100000 reserved=0.1;\n" + \
        "".join(f"tollgate_app {app} guaranteed=100 burst=100;\n"
                for app in TABLE_IDS)
    gw = gateway(http=http)

    with gw.client() as c:
        found = {app: c.request("GET", "/obj/1k", app=app).status
                 for app in TABLE_IDS}
        missed = {app: c.request("GET", "/obj/1k", app=app).status
                  for app in NEAR_MISSES}

    assert set(found.values()) == {200}, found
    assert set(missed.values()) == {403}, missed
    status = gw.status()
    for app in TABLE_IDS:
        assert find_app(status, app)["requests"]["allowed"] == 1, app
