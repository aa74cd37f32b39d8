"""Malformed directives are refused by nginx -t, with a message naming
the directive and the value at fault."""

import re

import pytest

from tgnginx import DEFAULT_HTTP, config_test


def test_reference_configuration_passes_nginx_t():
    # every case below changes this configuration in one place only
    code, output = config_test()

    assert code == 0, output
    assert "test is successful" in output


def app_line(extra):
    return DEFAULT_HTTP + f"    tollgate_app a1 {extra};\n"


def distributed(extra, redis="127.0.0.1:6379", gateway_id="gw1"):
    """The reference http block in distributed mode, plus extra."""
    lines = [f"tollgate_redis {redis};"]
    if gateway_id is not None:
        lines.append(f"tollgate_gateway_id {gateway_id};")
    return DEFAULT_HTTP + "    " + "\n    ".join(lines + [extra]) + "\n"


def test_distributed_configuration_passes_nginx_t():
    code, output = config_test(http=distributed(
        "tollgate_lease horizon=500ms min=8 max=5000 low=25%;\n"
        "    tollgate_fail_mode closed;\n"
        "    tollgate_degradation conserve=5ms local_first=50ms errors=1% "
        "fail_local=20% hold=1s window=2s;"))

    assert code == 0, output
    assert "[warn]" not in output, output


def test_gateway_id_defaults_to_the_host_name():
    # nginx reads the host name before the configuration: a first start
    # has it as well as a reload
    code, output = config_test(http=distributed("", gateway_id=None))

    assert code == 0, output


@pytest.mark.parametrize("directive", [
    "tollgate_lease horizon=1s;",
    "tollgate_degradation hold=1s;",
    "tollgate_fail_mode open;",
])
def test_distributed_directive_in_standalone_mode_is_warned_of(directive):
    code, output = config_test(http=DEFAULT_HTTP + directive)

    assert code == 0, output
    name = directive.split()[0]
    assert re.search(rf'\[warn\].*"{name}" has no effect without '
                     r'"tollgate_redis"', output), output


