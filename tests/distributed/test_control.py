"""The local control endpoint (tollgate_control): guarded by a shared
secret, strict about its input, and effective at once."""

import http.client

import pytest

from tgdist import distributed_http

SECRET = "s3cret-for-tests"


def control(gw, method="GET", query="", secret=None):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    headers = {"X-Tollgate-Secret": secret} if secret is not None else {}
    conn.request(method, "/tollgate/control" + query, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


@pytest.fixture
def guarded(redis_servers, gateway):
    server, _ = redis_servers.single(c1=100000)
    return gateway(
        http=distributed_http(f"127.0.0.1:{server.port}", "gw-control"),
        cluster="tollgate_cluster c1;",
        server=f"""
            location = /tollgate/control {{
                tollgate_control;
                tollgate_control_secret {SECRET};
            }}
        """,
        expect_errors=())


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
def test_control_refuses_a_missing_or_wrong_secret(guarded, secret):
    status, body = control(guarded, "POST", "?level=3", secret=secret)
    assert status == 401, body
    assert b"X-Tollgate-Secret" in body

    # nothing was forced
    status, body = control(guarded, secret=SECRET)
    assert status == 200 and b'"forced_local":-1' in body, body


@pytest.mark.parametrize("query", ["", "?level=4", "?level=-1",
                                   "?level=three", "?level=", "?lvl=2"])
def test_control_answers_bad_input_with_400(guarded, query):
    status, body = control(guarded, "POST", query, secret=SECRET)
    assert status == 400, body
    assert b'"error":"bad_request"' in body


def test_control_forces_at_once_and_auto_releases(guarded):
    status, body = control(guarded, "POST", "?level=2", secret=SECRET)
    assert status == 200, body
    assert b'"level":2' in body and b'"forced_local":2' in body, body

    status, body = control(guarded, "POST", "?level=auto", secret=SECRET)
    assert status == 200 and b'"forced_local":-1' in body, body


def test_control_refuses_other_methods(guarded):
    status, _ = control(guarded, "DELETE", secret=SECRET)
    assert status == 405
