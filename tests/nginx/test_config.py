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
