"""A private redis-server for one test session, and Tollgate's scripts
loaded into it.

The server listens on a free port chosen at start, keeps its files in a
temporary directory, and is stopped by its PID.  Each script is loaded as
redis/lib/tollgate.lua followed by redis/NAME.lua, the way
docs/redis-scripts.md says a gateway loads it.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "redis"
LIB = SCRIPTS / "lib" / "tollgate.lua"
NAMES = ("acquire", "report", "borrow", "repay", "emergency", "reconcile",
         "seed", "heartbeat")
REDIS_SERVER = os.environ.get("TOLLGATE_REDIS_SERVER", "redis-server")


def script_text(name):
    """The text a gateway loads for script NAME."""
    return LIB.read_text() + "\n" + (SCRIPTS / f"{name}.lua").read_text()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server on 127.0.0.1, no persistence, in its own directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tg-vectors-redis-")
        self.proc = None
        self.port = None

    def start(self, attempts=5):
        # another test may take the port between probe and bind: retry
        for _ in range(attempts):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port),
                 "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", self.dir,
                 "--logfile", os.path.join(self.dir, "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"redis-server did not start, see {self.dir}")

    def _wait_ready(self, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.client().ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
        return False

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port,
                           decode_responses=True)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Scripts:
    """SHA1 of every script, loaded with SCRIPT LOAD; run with EVALSHA."""

    def __init__(self, client):
        self.sha = {n: client.script_load(script_text(n)) for n in NAMES}

    def run(self, client, name, keys, args):
        return client.evalsha(self.sha[name], len(keys), *keys, *args)


class Cluster:
    """The keys of storage cluster CID, and each script called with them."""

    def __init__(self, client, scripts, cid):
        self.r = client
        self.scripts = scripts
        self.cid = cid

    def key(self, *parts):
        return ":".join((f"tg:{{{self.cid}}}",) + parts)

    def put_cluster(self, **fields):
        self.r.hset(self.key("cluster"), mapping=fields)

    def put_app(self, app, **fields):
        fields.setdefault("app_id", app)
        fields.setdefault("cluster_id", self.cid)
        self.r.hset(self.key("app", app), mapping=fields)
        self.r.sadd(self.key("apps"), app)

    def acquire(self, app, want, min_tokens, now="", gateway="gw-test"):
        return self.scripts.run(
            self.r, "acquire",
            [self.key("cluster"), self.key("app", app), self.key("pool"),
             self.key("state", app), self.key("emergency"),
             self.key("events")],
            [want, min_tokens, now, gateway])

    def report(self, app, gateway, seq, used, returned, debt, now=""):
        return self.scripts.run(
            self.r, "report",
            [self.key("cluster"), self.key("app", app), self.key("pool"),
             self.key("state", app), self.key("rep", gateway)],
            [gateway, seq, used, returned, debt, now])

    def borrow(self, app, tokens, now="", who="operator"):
        return self.scripts.run(
            self.r, "borrow",
            [self.key("cluster"), self.key("app", app), self.key("pool"),
             self.key("state", app), self.key("events")],
            [tokens, now, who])

    def repay(self, app, tokens, now="", who="operator"):
        return self.scripts.run(
            self.r, "repay",
            [self.key("app", app), self.key("state", app),
             self.key("events")],
            [tokens, now, who])

    def emergency(self, action, reason="", ttl_ms=0, who="operator",
                  now=""):
        return self.scripts.run(
            self.r, "emergency",
            [self.key("cluster"), self.key("emergency"), self.key("events")],
            [action, reason, ttl_ms, who, now])

    def reconcile(self, apps, now=""):
        return self.scripts.run(
            self.r, "reconcile",
            [self.key("pool")] + [self.key("state", a) for a in apps],
            [now])

    def seed(self, cluster_fields, app=None, app_fields=()):
        app_key = self.key("app", app) if app else ""
        return self.scripts.run(
            self.r, "seed",
            [self.key("cluster"), app_key, self.key("apps"),
             self.key("version")],
            list(cluster_fields) + list(app_fields))

    def heartbeat(self, gateway, level=0, hit_rate_permille=0, requests=0,
                  rejected=0, now="", ttl_ms=10000):
        return self.scripts.run(
            self.r, "heartbeat",
            [self.key("gateways"), self.key("gw", gateway),
             self.key("version"), self.key("emergency")],
            [gateway, level, hit_rate_permille, requests, rejected, now,
             ttl_ms])

    def events(self):
        return [fields for _, fields in self.r.xrange(self.key("events"))]
