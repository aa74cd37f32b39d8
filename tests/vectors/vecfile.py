"""Reads the shared test vectors (*.vec, see README.md) and runs them
against the Redis scripts, the way vectors_c.c runs them against the C
core."""

from dataclasses import dataclass, field
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
T0_MS = 1700000000000
LAYERS = ("none", "cluster", "guaranteed", "burst", "debt", "local")


@dataclass
class Step:
    file: str
    line: int
    op: list
    expect: dict

    def where(self):
        return f"{self.file}:{self.line}"

    def arg(self, key, default=None):
        for word in self.op[1:]:
            name, eq, value = word.partition("=")
            if eq and name == key:
                return value
        if default is None:
            raise ValueError(f"{self.where()}: argument {key!r} is missing")
        return default

    def subject(self):
        if len(self.op) < 2 or "=" in self.op[1]:
            raise ValueError(f"{self.where()}: {self.op[0]} names no "
                             "application")
        return self.op[1]


@dataclass
class Scenario:
    name: str
    steps: list = field(default_factory=list)


def load(path):
    scenarios = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith("scenario "):
            scenarios.append(Scenario(f"{Path(path).name}: {text[9:]}"))
            continue
        if not scenarios:
            raise ValueError(f"{path}:{number}: a step before any scenario")
        words = text.split()
        op, expect = words, {}
        if "->" in words:
            at = words.index("->")
            op = words[:at]
            for word in words[at + 1:]:
                name, eq, value = word.partition("=")
                if not eq:
                    raise ValueError(f"{path}:{number}: {word!r} is not "
                                     "NAME=VALUE")
                expect[name] = value
        scenarios[-1].steps.append(Step(Path(path).name, number, op, expect))
    return scenarios


def load_all():
    return [s for path in sorted(HERE.glob("*.vec")) for s in load(path)]


def rel(at_ms):
    """A time of a result, relative to the origin; 0 stays 0."""
    return str(at_ms - T0_MS if at_ms else 0)


class Runner:
    """Runs scenarios in one storage cluster (tgredis.Cluster)."""

    def __init__(self, cluster):
        self.c = cluster
        self.r = cluster.r
        self.settle_seq = 0

    def run(self, scenario):
        for step in scenario.steps:
            got = self.step(step)
            if got is None:
                continue
            if not step.expect:
                raise AssertionError(f"{step.where()}: a step without "
                                     "\"-> results\"")
            for name, want in step.expect.items():
                assert name in got, (
                    f"{step.where()}: {step.op[0]} gives no result {name!r}")
                assert got[name] == want, (
                    f"{step.where()}: {name} is {got[name]}, the file says "
                    f"{want}")

    def step(self, step):
        kind = step.op[0]
        if kind == "cluster":
            self.c.put_cluster(**self.fields(step, step.op[1:]))
            return None
        if kind == "app":
            self.c.put_app(step.subject(), **self.fields(step, step.op[2:]))
            return None
        if kind == "state":
            return self.state(step.op[1] if len(step.op) > 1 else None)
        if kind != "at" or len(step.op) < 3:
            raise ValueError(f"{step.where()}: {kind!r} is not a step")
        now = T0_MS + int(step.op[1])
        step = Step(step.file, step.line, step.op[2:], step.expect)
        op = getattr(self, "op_" + step.op[0], None)
        if op is None:
            raise ValueError(f"{step.where()}: unknown operation "
                             f"{step.op[0]!r}")
        try:
            return op(step, now)
        except redis.ResponseError:
            return {"error": "1"}

    @staticmethod
    def fields(step, words):
        out = {}
        for word in words:
            name, eq, value = word.partition("=")
            if not eq:
                raise ValueError(f"{step.where()}: {word!r} is not "
                                 "FIELD=VALUE")
            out[name] = value
        return out

    def op_acquire(self, step, now):
        reply = self.c.acquire(step.subject(), step.arg("want"),
                               step.arg("min"), now, "vectors")
        return {"code": str(reply[0]), "granted": str(reply[1]),
                "layer": LAYERS[reply[2]], "retry_ms": str(reply[3]),
                "remaining": str(reply[4]), "emergency": str(reply[5])}

    def op_settle(self, step, now):
        delta = int(step.arg("delta"))
        self.settle_seq += 1
        reply = self.c.report(step.subject(), "vectors-settle",
                              self.settle_seq, 0, max(-delta, 0),
                              max(delta, 0), now)
        return self.report_result(reply)

    def op_report(self, step, now):
        reply = self.c.report(step.subject(), step.arg("gateway"),
                              step.arg("seq"), step.arg("used"),
                              step.arg("returned"), step.arg("debt"), now)
        return self.report_result(reply)

    @staticmethod
    def report_result(reply):
        return {"applied": str(reply[0]), "remaining": str(reply[1]),
                "code": str(reply[2])}

    def op_borrow(self, step, now):
        reply = self.c.borrow(step.subject(), step.arg("tokens"), now)
        return {"code": str(reply[0]), "lent": str(reply[1]),
                "debt": str(reply[2])}

    def op_repay(self, step, now):
        reply = self.c.repay(step.subject(), step.arg("tokens"), now)
        return {"code": str(reply[0]), "repaid": str(reply[1]),
                "debt": str(reply[2])}

    def op_emergency(self, step, now):
        action = step.op[1] if len(step.op) > 1 else ""
        reply = self.c.emergency(action, "vectors",
                                 step.arg("ttl_ms", "0"), "vectors", now)
        return {"code": str(reply[0]), "active": str(reply[1]),
                "mode": reply[2], "until": rel(reply[3])}

    def state(self, app):
        """What is stored, not refilled; "absent" for what is not yet."""
        got = {}
        pool = self.r.hgetall(self.c.key("pool"))
        if pool:
            got["pool_mtok"] = pool["level_mtok"]
            got["pool_granted_total"] = pool["granted_total"]
            got["pool_returned_total"] = pool["returned_total"]
        else:
            got["pool_mtok"] = "absent"
        e = self.r.hgetall(self.c.key("emergency"))
        got["mode"] = e.get("mode", "off") if e.get("active") == "1" \
            else "off"
        got["until"] = rel(int(e.get("until_ms", 0)))
        hold = e.get("hold_until_ms")
        got["hold"] = "none" if hold is None else rel(int(hold))
        if app is None:
            return got
        s = self.r.hgetall(self.c.key("state", app))
        if not s:
            got["g_mtok"] = "absent"
            return got
        for name in ("g_mtok", "b_mtok", "debt_mtok", "granted_total",
                     "returned_total", "used_total"):
            got[name] = s[name]
        return got
