"""Run Debian's nginx with the Tollgate module in a private prefix.

A Gateway is one nginx (master + 2 workers) serving two loopback ports
picked at run time: the gateway, where Tollgate limits requests before
proxy_pass, and a WebDAV upstream on a temporary folder, so that PUT
really stores bodies and GET really reads them.  Everything nginx writes
stays under the prefix; the master is started and stopped by its PID, so
several suites can share one machine.

Every request a Client sends carries an X-Test-Id header, logged by both
servers, so that a test can find its own request in the access log (cost,
decision, layer) and tell whether it reached the upstream.
"""

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

NGINX = os.environ.get("TOLLGATE_NGINX", "/usr/sbin/nginx")
REPO = Path(__file__).resolve().parents[2]
MODULE = Path(
    os.environ.get("TOLLGATE_MODULE", REPO / "build/ngx_http_tollgate_module.so")
)
KEEP = os.environ.get("TOLLGATE_KEEP_PREFIX") == "1"

KIB = 1024
MIB = 1024 * KIB

# Cluster c1 is large enough that only the application limits a test sets
# matter; "roomy" is an application that never runs out in a test.
DEFAULT_HTTP = """
    tollgate_cluster_capacity c1 capacity=100000 reserved=0.2;
    tollgate_app roomy guaranteed=10000 burst=10000;
"""
DEFAULT_LIMIT = "tollgate zone=tg app=$http_x_app_id;"
DEFAULT_CLUSTER = "tollgate_cluster c1;"
DEFAULT_ZONE = "tg:1m"

# the app id comes last: it is the only field that may hold spaces
ACCESS_FIELDS = ("test_id", "method", "uri", "status", "cost", "decision",
                 "layer", "pid", "app")

CONF = """
load_module {module};
{user}
master_process on;
worker_processes 2;
daemon off;
pid {prefix}/nginx.pid;
lock_file {prefix}/nginx.lock;
error_log {prefix}/error.log info;

events {{
    worker_connections 512;
}}

http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path       {prefix}/tmp/proxy;
    fastcgi_temp_path     {prefix}/tmp/fastcgi;
    uwsgi_temp_path       {prefix}/tmp/uwsgi;
    scgi_temp_path        {prefix}/tmp/scgi;

    log_format tollgate '$http_x_test_id $request_method $uri $status '
                        '$tollgate_cost $tollgate_decision $tollgate_layer '
                        '$pid $http_x_app_id';
    log_format upstream '$http_x_test_id $request_method $uri $status';

    tollgate_zone {zone};
{http}

    # for snippets: proxy_pass http://storage/...;
    upstream storage {{
        server 127.0.0.1:{upstream_port};
    }}

    server {{
        listen 127.0.0.1:{upstream_port};
        access_log {prefix}/upstream.log upstream;
        client_max_body_size 20m;
        # a 404 is an answer here, not a fault
        log_not_found off;

        location / {{
            root {prefix}/data;
            dav_methods PUT DELETE;
            create_full_put_path on;
        }}
    }}

    server {{
        listen 127.0.0.1:{port} reuseport;
        access_log {prefix}/access.log tollgate;
        client_max_body_size 20m;
        # large enough for the module, not nginx, to judge an 8 KiB app id
        large_client_header_buffers 4 16k;
        {cluster}
{server}

        location / {{
            {limit}
{location}
            proxy_pass http://127.0.0.1:{upstream_port};
        }}

        # the WebDAV upstream stores PUT bodies only: a POST is charged
        # as a POST here and forwarded as a PUT
        location /post/ {{
            {limit}
{location}
            proxy_method PUT;
            proxy_pass http://127.0.0.1:{upstream_port};
        }}

        location = /tollgate/status {{
            tollgate_status;
        }}

        location = /metrics {{
            tollgate_metrics;
        }}
    }}
}}
"""

_test_ids = itertools.count(1)


def free_ports(count):
    """Loopback ports nobody listens on now, picked by the kernel.

    Another program may take one before nginx binds it; Gateway.start()
    sees that as "Address already in use" and tries fresh ports.
    """
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def user_directive():
    """As root the workers would switch to nobody, who may not enter the
    private prefix; keep them as the user running the tests."""
    if os.geteuid() != 0:
        return ""
    return "user root root;"


