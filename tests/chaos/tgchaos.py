"""What the chaos suite adds to tests/nginx and tests/distributed.

A gateway here is a tgnginx.Gateway in distributed mode with the local
control endpoint (/tollgate/control), started through the gateway
fixture of tests/nginx, in front of Redis processes of tgdist.  The
suite breaks the path to Redis in the ways DESIGN §4 names (a crash, a
freeze, a slow network, a partition, a shard failover, dead gateways)
and measures, from outside, what the gateway does about it:

- Traffic: paced GETs of one application from threads of their own,
  each reply kept with when it came, its status and its latency; a
  connection that fails counts as an unanswered request.
- LevelWatch: /tollgate/control polled every 20 ms, so that the time a
  level was first shown is known to a poll.
- Netns, NetnsRedis: a network namespace joined to the host by a veth
  pair, and a Redis inside it, for a partition the test can cut.
- restart_empty(), kill_gateway(): crashes, by PID.
- Record: the figures of one scenario, written as JSON for render.py,
  which makes the table of docs/reliability.md.
"""

import collections
import http.client
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "nginx"))
sys.path.insert(0, str(HERE.parent / "distributed"))

import tgdist  # noqa: E402
import tgnginx  # noqa: E402
from tgdist import GET_COST  # noqa: E402

REPO = HERE.parents[1]
RESULTS = Path(os.environ.get("TOLLGATE_CHAOS_RESULTS",
                              REPO / "build/chaos"))

CONTROL_LOCATION = """
        location = /tollgate/control {
            tollgate_control;
        }
"""

# what a gateway logs, at [error], when its Redis goes away or slows
# down; any other [error] line still fails the test
REDIS_TROUBLE = (
    r"tollgate: lost redis ",
    r"tollgate: cannot connect to redis ",
    r"tollgate: redis \S+ (reply|connect) timed out",
)


# gateways ------------------------------------------------------------------

def chaos_http(redis_spec, gateway_id, declare="", degradation="",
               timeout=None):
    """The http snippet of a gateway with Redis at redis_spec.  declare
    holds tollgate_app / tollgate_cluster_capacity lines (seeded into
    Redis); degradation the arguments of tollgate_degradation."""
    spec = redis_spec if timeout is None else f"{redis_spec} timeout={timeout}"
    extra = declare
    if degradation:
        extra += f"\n    tollgate_degradation {degradation};"
    return tgdist.distributed_http(spec, gateway_id, extra)


def start_gateway(gateway, redis_spec, gateway_id="gw1", cluster="c1",
                  expect_errors=REDIS_TROUBLE, timing=False, **kw):
    """One gateway through the gateway fixture, with /tollgate/control.
    timing adds a log of each limited request's time (timing_log())."""
    location = ""
    if timing:
        kw["declare"] = kw.get("declare", "") + TIMING_FORMAT
        location = TIMING_LOG
    return gateway(http=chaos_http(redis_spec, gateway_id, **kw),
                   cluster=f"tollgate_cluster {cluster};",
                   server=CONTROL_LOCATION, location=location,
                   expect_errors=expect_errors)


# when nginx finished each request (Unix s) and how long it took (s, to the
# ms), as nginx itself measures it: no client's scheduling in it
TIMING_FORMAT = """
    log_format tgchaos_timing '$msec $request_time $status';
"""
# a location's access_log replaces the inherited one: both are named
TIMING_LOG = """
            access_log access.log tollgate;
            access_log timing.log tgchaos_timing;
"""


def timing_log(gw, since_unix, until_unix):
    """Request times (s) nginx logged between two Unix times."""
    path = gw.prefix / "timing.log"
    found = []
    for line in path.read_text().splitlines():
        at, took, _ = line.split()
        if since_unix <= float(at) < until_unix:
            found.append(float(took))
    return found


