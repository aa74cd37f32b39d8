"""/metrics is Prometheus text agreeing with the access log (DESIGN §5);
/tollgate/status is JSON naming what is configured."""

import subprocess

from tgnginx import KIB, spend

APPS_HTTP = """
    tollgate_cluster_capacity c1 capacity=1000 reserved=0.2;
    tollgate_app slow guaranteed=4 burst=10;
    tollgate_app roomy guaranteed=500 burst=500 priority=0 max_borrow=100;
"""
DECLARED_APPS = {"slow", "roomy"}


def traffic(gw):
    """Allowed and rejected requests of both apps, and 50 unknown ids."""
    for size in (0, KIB, 64 * KIB, 200 * KIB):
        assert gw.request("PUT", f"/obj/{size}", app="roomy",
                          body=b"m" * size).status == 201
    assert gw.request("GET", "/obj/1k", app="roomy").status == 200
    admitted, refusal = spend(gw, "slow", 40)
    assert refusal is not None and refusal.status == 429
    for i in range(50):
        assert gw.request("GET", "/obj/1k", app=f"stranger{i}").status == 403


def test_metrics_agree_with_the_access_log(gateway):
    gw = gateway(http=APPS_HTTP)
    traffic(gw)
    entries = [e for e in gw.access_entries() if e["decision"] != "-"]

    metrics = gw.metrics()

    for app in DECLARED_APPS:
        for decision in ("allowed", "rejected"):
            logged = sum(e["decision"] == decision for e in entries
                         if e["app"] == app)
            counted = metrics.value("tollgate_requests_total", app=app,
                                    decision=decision)
            assert counted == logged, (app, decision)
    roomy_cost = sum(int(e["cost"]) for e in entries if e["app"] == "roomy")
    assert metrics.value("tollgate_cost_total", app="roomy") == roomy_cost

    histogram = metrics.families["tollgate_check_duration_seconds"]
    assert histogram.type == "histogram"
    buckets = [s.value for s in histogram.samples if s.name.endswith("_bucket")]
    count = metrics.value("tollgate_check_duration_seconds_count")
    assert buckets == sorted(buckets) and buckets[-1] == count
    assert count >= len(entries) - 50    # unknown ids may skip the check

    assert metrics.value("tollgate_emergency_mode", cluster="c1") == 0
    token_layers = {s.labels.get("layer") for s in metrics.samples("tollgate_tokens")
                    if s.labels.get("app") == "roomy"}
    assert {"guaranteed", "burst"} <= token_layers, token_layers


def test_declared_cluster_and_apps_have_metrics_before_any_request(gateway):
    # an idle app or cluster is a series at 0, not a missing one, so that
    # dashboards and alerts see it from the start
    gw = gateway(http=APPS_HTTP)

    metrics = gw.metrics()

    assert metrics.value("tollgate_emergency_mode", cluster="c1") == 0
    for app in DECLARED_APPS:
        assert metrics.value("tollgate_requests_total", app=app,
                             decision="allowed") == 0
        assert metrics.value("tollgate_cost_total", app=app) == 0


def test_metrics_labels_stay_bounded_under_unknown_app_ids(gateway):
    gw = gateway(http=APPS_HTTP)
    traffic(gw)

    metrics = gw.metrics()

    apps = {s.labels["app"] for f in metrics.families.values()
            for s in f.samples if "app" in s.labels}
    assert DECLARED_APPS <= apps
    # at most one shared label for everything undeclared
    assert len(apps - DECLARED_APPS) <= 1, sorted(apps)


def test_metrics_pass_promtool_check(gateway):
    gw = gateway(http=APPS_HTTP)
    traffic(gw)

    lint = subprocess.run(["promtool", "check", "metrics"], input=gw.metrics_text(),
                          capture_output=True, text=True)

    assert lint.returncode == 0, lint.stdout + lint.stderr


def walk_strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_strings(value)
    elif isinstance(node, str):
        yield node


def test_status_is_json_naming_clusters_and_apps(gateway):
    gw = gateway(http=APPS_HTTP)
    traffic(gw)

    with gw.client() as c:
        reply = c.request("GET", "/tollgate/status")

    assert reply.status == 200
    assert reply.header("Content-Type").startswith("application/json")
    strings = set(walk_strings(reply.json()))
    assert DECLARED_APPS | {"c1"} <= strings, strings
    assert not any(s.startswith("stranger") for s in strings)