def children_of(pid):
    """PIDs of the processes whose parent is pid (nginx's workers)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may hold spaces; fields after ")" are fixed
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


class Reply:
    def __init__(self, test_id, status, headers, body):
        self.test_id = test_id
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Reply {self.test_id} {self.status} {dict(self.headers)}>"


class Client:
    """One keep-alive HTTP/1.1 connection; use one per thread."""

    def __init__(self, port, timeout_s=15):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def request(self, method, path, app=None, body=None, headers=None, chunks=None):
        """Sends one request and reads the whole reply.

        chunks, an iterable of bytes, sends the body chunked (no
        Content-Length); body sends it with a Content-Length.
        """
        test_id = f"t{os.getpid()}-{next(_test_ids)}"
        all_headers = {"X-Test-Id": test_id}
        if app is not None:
            all_headers["X-App-Id"] = app
        all_headers.update(headers or {})

        if chunks is not None:
            all_headers["Transfer-Encoding"] = "chunked"
            self.conn.request(
                method, path, body=iter(chunks), headers=all_headers,
                encode_chunked=True,
            )
        else:
            if body is None and method in ("PUT", "POST"):
                body = b""
            self.conn.request(method, path, body=body, headers=all_headers)

        resp = self.conn.getresponse()
        data = resp.read()
        return Reply(test_id, resp.status, resp.headers, data)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_request(port, data, timeout_s=10, half_close=False):
    """Sends bytes as they are and returns the reply's status code (0 when
    the server closed without one) and the reply; half_close ends the
    sending side after data, as a client that stops mid-body does.

    Reading stops at the end of the first reply: a server that refused a
    request whose body never comes keeps the connection open a while to
    drain it (lingering close), and the test need not wait for that.
    """
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while not _reply_complete(reply):
            try:
                part = s.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            reply += part
    m = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return (int(m.group(1)) if m else 0), reply


def _reply_complete(reply):
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return m is not None and len(body) >= int(m.group(1))


class Metrics:
    """A parsed /metrics page: families by name, samples by sample name."""

    def __init__(self, text):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(self, name):
        return [s for f in self.families.values() for s in f.samples if s.name == name]

    def value(self, name, **labels):
        """The value of the one sample whose labels include these."""
        found = [s for s in self.samples(name)
                 if all(s.labels.get(k) == v for k, v in labels.items())]
        assert len(found) == 1, f"{name}{labels} matches {found}"
        return found[0].value


def find_app(status, app_id):
    """The entry of app_id in a /tollgate/status document."""
    for zone in status["zones"]:
        for app in zone["apps"]:
            if app["app_id"] == app_id:
                return app
    raise AssertionError(f"no app {app_id!r} in {status}")


class Gateway:
    """nginx with Tollgate in front of a WebDAV upstream.

    zone is the tollgate_zone, http goes into the http block (clusters,
    apps, profiles), cluster and server into the gateway's server block,
    limit and location into both limited locations (/ and /post/).
    expect_errors lists regular expressions of the [error] lines the test
    provokes on purpose.
    """

    def __init__(self, zone=DEFAULT_ZONE, http=DEFAULT_HTTP,
                 cluster=DEFAULT_CLUSTER, server="", limit=DEFAULT_LIMIT,
                 location="", expect_errors=()):
        self.snippets = {"zone": zone, "http": http, "cluster": cluster,
                         "server": server, "limit": limit,
                         "location": location}
        self.expect_errors = [re.compile(e) for e in expect_errors]
        self.prefix = Path(tempfile.mkdtemp(prefix="tollgate-nginx-"))
        self.conf = self.prefix / "nginx.conf"
        self.error_log = self.prefix / "error.log"
        self.access_log = self.prefix / "access.log"
        self.upstream_log = self.prefix / "upstream.log"
        self.data = self.prefix / "data"
        self.proc = None
        self.port = self.upstream_port = None
        self._client = None
        for sub in ("data", "tmp"):
            (self.prefix / sub).mkdir()
        # what the tests GET: a 1 KiB object, charged C_base
        (self.data / "obj").mkdir()
        (self.data / "obj/1k").write_bytes(b"k" * KIB)

    def render(self):
        self.port, self.upstream_port = free_ports(2)
        self._write_conf()

    def reconfigure(self, **snippets):
        """Replaces configuration snippets, keeping the ports: reload()
        then applies them."""
        self.snippets.update(snippets)
        self._write_conf()

    def _write_conf(self):
        self.conf.write_text(CONF.format(
            module=MODULE, user=user_directive(), prefix=self.prefix,
            port=self.port, upstream_port=self.upstream_port,
            **self.snippets))

    # process control ---------------------------------------------------

    def start(self, attempts=3):
        for attempt in range(attempts):
            self.render()
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(self.prefix), "-c", str(self.conf),
                 "-e", str(self.error_log)],
                stdout=subprocess.DEVNULL,
                stderr=open(self.prefix / "stderr.log", "ab"),
            )
            if self.wait_ready():
                return self
            self.stop()
            if "Address already in use" not in self.read_error_log():
                break
            self.error_log.unlink(missing_ok=True)
        raise RuntimeError(
            f"nginx did not start (exit {self.proc.returncode}):\n"
            + self.read_error_log()[-4000:])

    def wait_ready(self, timeout_s=15):
        """True once a worker answers HTTP; False if the master exited or
        no worker answered in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _ = raw_request(
                    self.upstream_port,
                    b"HEAD /obj/1k HTTP/1.0\r\nHost: ready\r\n\r\n",
                    timeout_s=2)
                if status:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def reload(self, timeout_s=15):
        """nginx -s reload, then waits until only new workers are left, so
        that the next request is served by the new configuration."""
        old = children_of(self.proc.pid)
        if self._client:
            self._client.close()
        done = subprocess.run(
            [NGINX, "-p", str(self.prefix), "-c", str(self.conf), "-s", "reload"],
            capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = children_of(self.proc.pid)
            if len(now) == 2 and not now & old:
                return
            time.sleep(0.05)
        raise AssertionError(f"workers {old} still running after reload")

    def stop(self):
        """Stops nginx gracefully by PID; returns what went wrong."""
        if self._client:
            self._client.close()
        if self.proc is None or self.proc.poll() is not None:
            return []
        workers = children_of(self.proc.pid)
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(15)
            return []
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return ["nginx did not quit within 15 s of SIGQUIT"]

    def cleanup(self):
        if not KEEP:
            shutil.rmtree(self.prefix, ignore_errors=True)

    # what nginx logged -------------------------------------------------

    def read_error_log(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            path = self.prefix / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def error_log_problems(self):
        """Lines of the error log no test may leave: [alert], [emerg],
        [crit], a worker killed by a signal, an [error] not expected."""
        bad = []
        for line in self.read_error_log().splitlines():
            if re.search(r"\[(alert|emerg|crit)\]|exited on signal", line):
                bad.append(line)
            elif "[error]" in line and not any(
                    e.search(line) for e in self.expect_errors):
                bad.append(line)
        return bad

    def access_entries(self):
        if not self.access_log.exists():
            return []
        entries = []
        for line in self.access_log.read_text().splitlines():
            fields = line.split(" ", len(ACCESS_FIELDS) - 1)
            entries.append(dict(zip(ACCESS_FIELDS, fields)))
        return entries

    def entry(self, reply_or_id, timeout_s=5):
        """The access log line of one request.  nginx writes it after the
        reply is sent, so wait for it a little."""
        test_id = getattr(reply_or_id, "test_id", reply_or_id)
        deadline = time.monotonic() + timeout_s
        while True:
            for e in self.access_entries():
                if e["test_id"] == test_id:
                    return e
            if time.monotonic() > deadline:
                raise AssertionError(f"no access log line for {test_id}")
            time.sleep(0.02)

    def upstream_saw(self, reply):
        if not self.upstream_log.exists():
            return False
        return any(line.split(" ", 1)[0] == reply.test_id
                   for line in self.upstream_log.read_text().splitlines())

    # talking to it -----------------------------------------------------

    def client(self):
        return Client(self.port)

    def request(self, method, path, app=None, **kw):
        """One request over a connection kept for the test's main thread."""
        if self._client is None:
            self._client = self.client()
        return self._client.request(method, path, app=app, **kw)

    def metrics_text(self):
        with self.client() as c:
            reply = c.request("GET", "/metrics")
        assert reply.status == 200, reply
        return reply.body.decode()

    def metrics(self):
        return Metrics(self.metrics_text())

    def status(self):
        with self.client() as c:
            reply = c.request("GET", "/tollgate/status")
        assert reply.status == 200, reply
        return reply.json()


def config_test(**snippets):
    """Runs nginx -t on a Gateway's configuration; returns the exit code
    and what nginx printed, with the prefix's path cut out (it is random
    and could match a value the test looks for)."""
    gw = Gateway(**snippets)
    try:
        gw.render()
        done = subprocess.run(
            [NGINX, "-t", "-p", str(gw.prefix), "-c", str(gw.conf)],
            capture_output=True, text=True, timeout=30)
        output = (done.stdout + done.stderr).replace(str(gw.prefix), "PREFIX")
        return done.returncode, output
    finally:
        gw.cleanup()


# what a rejection says -------------------------------------------------------

def parse_policies(value):
    """RateLimit-Policy / RateLimit (structured-field lists) as
    {name: {param: value}}: '"burst";q=10;w=1, ...'."""
    policies = {}
    for item in value.split(","):
        name, *params = item.strip().split(";")
        assert re.fullmatch(r'"[a-z]+"', name), f"bad policy item {item!r}"
        policies[name.strip('"')] = dict(p.split("=", 1) for p in params)
    return policies


def check_rejection(gw, reply, status=429):
    """Asserts the contract of a rejected request (directives.md,
    Responses) and returns the layer that refused it."""
    assert reply.status == status, reply
    retry_after = reply.header("Retry-After")
    assert retry_after is not None and re.fullmatch(r"[0-9]+", retry_after), reply
    assert int(retry_after) >= 1

    policies = parse_policies(reply.header("RateLimit-Policy") or "")
    limit = parse_policies(reply.header("RateLimit") or "")
    assert len(limit) == 1, reply
    layer, params = next(iter(limit.items()))
    assert layer in policies, (layer, policies)
    assert int(params["t"]) >= 1 and int(params["r"]) >= 0, params

    body = reply.json()
    expected = {"error": "rate_limited", "layer": layer,
                "retry_after": int(retry_after)}
    assert body.items() >= expected.items(), body

    entry = gw.entry(reply)
    assert (entry["decision"], entry["layer"]) == ("rejected", layer), entry
    assert not gw.upstream_saw(reply), "a rejected request reached the upstream"
    return layer


def spend(client, app, max_requests, path="/obj/1k"):
    """GETs as app until the first refusal, through a Client or a
    Gateway; returns the replies admitted and the refusal (None if every
    request was admitted)."""
    admitted = []
    for _ in range(max_requests):
        reply = client.request("GET", path, app=app)
        if reply.status != 200:
            return admitted, reply
        admitted.append(reply)
    return admitted, None


class Worker(threading.Thread):
    """A thread whose exception is raised again by join(), so that a
    client thread that failed fails the test instead of going quiet."""

    def __init__(self, target, *args):
        super().__init__(target=target, args=args)
        self.error = None

    def run(self):
        try:
            super().run()
        except BaseException as e:
            self.error = e

    def join(self, timeout=None):
        super().join(timeout)
        if self.error is not None:
            raise self.error


def drive(gw, apps, seconds=None, until=None):
    """GETs as each app from its own thread, a few hundred a second,
    for seconds or until until() is true; returns the replies per app and
    how long the traffic lasted."""
    stop = threading.Event()
    replies = {app: [] for app in apps}

    def traffic(app):
        with gw.client() as c:
            while not stop.is_set():
                replies[app].append(c.request("GET", "/obj/1k", app=app))
                time.sleep(0.003)

    threads = [Worker(traffic, app) for app in apps]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        if until is None:
            time.sleep(seconds)
        else:
            deadline = started + 15
            while not until():
                assert time.monotonic() < deadline, "condition never met"
                time.sleep(0.25)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return replies, time.monotonic() - started