BAD_CONFIGS = [
    # id, Gateway snippets, words the [emerg] line must hold
    ("burst below guaranteed",
     {"http": app_line("guaranteed=300 burst=170")}, ["tollgate_app", "170"]),
    ("unknown parameter",
     {"http": app_line("guaranteed=10 burst=20 colour=blue")},
     ["tollgate_app", "colour"]),
    ("priority 7",
     {"http": app_line("guaranteed=10 burst=20 priority=7")},
     ["tollgate_app", "priority", "7"]),
    ("negative guaranteed",
     {"http": app_line("guaranteed=-5 burst=20")}, ["tollgate_app", "-5"]),
    ("unknown profile",
     {"http": app_line("guaranteed=10 burst=20 profile=nosuchprofile")},
     ["profile", "nosuchprofile"]),
    ("malformed app id",
     {"http": DEFAULT_HTTP + "tollgate_app bad/id guaranteed=1 burst=1;"},
     ["tollgate_app", "bad/id"]),
    ("app declared twice",
     {"http": DEFAULT_HTTP + "tollgate_app twice guaranteed=1 burst=1;"
                             "tollgate_app twice guaranteed=2 burst=2;"},
     ["tollgate_app", "twice"]),
    ("capacity abc",
     {"http": DEFAULT_HTTP + "tollgate_cluster_capacity c9 capacity=abc;"},
     ["tollgate_cluster_capacity", "abc"]),
    ("reserved 1.5",
     {"http": DEFAULT_HTTP
      + "tollgate_cluster_capacity c9 capacity=10 reserved=1.5;"},
     ["tollgate_cluster_capacity", "1.5"]),
    ("unknown zone",
     {"limit": "tollgate zone=nosuchzone app=$http_x_app_id;"},
     ["tollgate", "nosuchzone"]),
    ("missing cluster", {"cluster": ""}, ["tollgate_cluster"]),
    ("undeclared cluster",
     {"cluster": "tollgate_cluster nowhere;"}, ["tollgate_cluster", "nowhere"]),
    ("rejection status 200",
     {"location": "tollgate_status_code 200;"}, ["tollgate_status_code", "200"]),
    # parsed by nginx's own size slot, whose message names no value
    ("chunked estimate not a size",
     {"location": "tollgate_chunked_estimate lots;"},
     ["tollgate_chunked_estimate", "invalid value"]),
    ("log level loud",
     {"location": "tollgate_log_level loud;"},
     ["tollgate_log_level", "loud", '"info", "notice", "warn", "error"']),

    # distributed mode: nginx -t parses, it does not connect
    ("redis port not a number",
     {"http": distributed("", redis="127.0.0.1:sixty")},
     ["tollgate_redis", "127.0.0.1:sixty", "port"]),
    ("redis unknown parameter",
     {"http": distributed("", redis="127.0.0.1:6379 colour=blue")},
     ["tollgate_redis", "colour=blue", "unknown parameter"]),
    ("redis db 16",
     {"http": distributed("", redis="127.0.0.1:6379 db=16")},
     ["tollgate_redis", "db=16", "0 to 15"]),
    ("redis timeout not a time",
     {"http": distributed("", redis="127.0.0.1:6379 timeout=soon")},
     ["tollgate_redis", "timeout=soon"]),
    ("sentinel without master",
     {"http": distributed("", redis="sentinel=127.0.0.1:26379")},
     ["tollgate_redis", "master=NAME"]),
    ("gateway id with a slash",
     {"http": distributed("", gateway_id="gw/1")},
     ["tollgate_gateway_id", "gw/1"]),
    ("lease min 0",
     {"http": distributed("tollgate_lease min=0;")},
     ["tollgate_lease", "min=0", "at least 1"]),
    ("lease max below min",
     {"http": distributed("tollgate_lease min=100 max=10;")},
     ["tollgate_lease", "max is below min"]),
    ("lease horizon 2m",
     {"http": distributed("tollgate_lease horizon=2m;")},
     ["tollgate_lease", "horizon=2m", "10ms to 60s"]),
    ("lease low 95%",
     {"http": distributed("tollgate_lease low=95%;")},
     ["tollgate_lease", "low=95%", "1% to 90%"]),
    ("fail mode maybe",
     {"http": distributed("tollgate_fail_mode maybe;")},
     ["tollgate_fail_mode", "maybe", '"local", "open", "closed"']),
    ("degradation latency as a rate",
     {"http": distributed("tollgate_degradation conserve=5%;")},
     ["tollgate_degradation", "conserve=5%", "latency"]),
    ("degradation error rate 0%",
     {"http": distributed("tollgate_degradation errors=0%;")},
     ["tollgate_degradation", "errors=0%", "error rate"]),
    ("degradation levels out of order",
     {"http": distributed(
         "tollgate_degradation conserve=200ms local_first=100ms;")},
     ["tollgate_degradation", "conserve (200 ms)", "local_first (100 ms)"]),
    ("degradation error rates out of order",
     {"http": distributed("tollgate_degradation errors=60% fail_local=50%;")},
     ["tollgate_degradation", "errors (60.0%)", "fail_local (50.0%)"]),
    ("degradation hold 0",
     {"http": distributed("tollgate_degradation hold=0;")},
     ["tollgate_degradation", "hold=0"]),
    ("degradation window 50ms",
     {"http": distributed("tollgate_degradation window=50ms;")},
     ["tollgate_degradation", "window=50ms", "100ms"]),
    ("degradation unknown parameter",
     {"http": distributed("tollgate_degradation colour=blue;")},
     ["tollgate_degradation", "colour=blue", "unknown parameter"]),
]


@pytest.mark.parametrize(
    "snippets, words",
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS])
def test_malformed_directive_is_refused_by_nginx_t(snippets, words):
    code, output = config_test(**snippets)

    assert code != 0, output
    # only the message: the PID and the file's line number hold digits too
    emerg = "\n".join(re.findall(
        r"\[emerg\] (?:\d+#\d+: )?(.*?)(?: in PREFIX/\S+:\d+)?$",
        output, re.M))
    assert emerg, output
    for word in words:
        assert word in emerg, f"{word!r} not in: {emerg}"
