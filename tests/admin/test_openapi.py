"""The OpenAPI document and the routes that answer agree both ways."""

import re

import requests
import yaml

METHODS = ("get", "post", "put", "patch", "delete")


def spec(admin):
    r = requests.get(admin.base + "/api/v1/openapi.yaml")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/yaml")
    return yaml.safe_load(r.text)


def concrete(path, app_id, cluster):
    # ids of objects that exist, so a 404 can only mean "no such route"
    path = path.replace("/apps/{id}", "/apps/" + app_id)
    path = path.replace("/clusters/{id}", "/clusters/" + cluster)
    path = path.replace("{username}", "nobody-here")
    return re.sub(r"\{[a-z_]+\}", "x1", path)


def routed(r):
    """False when the server has no route at all for this path."""
    return not (r.status_code == 404 and "no route" in r.text)


def test_document_is_openapi_3(admin):
    doc = spec(admin)
    assert doc["openapi"].startswith("3.")
    assert len(doc["paths"]) >= 20


def test_every_documented_route_answers(admin, api, token, uid, cluster):
    api.post("/apps", json={"app_id": "o-" + uid, "cluster_id": cluster,
                            "guaranteed_quota": 1, "burst_quota": 1})
    s = admin.session(token)
    for path, ops in spec(admin)["paths"].items():
        if path == "/api/v1/ws":
            continue        # a WebSocket upgrade, tested in test_ops
        url = admin.base + concrete(path, "o-" + uid, cluster)
        for method in ops:
            if method not in METHODS:
                continue
            r = s.request(method.upper(), url, json={})
            assert routed(r) and r.status_code != 405, (method, path, r.text)
            assert str(r.status_code) in ops[method]["responses"] or \
                r.status_code in (400, 503), (method, path, r.status_code)


def test_every_answering_route_is_documented(admin, token, uid, cluster):
    doc = spec(admin)["paths"]
    s = admin.session(token)
    for path, ops in doc.items():
        if path == "/api/v1/ws":
            continue
        url = admin.base + concrete(path, "o-" + uid, cluster)
        for method in METHODS:
            if method in ops:
                continue
            r = s.request(method.upper(), url, json={})
            assert r.status_code in (404, 405), (method, path, r.status_code)
    for path in ("/api/v1", "/api/v1/app", "/api/v1/apps/x/y/z",
                 "/api/v1/metrics", "/api/v2/apps", "/api/v1/clusters/x/other"):
        for method in METHODS:
            r = s.request(method.upper(), admin.base + path, json={})
            assert r.status_code == 404 and r.json()["error"] == "not_found"
