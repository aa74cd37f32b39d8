"""Login, tokens and roles."""

import base64
import hashlib
import hmac
import json
import time

import requests

from conftest import ADMIN_PASSWORD, ADMIN_USER, JWT_SECRET


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(claims, secret=JWT_SECRET, alg="HS256"):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    if alg == "none":
        return f"{head}.{body}."
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{b64(sig.digest())}"


def get_apps(admin, token):
    return requests.get(admin.base + "/api/v1/apps",
                        headers={"Authorization": "Bearer " + token})


def test_login_returns_token_and_expiry(admin):
    r = requests.post(admin.base + "/api/v1/auth/login",
                      json={"username": ADMIN_USER, "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["role"] == "admin"
    assert time.time() < body["expires_at"] <= time.time() + 3601
    assert get_apps(admin, body["token"]).status_code == 200


def test_login_refuses_wrong_password_and_unknown_user(admin):
    for user, password in ((ADMIN_USER, "wrong"), ("nobody", "whatever")):
        r = requests.post(admin.base + "/api/v1/auth/login",
                          json={"username": user, "password": password})
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"


def test_no_token_is_401(admin):
    r = requests.get(admin.base + "/api/v1/apps")
    assert r.status_code == 401
    assert set(r.json()) == {"error", "message"}


def test_tampered_token_is_401(admin, token):
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "someone-else"
    forged = f"{head}.{b64(json.dumps(claims).encode())}.{sig}"
    assert get_apps(admin, forged).status_code == 401
    assert get_apps(admin, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
                    ).status_code == 401


def test_expired_token_is_401(admin):
    now = int(time.time())
    expired = make_token({"sub": ADMIN_USER, "role": "admin",
                          "iat": now - 7200, "exp": now - 60})
    fresh = make_token({"sub": ADMIN_USER, "role": "admin",
                        "iat": now, "exp": now + 60})
    assert get_apps(admin, expired).status_code == 401
    assert get_apps(admin, fresh).status_code == 200


def test_token_signed_otherwise_is_401(admin):
    now = int(time.time())
    claims = {"sub": ADMIN_USER, "role": "admin", "exp": now + 60}
    assert get_apps(admin, make_token(claims, alg="none")).status_code == 401
    assert get_apps(admin, make_token(claims, secret="x" * 40)).status_code == 401


def test_viewer_reads_but_cannot_write(admin, api, uid, cluster):
    name = "viewer-" + uid
    r = api.post("/users", json={"username": name, "password": "viewer-pass",
                                 "role": "viewer"})
    assert r.status_code == 201, r.text
    viewer = admin.session(admin.login(name, "viewer-pass"))
    base = admin.base + "/api/v1"

    assert viewer.get(base + "/apps").status_code == 200
    r = viewer.post(base + "/apps", json={
        "app_id": "v-" + uid, "cluster_id": cluster,
        "guaranteed_quota": 1, "burst_quota": 1})
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    assert viewer.put(base + f"/clusters/{cluster}",
                      json={"capacity": 5}).status_code == 403
    assert api.get("/apps/v-" + uid).status_code == 404


def test_operator_writes_apps_but_not_clusters(admin, api, uid, cluster):
    name = "op-" + uid
    assert api.post("/users", json={"username": name, "password": "operator-pass",
                                    "role": "operator"}).status_code == 201
    op = admin.session(admin.login(name, "operator-pass"))
    base = admin.base + "/api/v1"

    r = op.post(base + "/apps", json={"app_id": "op-" + uid, "cluster_id": cluster,
                                      "guaranteed_quota": 1, "burst_quota": 2})
    assert r.status_code == 201, r.text
    assert op.put(base + f"/clusters/{cluster}",
                  json={"capacity": 5}).status_code == 403
    assert op.get(base + "/users").status_code == 403


def test_first_admin_exists_once(pg):
    assert pg.sql(f"SELECT count(*) FROM users WHERE username = '{ADMIN_USER}'"
                  " AND role = 'admin'") == "1"
    # stored as an argon2id hash, never as the password
    assert pg.sql(f"SELECT password_hash LIKE '$argon2id$%' FROM users"
                  f" WHERE username = '{ADMIN_USER}'") == "t"
