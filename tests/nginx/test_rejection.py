"""Refusing an application over its quota, and only that application."""

import threading
import time

import pytest

from tgnginx import Worker, check_rejection, free_ports, parse_policies, spend

TWO_APPS = """
    tollgate_cluster_capacity c1 capacity=1000 reserved=0.2;
    tollgate_app slow guaranteed=4 burst=10;
    tollgate_app roomy guaranteed=500 burst=500;
"""


def test_app_over_quota_gets_429_while_another_keeps_its_service(gateway):
    gw = gateway(http=TWO_APPS)
    roomy_statuses = []
    stop = threading.Event()

    def roomy_traffic():
        with gw.client() as c:
            while not stop.is_set():
                roomy_statuses.append(c.request("GET", "/obj/1k", app="roomy").status)
                time.sleep(0.01)   # well under roomy's 250 GETs/s

    neighbour = Worker(roomy_traffic)
    neighbour.start()
    try:
        with gw.client() as c:
            started = time.monotonic()
            admitted, refusal = spend(c, "slow", 60)
            elapsed_s = time.monotonic() - started
            later = [c.request("GET", "/obj/1k", app="slow") for _ in range(10)]
    finally:
        stop.set()
        neighbour.join()

    # one second of burst held (10 tokens), then 10 tokens/s at most
    assert refusal is not None, "slow was never refused"
    assert 2 * len(admitted) <= 10 + 10 * elapsed_s + 2
    layer = check_rejection(gw, refusal)
    assert layer in ("guaranteed", "burst"), layer
    assert all(r.status == 429 for r in later), later

    policies = parse_policies(refusal.header("RateLimit-Policy"))
    assert policies["guaranteed"]["q"] == "4"
    assert policies["burst"]["q"] == "10"
    assert policies["cluster"]["q"] == "1000"
    assert "debt" not in policies, "slow may not borrow"

    assert roomy_statuses and set(roomy_statuses) == {200}, roomy_statuses


@pytest.mark.parametrize("app", ["slow", "borrower"])
def test_retry_after_is_long_enough(gateway, app):
    gw = gateway(http=TWO_APPS + """
        tollgate_app borrower guaranteed=4 burst=4 max_borrow=10;
    """)
    admitted, refusal = spend(gw, app, 40)
    assert refusal is not None and refusal.status == 429

    time.sleep(int(refusal.header("Retry-After")))

    again = gw.request("GET", "/obj/1k", app=app)
    assert again.status == 200, (refusal.headers["RateLimit"], again)


def test_rejection_status_code_is_configurable(gateway):
    gw = gateway(http=TWO_APPS, location="tollgate_status_code 503;")

    admitted, refusal = spend(gw, "slow", 30)

    assert admitted and refusal is not None
    check_rejection(gw, refusal, status=503)


@pytest.mark.parametrize("headers_on", [True, False], ids=["on", "off"])
def test_ratelimit_header_on_allowed_reply_follows_tollgate_headers(
        gateway, headers_on):
    gw = gateway(http=TWO_APPS,
                 location=f"tollgate_headers {'on' if headers_on else 'off'};")

    reply = gw.request("GET", "/obj/1k", app="slow")

    assert reply.status == 200
    value = reply.header("RateLimit")
    if headers_on:
        assert value is not None, reply
        (layer, params), = parse_policies(value).items()
        assert layer in ("guaranteed", "burst", "cluster"), value
        assert int(params["r"]) >= 0 and int(params["t"]) >= 1, value
    else:
        assert value is None, reply


@pytest.mark.parametrize("level", [None, "info", "warn", "error"],
                         ids=["default notice", "info", "warn", "error"])
def test_rejection_is_logged_once_at_the_chosen_level(gateway, level):
    gw = gateway(
        http=TWO_APPS,
        location=f"tollgate_log_level {level};" if level else "",
        expect_errors=['"slow"'] if level == "error" else [])

    admitted, refusal = spend(gw, "slow", 30)

    assert refusal is not None
    gw.entry(refusal)
    lines = [line for line in gw.read_error_log().splitlines()
             if '"slow"' in line]
    assert len(lines) == 1, lines
    assert f"[{level or 'notice'}]" in lines[0], lines[0]


def test_dry_run_never_rejects_but_counts_would_be_rejections(gateway):
    gw = gateway(http=TWO_APPS, location="tollgate_dry_run on;")

    replies = [gw.request("GET", "/obj/1k", app="slow") for _ in range(30)]

    assert {r.status for r in replies} == {200}
    decisions = [gw.entry(r)["decision"] for r in replies]
    assert set(decisions) == {"allowed", "dry_run"}, decisions
    assert decisions[0] == "allowed"
    would_be = decisions.count("dry_run")
    assert would_be >= 20, decisions
    assert all(gw.upstream_saw(r) for r in replies)

    metrics = gw.metrics()
    total = "tollgate_requests_total"
    assert metrics.value(total, app="slow", decision="dry_run") == would_be
    assert metrics.value(total, app="slow", decision="allowed") == 30 - would_be
    assert metrics.value(total, app="slow", decision="rejected") == 0


def test_failing_upstream_is_charged_and_its_502_passed_on(gateway):
    # nothing listens on the port: nginx logs the refused connect()
    dead_port, = free_ports(1)
    gw = gateway(
        server=f"""
            location /dead/ {{
                tollgate zone=tg app=$http_x_app_id;
                proxy_pass http://127.0.0.1:{dead_port};
            }}
        """,
        expect_errors=[r"connect\(\) failed .*Connection refused"])

    reply = gw.request("GET", "/dead/x", app="roomy")

    assert reply.status == 502, reply
    entry = gw.entry(reply)
    assert (entry["decision"], entry["cost"]) == ("allowed", "2"), entry
