"""What a request is charged (DESIGN §2), seen through $tollgate_cost."""

import time

import pytest

from tgnginx import KIB, MIB, find_app, raw_request, spend

COST_CASES = [
    # id, method, path, body bytes (None: no body), extra headers, cost
    ("GET 1 KiB object", "GET", "/obj/1k", None, {}, 2),
    ("HEAD 1 KiB object", "HEAD", "/obj/1k", None, {}, 2),
    ("PUT 64 KiB", "PUT", "/obj/64k", 64 * KIB, {}, 3),
    ("PUT 1 MiB", "PUT", "/obj/1m", MIB, {}, 18),
    ("POST 1 MiB", "POST", "/post/1m", MIB, {}, 18),
    ("PUT 0 bytes", "PUT", "/obj/empty", 0, {}, 2),
    ("PUT 64 KiB + 1", "PUT", "/obj/64k1", 64 * KIB + 1, {}, 4),
    ("PUT 1 MiB claiming X-Reported-Cost 1", "PUT", "/obj/claim", MIB,
     {"X-Reported-Cost": "1"}, 18),
]


@pytest.mark.parametrize(
    "method, path, size, headers, cost",
    [case[1:] for case in COST_CASES],
    ids=[case[0] for case in COST_CASES])
def test_request_is_charged_by_the_default_cost_model(
        gateway, method, path, size, headers, cost):
    gw = gateway()
    body = None if size is None else b"b" * size

    reply = gw.request(method, path, app="roomy", body=body, headers=headers)

    assert 200 <= reply.status < 300, reply
    entry = gw.entry(reply)
    assert (entry["cost"], entry["decision"]) == (str(cost), "allowed"), entry
    if size is not None:
        # the limiter let the whole body through to the storage
        assert (gw.data / path.lstrip("/")).stat().st_size == size


PROFILE_HTTP = """
    tollgate_cluster_capacity c1 capacity=100000 reserved=0.2;
    tollgate_cost_profile small_quantum base=1 bandwidth=2 quantum=4k;
    tollgate_app roomy guaranteed=10000 burst=10000;
    tollgate_app profiled guaranteed=10000 burst=10000 profile=small_quantum;
"""


@pytest.mark.parametrize("app, location, cost", [
    ("profiled", "", 1 + 3 * 2),
    ("roomy", "tollgate_cost base=5 bandwidth=3 quantum=8k;", 5 + 2 * 3),
    ("profiled", "tollgate_cost base=5 bandwidth=3 quantum=8k;", 1 + 3 * 2),
], ids=["named profile", "context cost model",
        "named profile wins over context"])
def test_cost_model_comes_from_profile_or_context(gateway, app, location, cost):
    gw = gateway(http=PROFILE_HTTP, location=location)

    reply = gw.request("PUT", "/obj/10k", app=app, body=b"p" * (10 * KIB))

    assert reply.status == 201, reply
    assert gw.entry(reply)["cost"] == str(cost)


def chunks_of(total_bytes, chunk_bytes=64 * KIB):
    sent = 0
    while sent < total_bytes:
        n = min(chunk_bytes, total_bytes - sent)
        yield b"c" * n
        sent += n


def test_chunked_upload_larger_than_estimate_leaves_debt(gateway):
    # 20 tokens/s.  The upload is charged 3 up front (estimate 64 KiB) and
    # weighs 2 + 64 = 66: the app owes 63 tokens, which its refill pays
    # back before it may spend again, for about 3 s.
    gw = gateway(
        http="""
            tollgate_cluster_capacity c1 capacity=100000 reserved=0.2;
            tollgate_app chunky guaranteed=20 burst=20;
        """,
        location="tollgate_chunked_estimate 64k;")

    upload = gw.request("PUT", "/obj/chunked", app="chunky",
                        chunks=chunks_of(4 * MIB))

    assert upload.status == 201, upload
    assert gw.entry(upload)["cost"] == "3"
    assert (gw.data / "obj/chunked").stat().st_size == 4 * MIB
    assert find_app(gw.status(), "chunky")["debt"] >= 40
    # what was left of the bucket may still be spent, but a second of
    # refill (20 tokens, 10 GETs had nothing been owed) goes to the debt
    admitted, refusal = spend(gw, "chunky", 20)
    assert refusal is not None and refusal.status == 429
    time.sleep(1)
    assert gw.request("GET", "/obj/1k", app="chunky").status == 429


def test_chunked_upload_smaller_than_estimate_is_refunded(gateway):
    # 40 tokens held.  The upload is charged 18 up front (estimate 1 MiB)
    # and weighs 3: after the refund of 15 about 37 tokens are left, 18
    # GETs; without the refund 22 tokens, 11 GETs.
    gw = gateway(http="""
        tollgate_cluster_capacity c1 capacity=100000 reserved=0.2;
        tollgate_app chunky guaranteed=40 burst=40;
    """)

    upload = gw.request("PUT", "/obj/tiny", app="chunky", chunks=[b"1"])

    assert upload.status == 201, upload
    assert gw.entry(upload)["cost"] == "18"
    assert find_app(gw.status(), "chunky")["debt"] == 0
    admitted, refusal = spend(gw, "chunky", 40)
    assert len(admitted) >= 15, "the unused estimate was not refunded"
    assert refusal is not None, "more was admitted than the app holds"


def test_body_ending_short_is_refunded(gateway):
    # 40 tokens held.  Charged 18 for the 1 MiB announced; 100 bytes come
    # before the client gives up, which cost 3: 15 come back.
    gw = gateway(http="""
        tollgate_cluster_capacity c1 capacity=100000 reserved=0.2;
        tollgate_app short guaranteed=40 burst=40;
    """)
    head = ("PUT /obj/short HTTP/1.1\r\nHost: gw\r\nX-App-Id: short\r\n"
            f"X-Test-Id: short-body\r\nContent-Length: {MIB}\r\n\r\n")

    raw_request(gw.port, head.encode() + b"s" * 100, half_close=True)

    entry = gw.entry("short-body")
    assert (entry["cost"], entry["decision"]) == ("18", "allowed"), entry
    assert not (gw.data / "obj/short").exists()
    admitted, refusal = spend(gw, "short", 40)
    assert len(admitted) >= 15, "the bytes never sent were not refunded"
    assert refusal is not None


ONCE_CASES = [
    # id, gateway snippets, path
    ("internal redirect", {"location": """
        proxy_intercept_errors on;
        error_page 404 = /obj/1k;
    """}, "/obj/missing"),
    ("mirror subrequest", {
        "location": "mirror /mirror/1k;",
        "server": """
            location /mirror/ {
                internal;
                tollgate zone=tg app=$http_x_app_id;
                proxy_pass http://storage/obj/;
            }
        """}, "/obj/1k"),
]


@pytest.mark.parametrize(
    "snippets, path", [case[1:] for case in ONCE_CASES],
    ids=[case[0] for case in ONCE_CASES])
def test_client_request_is_charged_once(gateway, snippets, path):
    gw = gateway(**snippets)

    reply = gw.request("GET", path, app="roomy")

    assert reply.status == 200, reply
    assert gw.entry(reply)["cost"] == "2"
    metrics = gw.metrics()
    assert metrics.value("tollgate_cost_total", app="roomy") == 2
    assert metrics.value("tollgate_requests_total", app="roomy",
                         decision="allowed") == 1