def wait_seeded(gw, client, cluster, app, timeout_s=10):
    """Waits until the gateway has seeded app into an empty Redis and
    admits a request of it: the start of a gateway is not what the
    scenarios measure."""
    tgdist.wait_for(lambda: client.exists(f"tg:{{{cluster}}}:app:{app}"),
                    timeout_s, f"the gateway never seeded {app}")
    tgdist.wait_for(lambda: gw.request("GET", "/obj/1k", app=app).status
                    == 200, timeout_s, f"{app} is never admitted")


def control(gw, level=None, timeout_s=5, conn=None):
    """GET /tollgate/control, or POST ?level=level; the JSON reply.  conn
    is a keep-alive http.client connection to reuse, if any."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", gw.port,
                                          timeout=timeout_s)
    try:
        if level is None:
            conn.request("GET", "/tollgate/control")
        else:
            conn.request("POST", f"/tollgate/control?level={level}",
                         body=b"")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        if own:
            conn.close()
    assert resp.status == 200, (resp.status, body)
    return json.loads(body)


def app_status(gw, app):
    """The app's entry of the gateway's /tollgate/status, or None."""
    return tgdist.lease_of(gw, app)


def kill_gateway(gw):
    """SIGKILL to the master and its workers, by PID, as a crashed host
    would: nothing is said to Redis, the heartbeats just stop."""
    for pid in [gw.proc.pid, *tgnginx.children_of(gw.proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    gw.proc.wait()


def redis_calls(metrics, script, result="ok"):
    return metrics.value("tollgate_redis_calls_total", script=script,
                         result=result)


# Redis ---------------------------------------------------------------------

def restart_empty(server):
    """Starts a killed tgdist.RedisServer again on the same port, from
    the same configuration file: nothing is persisted, so it comes back
    empty, as a Redis that lost its memory."""
    assert not server.alive()
    server.proc = subprocess.Popen(
        [tgdist.REDIS_SERVER, str(server.dir / "redis.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not server.wait_ready():
        raise RuntimeError("redis did not restart on port "
                           f"{server.port}:\n{server.read_log()[-3000:]}")


# a network of the test's own ---------------------------------------------

def ip(*args, check=True):
    """Runs ip(8); returns what it printed.  Raises with its message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True,
                          timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def private_slash30(rng):
    """A /30 of 10.200.0.0/13 that no route of the host overlaps: (host
    address, namespace address), as text."""
    routed = []
    for line in ip("-4", "route", "show", "table", "all").splitlines():
        words = line.split()
        dest = words[1] if words and words[0] in ("local", "broadcast",
                                                  "unicast") else (
            words[0] if words else "default")
        if dest != "default":
            routed.append(ipaddress.ip_network(dest, strict=False))
    space = ipaddress.ip_network("10.200.0.0/13")
    while True:
        offset = 4 * rng.randrange(space.num_addresses // 4)
        net = ipaddress.ip_network(f"{space[offset]}/30")
        if not any(net.overlaps(r) for r in routed):
            return str(net[1]), str(net[2])


class Netns:
    """A network namespace of the test's own, joined to the host by a
    veth pair addressed in a private /30: the host end takes the first
    address, the namespace end the second.  cut() takes the namespace's
    end down: the host keeps its route, so what it sends vanishes
    without an answer, as across a real partition (taking the host's
    end down would remove the route, and packets would leave by the
    default route and be refused by whatever is there).  heal() brings
    it up.  delete() removes both ends with the namespace."""

    def __init__(self, rng):
        tag = f"{os.getpid() % 100000}{rng.randrange(1000):03d}"
        self.name = f"tgchaos{tag}"
        self.host_if = f"tgh{tag}"
        self.ns_if = f"tgn{tag}"
        self.host_addr, self.ns_addr = private_slash30(rng)
        self.made = False

    def create(self):
        ip("netns", "add", self.name)
        self.made = True
        ip("link", "add", self.host_if, "type", "veth", "peer", "name",
           self.ns_if, "netns", self.name)
        ip("addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        ip("-n", self.name, "link", "set", "lo", "up")
        ip("-n", self.name, "addr", "add", f"{self.ns_addr}/30", "dev",
           self.ns_if)
        ip("-n", self.name, "link", "set", self.ns_if, "up")
        return self

    def cut(self):
        ip("-n", self.name, "link", "set", self.ns_if, "down")

    def heal(self):
        ip("-n", self.name, "link", "set", self.ns_if, "up")

    def delete(self):
        if self.made:
            ip("link", "del", self.host_if, check=False)
            ip("netns", "del", self.name, check=False)
            self.made = False


def netns_refusal():
    """Why this machine refuses `ip netns add`, or None if it allows it
    (tried with a namespace made and removed at once)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"tgchaosprobe{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", name], capture_output=True,
                          text=True, timeout=30)
    if done.returncode != 0:
        return f"`ip netns add` is refused here: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True,
                   timeout=30)
    return None


class NetnsRedis(tgdist.RedisServer):
    """A tgdist.RedisServer run inside a Netns (ip netns exec, which
    execs redis-server: the PID kept is the server's), listening on the
    namespace's address only."""

    def __init__(self, netns):
        super().__init__(name="nsredis")
        self.netns = netns

    def start(self, attempts=1):
        self.port = tgnginx.free_ports(1)[0]
        conf = self.dir / "redis.conf"
        conf.write_text("\n".join([
            f"port {self.port}", f"bind {self.netns.ns_addr}",
            "protected-mode no", f"dir {self.dir}", f"logfile {self.log}",
            "daemonize no", 'save ""', "appendonly no"]) + "\n")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns.name, tgdist.REDIS_SERVER,
             str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not self.wait_ready():
            raise RuntimeError("redis did not start in "
                               f"{self.netns.name}:\n{self.read_log()}")
        return self

    @property
    def addr(self):
        return f"{self.netns.ns_addr}:{self.port}"

    def client(self, **kw):
        return redis.Redis(host=self.netns.ns_addr, port=self.port,
                           decode_responses=True, socket_timeout=5, **kw)


# load ----------------------------------------------------------------------

class Traffic(tgdist.Load):
    """tgdist.Load (paced GETs of one application through one gateway,
    from threads with a keep-alive connection each, a tgdist.Sample kept
    for every reply) made for faults: a request whose connection fails
    is kept with status 0 (no reply) and the thread connects again; a
    thread that fell behind does not burst to catch up, so the offered
    rate stays a ceiling.  Also a with block."""

    def _run(self, offset_s):
        client = self.gw.client()
        next_s = time.monotonic() + offset_s
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now < next_s:
                    time.sleep(next_s - now)
                next_s = max(next_s + self.period_s,
                             time.monotonic() - self.period_s)
                sent = time.perf_counter()
                try:
                    reply = client.request("GET", self.path, app=self.app)
                except (OSError, http.client.HTTPException):
                    reply = None
                    client.close()
                    client = self.gw.client()
                latency_s = time.perf_counter() - sent
                with self.lock:
                    self.replies.append(tgdist.Sample(
                        time.monotonic(), reply.status if reply else 0,
                        latency_s, None))
        finally:
            client.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def between(self, since=None, until=None):
        with self.lock:
            return self.samples(since=since, until=until)

    def statuses(self, since=None, until=None):
        return dict(collections.Counter(
            r.status for r in self.between(since, until)))

    def admitted_tokens(self, since=None, until=None, cost=GET_COST):
        return cost * sum(1 for r in self.between(since, until)
                          if r.status == 200)


def answered(traffics):
    return sum(len(t.between()) for t in traffics)


def failures(traffics):
    """Replies that are 5xx, and requests that got no reply at all."""
    return sum(1 for t in traffics for r in t.between()
               if r.status == 0 or r.status >= 500)


def all_statuses(traffics):
    found = collections.Counter()
    for t in traffics:
        found.update(t.statuses())
    return dict(found)


def p99_ms(latencies_s):
    ordered = sorted(latencies_s)
    assert ordered, "no latencies to take a p99 of"
    return 1000 * ordered[int(0.99 * (len(ordered) - 1))]


# the degradation level, seen from outside ----------------------------------

def redis_override(client, field, level):
    """Forces a level through Redis as the admin does
    (admin_set_global.lua): the field of tg:degradation, then "*" on
    tg:config, which makes gateways read it at once (they also poll it,
    but only every few seconds)."""
    client.hset("tg:degradation", field, level)
    client.publish("tg:config", "*")


class LevelWatch:
    """Polls /tollgate/control in a thread every interval_s and keeps
    every answer with the time it came, so that a test can ask when a
    level was first shown after some moment."""

    def __init__(self, gw, interval_s=0.02):
        self.gw = gw
        self.interval_s = interval_s
        self.seen = []          # (monotonic s, control document)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = tgnginx.Worker(self._run)

    def _run(self):
        conn = None
        while not self.stopping.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.gw.port,
                                                  timeout=2)
            try:
                doc = control(self.gw, conn=conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                doc = None
            if doc is not None:
                with self.lock:
                    self.seen.append((time.monotonic(), doc))
            self.stopping.wait(self.interval_s)
        if conn is not None:
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()

    def latest(self):
        with self.lock:
            return self.seen[-1][1] if self.seen else None

    def first(self, condition, since):
        """The first time at or after since that a document met the
        condition, or None."""
        with self.lock:
            for at, doc in self.seen:
                if at >= since and condition(doc):
                    return at
        return None

    def wait(self, condition, since, timeout_s):
        """Seconds from since to the first document that met the
        condition; None if none did within timeout_s of since."""
        deadline = since + timeout_s
        while True:
            at = self.first(condition, since)
            if at is not None:
                return at - since
            if time.monotonic() > deadline:
                return None
            time.sleep(self.interval_s)

    def levels(self, since=None, until=None):
        """The levels shown in order, repeats merged."""
        shown = []
        with self.lock:
            for at, doc in self.seen:
                if since is not None and at < since:
                    continue
                if until is not None and at >= until:
                    continue
                if not shown or shown[-1] != doc["level"]:
                    shown.append(doc["level"])
        return shown


def level_is(level):
    return lambda doc: doc["level"] == level


def level_at_least(level):
    return lambda doc: doc["level"] >= level


def level_at_most(level):
    return lambda doc: doc["level"] <= level


# figures for docs/reliability.md -------------------------------------------

class Record:
    """The figures of one scenario; written to RESULTS/<name>.json when
    the test ends, with its outcome.  Times are seconds, counts are
    requests, over-admission is tokens beyond what the rules allow (a
    negative figure is room left under the limit)."""

    FIELDS = ("scenario", "detect_s", "recover_s", "answered", "errors_5xx",
              "over_admission_tokens", "allowance_tokens", "notes")

    def __init__(self, name, scenario):
        self.name = name
        self.data = {"scenario": scenario, "notes": []}

    def __setitem__(self, key, value):
        self.data[key] = value

    def __getitem__(self, key):
        return self.data[key]

    def note(self, text):
        self.data["notes"].append(text)

    def traffic(self, traffics):
        self.data["answered"] = answered(traffics)
        self.data["errors_5xx"] = failures(traffics)
        self.data["statuses"] = {str(k): v for k, v in
                                 sorted(all_statuses(traffics).items())}

    def write(self, outcome):
        self.data["outcome"] = outcome
        self.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.data["commit"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True).stdout.strip()
        self.data["cpus"] = os.cpu_count()
        self.data["load_1m"] = os.getloadavg()[0]
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps(self.data, indent=2, sort_keys=True)
                        + "\n")
