"""Distributed mode: real Redis servers next to the gateways of tgnginx.

Every Redis this suite needs (a single server, a Sentinel-managed pair,
a six-node Redis Cluster) runs from /usr/bin/redis-server on loopback
ports the kernel picks, in its own temporary folder, and is stopped by
its PID.  Gateways are tgnginx.Gateway instances whose http block points
the module at those servers (distributed_http()).

Also here: the application keys written straight into Redis as the
admin daemon would (docs/redis-keys.md), a paced load generator that
records what each gateway answered, and a TCP proxy that delays what
is sent through it (to slow Redis down without touching it).
"""

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nginx"))

import tgnginx  # noqa: E402  (the gateway fixture code of tests/nginx)
from tgnginx import Worker, free_ports  # noqa: E402,F401

REDIS_SERVER = os.environ.get("TOLLGATE_REDIS_SERVER", "/usr/bin/redis-server")
REDIS_CLI = os.environ.get("TOLLGATE_REDIS_CLI", "/usr/bin/redis-cli")

# every GET of /obj/1k costs C_base with the standard profile
GET_COST = 2


# Redis processes ------------------------------------------------------------

class RedisServer:
    """One redis-server (or sentinel) on a free loopback port.

    Nothing is persisted: each test starts from an empty server.  args
    are added to the configuration file, one directive a line.
    """

    def __init__(self, args=(), sentinel=False, name="redis",
                 cluster_bus=False):
        self.dir = Path(tempfile.mkdtemp(prefix=f"tollgate-{name}-"))
        self.args = list(args)
        self.sentinel = sentinel
        self.cluster_bus = cluster_bus
        self.port = None
        self.proc = None
        self.log = self.dir / "redis.log"

    def start(self, attempts=3):
        for _ in range(attempts):
            self.port = self.pick_port()
            conf = self.dir / "redis.conf"
            lines = [f"port {self.port}", "bind 127.0.0.1",
                     f"dir {self.dir}", f"logfile {self.log}",
                     "daemonize no"]
            if not self.sentinel:
                lines += ['save ""', "appendonly no"]
            conf.write_text("\n".join(lines + self.args) + "\n")
            cmd = [REDIS_SERVER, str(conf)]
            if self.sentinel:
                cmd.append("--sentinel")
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            if self.wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"redis did not start:\n{self.read_log()[-3000:]}")

    def pick_port(self):
        """A free port; for a cluster node, one whose bus port (10000
        higher, so at most 55535) is free too."""
        while True:
            port = free_ports(1)[0]
            if not self.cluster_bus:
                return port
            if port <= 55535 and port_is_free(port + 10000):
                return port

    def wait_ready(self, timeout_s=10):
        """True once the server answers PING; False if it exited first."""
        poll(lambda: not self.alive() or self.client().ping(), timeout_s)
        return self.alive()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def client(self, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port,
                           decode_responses=True, socket_timeout=5, **kw)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def read_log(self):
        if not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")

    def cleanup(self):
        self.stop()
        if not tgnginx.KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


class SentinelSet:
    """A master, one replica and three sentinels watching them, all on
    127.0.0.1, so no host name is ever resolved."""

    MASTER_NAME = "tgmaster"

    def __init__(self):
        self.master = RedisServer(name="master")
        self.replica = None
        self.sentinels = []

    def start(self):
        self.master.start()
        self.replica = RedisServer(
            args=[f"replicaof 127.0.0.1 {self.master.port}"],
            name="replica").start()
        for i in range(3):
            self.sentinels.append(RedisServer(
                args=[f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 "
                      f"{self.master.port} 2",
                      f"sentinel down-after-milliseconds {self.MASTER_NAME} "
                      "1000",
                      f"sentinel failover-timeout {self.MASTER_NAME} 5000"],
                sentinel=True, name=f"sentinel{i}").start())
        wait_for(self.replica_synced, 15, "the replica never synced")
        wait_for(self.sentinels_agree, 15,
                 "the sentinels never saw each other and the replica")
        return self

    def replica_synced(self):
        info = self.replica.client().info("replication")
        return info.get("master_link_status") == "up"

    def sentinels_agree(self):
        for s in self.sentinels:
            m = s.client().sentinel_master(self.MASTER_NAME)
            if m["num-other-sentinels"] < 2 or m["num-slaves"] < 1:
                return False
        return True

    def master_port(self):
        """The master the sentinels currently name."""
        r = self.sentinels[0].client()
        _, port = r.sentinel_get_master_addr_by_name(self.MASTER_NAME)
        return int(port)

    @property
    def servers(self):
        return [self.master, self.replica] + self.sentinels

    def cleanup(self):
        for s in reversed(self.servers):
            if s is not None:
                s.cleanup()


