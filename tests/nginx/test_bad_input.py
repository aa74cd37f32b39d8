"""Hostile or broken requests get a 4xx, never a 5xx or a crash; the
teardown of the gateway fixture checks that no worker died."""

import pytest

from tgnginx import raw_request


def put_with_length(length, test_id="raw"):
    return (f"PUT /obj/x HTTP/1.1\r\nHost: gw\r\nX-App-Id: roomy\r\n"
            f"X-Test-Id: {test_id}\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n\r\n").encode()


@pytest.mark.parametrize("length", [
    "-1", "99999999999999999999", "abc", "12x", "1e3", "",
], ids=["negative", "huge", "non-numeric", "trailing garbage", "exponent",
        "empty"])
def test_invalid_content_length_is_refused_without_5xx(gateway, length):
    gw = gateway()

    status, reply = raw_request(gw.port, put_with_length(length))

    assert 400 <= status < 500, reply[:200]
    assert gw.request("GET", "/obj/1k", app="roomy").status == 200


def test_huge_declared_body_is_charged_without_overflow(gateway):
    # past client_max_body_size nginx answers 413 before the limiter; with
    # no size limit the limiter sees 2^62 bytes and must refuse them
    gw = gateway(location="client_max_body_size 0;")

    status, reply = raw_request(gw.port, put_with_length(2 ** 62))

    assert status == 429, reply[:300]
    entry = gw.entry("raw")
    assert int(entry["cost"]) >= 2 ** 40, entry
    assert not (gw.data / "obj/x").exists()


STATUS_CODES = "tollgate_missing_app_status 401; tollgate_unknown_app_status 404;"

APP_ID_CASES = [
    # id, location snippet, X-App-Id header (None: absent), status, decision
    ("missing", "", None, 400, "missing_app"),
    ("empty", "", "", 400, "missing_app"),
    ("unknown", "", "nosuch", 403, "unknown_app"),
    ("8 KiB", "", "a" * 8192, None, None),
    ("65 characters", "", "r" * 65, None, None),
    ("path characters", "", "roomy/../roomy", None, None),
    ("quote and space", "", 'roo"my x', None, None),
    ("missing, configured code", STATUS_CODES, None, 401, "missing_app"),
    ("unknown, configured code", STATUS_CODES, "nosuch", 404, "unknown_app"),
]


@pytest.mark.parametrize(
    "location, app, status, decision",
    [case[1:] for case in APP_ID_CASES],
    ids=[case[0] for case in APP_ID_CASES])
def test_bad_application_id_gets_a_clear_4xx(gateway, location, app, status,
                                             decision):
    gw = gateway(location=location)

    reply = gw.request("PUT", "/obj/bad", app=app, body=b"x")

    entry = gw.entry(reply)
    if status is None:
        # an id no app may have: refused as malformed or as unknown
        assert 400 <= reply.status < 500, reply
        assert entry["decision"] in ("invalid_app", "unknown_app"), entry
    else:
        assert (reply.status, entry["decision"]) == (status, decision), entry
    assert not gw.upstream_saw(reply)
    assert not (gw.data / "obj/bad").exists()
    assert gw.request("GET", "/obj/1k", app="roomy").status == 200