class RedisCluster:
    """Six redis-server --cluster-enabled nodes joined by redis-cli into
    three masters, each with one replica."""

    def __init__(self, nodes=6):
        self.nodes = [RedisServer(args=["cluster-enabled yes",
                                        "cluster-node-timeout 2000",
                                        "cluster-config-file nodes.conf"],
                                  name=f"node{i}", cluster_bus=True)
                      for i in range(nodes)]

    def start(self):
        for n in self.nodes:
            n.start()
        done = subprocess.run(
            [REDIS_CLI, "--cluster", "create"]
            + [n.addr for n in self.nodes]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"cluster create failed:\n{done.stdout}"
                               f"\n{done.stderr}")
        wait_for(self.healthy, 20, "the cluster never reached state ok")
        return self

    def healthy(self):
        for n in self.nodes:
            info = n.client().execute_command("CLUSTER INFO")
            if info.get("cluster_state") != "ok":
                return False
        return True

    def client(self):
        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port,
                                  decode_responses=True)

    def node_of(self, key):
        """The master node (RedisServer) that serves key now."""
        r = self.nodes[0].client()
        slot = r.execute_command("CLUSTER", "KEYSLOT", key)
        for start, end, master, *_ in r.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == master[1])
        raise AssertionError(f"no node serves slot {slot}")

    def replica_of(self, master):
        r = master.client()
        myid = r.execute_command("CLUSTER MYID")
        line = r.execute_command("CLUSTER", "REPLICAS", myid)[0]
        port = int(line.split()[1].split("@")[0].rsplit(":", 1)[1])
        return next(n for n in self.nodes if n.port == port)

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def poll(condition, timeout_s, interval_s=0.05):
    """True as soon as condition() is; False after timeout_s.  A Redis
    error counts as "not yet" (a server still starting, a failover)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if condition():
                return True
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)


def wait_for(condition, timeout_s, message):
    if not poll(condition, timeout_s, interval_s=0.1):
        raise AssertionError(message)


# configuration in Redis, as the admin daemon writes it ----------------------

def put_cluster(r, cluster, capacity, reserved_ratio="0.2", window_ms=None):
    fields = {"capacity": capacity, "reserved_ratio": reserved_ratio,
              "version": 1}
    if window_ms is not None:
        fields["window_ms"] = window_ms
    r.hset(f"tg:{{{cluster}}}:cluster", mapping=fields)
    r.incr(f"tg:{{{cluster}}}:version")


def put_app(r, cluster, app, guaranteed, burst=None, priority=1,
            max_borrow=0, profile="standard", bump=True):
    """Writes (or changes) an application; bump=False leaves the
    configuration version alone, so gateways are not told."""
    key = f"tg:{{{cluster}}}:app:{app}"
    r.hset(key, mapping={
        "app_id": app, "cluster_id": cluster,
        "guaranteed_quota": guaranteed,
        "burst_quota": guaranteed if burst is None else burst,
        "priority": priority, "max_borrow": max_borrow,
        "cost_profile": profile,
        "version": int(r.hget(key, "version") or 0) + 1})
    r.sadd(f"tg:{{{cluster}}}:apps", app)
    if bump:
        r.incr(f"tg:{{{cluster}}}:version")


def script_calls(r):
    """EVALSHA and EVAL calls a server has run (INFO commandstats)."""
    stats = r.info("commandstats")
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0)
               for c in ("evalsha", "eval", "evalsha_ro", "eval_ro"))


# gateways -------------------------------------------------------------------

# degradation judged on errors only: latency on a busy machine, or a delay
# a test adds, does not move the level
CALM_DEGRADATION = "tollgate_degradation conserve=5s local_first=10s;"


def distributed_http(redis_spec, gateway_id, extra="", wait="100ms"):
    """The http snippet of a gateway in distributed mode."""
    return f"""
    tollgate_redis {redis_spec};
    tollgate_gateway_id {gateway_id};
    tollgate_wait {wait};
{extra}
"""


def start_gateways(gateway, count, redis_spec, cluster="c1", extra="",
                   expect_errors=(), **snippets):
    """count gateways named gw1.. sharing redis_spec, via the gateway
    fixture (which stops them and checks their logs)."""
    return [gateway(http=distributed_http(redis_spec, f"gw{i + 1}", extra),
                    cluster=f"tollgate_cluster {cluster};",
                    expect_errors=expect_errors, **snippets)
            for i in range(count)]


def ask_each(gw, names, threads=4, path="/obj/1k"):
    """One GET per application named, from `threads` keep-alive
    connections at once; returns the statuses, in no particular order."""
    todo = iter(names)
    lock = threading.Lock()
    statuses = []

    def run():
        with gw.client() as c:
            while True:
                with lock:
                    app = next(todo, None)
                if app is None:
                    return
                statuses.append(c.request("GET", path, app=app).status)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return statuses


def lease_of(gw, app):
    """The app's entry of the gateway's status, None while it has none."""
    for zone in gw.status()["zones"]:
        for entry in zone["apps"]:
            if entry["app_id"] == app:
                return entry
    return None


def cluster_status(gw, cluster):
    for zone in gw.status()["zones"]:
        for entry in zone.get("clusters", []):
            if entry.get("cluster_id") == cluster:
                return entry
    return None


def warm(gateways, app, path="/obj/1k"):
    """One request of app through each gateway, so each has asked Redis
    once (the config and a first lease) before a measurement starts."""
    for gw in gateways:
        gw.request("GET", path, app=app)


# load -----------------------------------------------------------------------

# one reply of a Load: when it came (monotonic), its status, how long it
# took from sending the request (seconds), the Reply itself
Sample = collections.namedtuple("Sample", "at status latency_s reply")


class Load:
    """Paced GETs of one application through one gateway, from threads of
    their own (each a keep-alive connection), between start() and
    stop(); keeps a Sample of every reply."""

    def __init__(self, gw, app, rate_rps, threads=2, path="/obj/1k"):
        self.gw = gw
        self.app = app
        self.path = path
        self.period_s = threads / rate_rps
        self.nthreads = threads
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.replies = []
        self.threads = []

    def _run(self, offset_s):
        with self.gw.client() as c:
            next_s = time.monotonic() + offset_s
            while not self.stopping.is_set():
                now = time.monotonic()
                if now < next_s:
                    time.sleep(next_s - now)
                next_s += self.period_s
                sent = time.perf_counter()
                reply = c.request("GET", self.path, app=self.app)
                latency_s = time.perf_counter() - sent
                with self.lock:
                    self.replies.append(Sample(time.monotonic(),
                                               reply.status, latency_s,
                                               reply))

    def start(self):
        for i in range(self.nthreads):
            t = Worker(self._run, i * self.period_s / self.nthreads)
            self.threads.append(t)
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()

    def samples(self, status=None, since=None, until=None):
        return [r for r in self.replies
                if (status is None or r.status == status)
                and (since is None or r.at >= since)
                and (until is None or r.at < until)]

    def count(self, status=None, since=None, until=None):
        return len(self.samples(status, since, until))

    def statuses(self):
        return dict(collections.Counter(r.status for r in self.replies))


@contextlib.contextmanager
def running(loads):
    """The loads run for the duration of the with block."""
    for load in loads:
        load.start()
    try:
        yield loads
    finally:
        for load in loads:
            load.stop()


def run_loads(loads, seconds, sample=None, every_s=0.5):
    """Runs the loads together for seconds; calls sample() every every_s
    meanwhile.  Returns the wall time from the first start to the last
    reply."""
    started = time.monotonic()
    with running(loads):
        deadline = started + seconds
        while time.monotonic() < deadline:
            if sample is not None:
                sample()
            time.sleep(min(every_s, max(0, deadline - time.monotonic())))
    return time.monotonic() - started


def statuses_of(loads):
    """Replies by status code, over all the loads."""
    found = collections.Counter()
    for load in loads:
        found.update(load.statuses())
    return dict(found)


# a slow network -------------------------------------------------------------

class DelayProxy:
    """A TCP proxy on a free loopback port that holds every chunk sent to
    the server for delay_s before passing it on, so that each round trip
    takes delay_s longer; replies pass at once.  Chunks keep their order.

    It runs as a process of its own (this file run as a program), so
    that its work never competes with the test's client threads for the
    interpreter lock and blurs the latencies they measure."""

    def __init__(self, target_port, delay_s):
        self.target_port = target_port
        self.delay_s = delay_s
        self.port = None
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "delay-proxy", str(self.target_port),
             str(self.delay_s)],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the delay proxy did not start: {line!r}")
        self.port = int(line)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def serve(self):
        """The proxy itself: prints its port, then serves until killed."""
        asyncio.run(self._serve())

    async def _serve(self):
        self.loop = asyncio.get_running_loop()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    async def _accept(self, client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(
                "127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(self._pipe(client_r, server_w, True),
                             self._pipe(server_r, client_w, False),
                             return_exceptions=True)

    async def _pipe(self, reader, writer, delayed):
        """Reads chunks as they come and delivers each delay_s after it
        arrived: a queue keeps the order without adding up the delays."""
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, chunk = await queue.get()
                if chunk is None:
                    break
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                delay_s = self.delay_s if delayed else 0
                queue.put_nowait((self.loop.time() + delay_s, chunk))
        finally:
            queue.put_nowait((0, None))
            try:
                await sender
            finally:
                writer.close()


if __name__ == "__main__" and sys.argv[1:2] == ["delay-proxy"]:
    DelayProxy(int(sys.argv[2]), float(sys.argv[3])).serve()
