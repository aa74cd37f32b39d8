"""Fixtures for tollgate-admin tests: a private PostgreSQL, a private
redis-server and the daemon itself, each on a free port, each stopped by
its PID at the end of the session.

`gateway(...)` is the fixture of tests/nginx (its conftest.py, run
here): Debian's nginx with the module, stopped by
PID at teardown, whose error log must hold no [alert], [emerg], [crit]
or undeclared [error].  test_gateway.py points it at the admin's Redis.
"""

import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import redis
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

for _suite in ("nginx", "distributed"):
    sys.path.insert(0, os.path.join(ROOT, "tests", _suite))

# declared after admin and rd in a test's arguments, gateways stop first
gateway = runpy.run_path(os.path.join(ROOT, "tests/nginx/conftest.py"))[
    "gateway"]

ADMIN_BIN = os.path.join(ROOT, "build", "tollgate-admin")
PG_BIN = "/usr/lib/postgresql/15/bin"
JWT_SECRET = "test-secret-" + "x" * 40
ADMIN_USER = "root-admin"
ADMIN_PASSWORD = "correct horse battery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout_s=20.0, what="service"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout_s} s")


def stop(proc, sig=signal.SIGTERM, timeout_s=10):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Postgres:
    """A throwaway cluster owned by the postgres user (initdb refuses root)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tg-admin-pg-")
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o700)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        self.proc = None

    def as_postgres(self, *argv, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--", *argv],
                              check=True, capture_output=True, **kw)

    def start(self):
        self.as_postgres(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres",
                         "-A", "trust", "--no-sync")
        self.proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", f"{PG_BIN}/postgres",
             "-D", self.data, "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=", "-c", "fsync=off",
             "-c", "max_connections=20"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "w"))
        wait_for(lambda: subprocess.run(
            [f"{PG_BIN}/pg_isready", "-h", self.dir, "-p", str(self.port)],
            capture_output=True).returncode == 0, what="postgres")
        self.as_postgres("psql", "-h", self.dir, "-p", str(self.port), "-c",
                         "CREATE DATABASE tollgate")

    def url(self, dbname="tollgate"):
        return f"host={self.dir} port={self.port} user=postgres dbname={dbname}"

    def create_database(self, dbname):
        """A database of its own, for an admin whose configuration must
        not mix with the session admin's; its connection string."""
        self.as_postgres("psql", "-h", self.dir, "-p", str(self.port), "-c",
                         f"CREATE DATABASE {dbname}")
        return self.url(dbname)

    def sql(self, query):
        out = self.as_postgres("psql", "-h", self.dir, "-p", str(self.port),
                               "-d", "tollgate", "-At", "-c", query)
        return out.stdout.decode().strip()

    def stop(self):
        if self.proc:
            # runuser forwards SIGTERM to postgres: a "smart" shutdown
            stop(self.proc, signal.SIGINT)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tg-admin-redis-")
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, decode_responses=True)
        wait_for(self.client.ping, what="redis")

    def restart(self):
        """Same port, new process: empty, with a new run id."""
        stop(self.proc)
        self.start()

    def stop(self):
        if self.proc:
            stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Admin:
    """One tollgate-admin process and a requests session bound to it.
    rd may be None when extra_env sets TOLLGATE_REDIS."""

    def __init__(self, pg, rd, extra_env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tempfile.mktemp(prefix="tg-admin-log-")
        env = dict(os.environ)
        env.update({
            "TOLLGATE_ADMIN_LISTEN": f"127.0.0.1:{self.port}",
            "TOLLGATE_DATABASE_URL": pg.url(),
            "TOLLGATE_REDIS": f"127.0.0.1:{rd.port} timeout=500ms" if rd
                              else "",
            "TOLLGATE_JWT_SECRET": JWT_SECRET,
            "TOLLGATE_ADMIN_USER": ADMIN_USER,
            "TOLLGATE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        })
        env.update(extra_env or {})
        self.env = env
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([ADMIN_BIN], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        wait_for(lambda: requests.get(self.base + "/healthz", timeout=1)
                 .status_code in (200, 503), what="tollgate-admin")

    def stop(self):
        if self.proc:
            stop(self.proc)
        return self.proc.returncode if self.proc else None

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def login(self, user=ADMIN_USER, password=ADMIN_PASSWORD):
        r = requests.post(self.base + "/api/v1/auth/login",
                          json={"username": user, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def session(self, token):
        s = requests.Session()
        s.headers["Authorization"] = "Bearer " + token
        return s


@pytest.fixture(scope="session")
def pg():
    p = Postgres()
    try:
        p.start()
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def rd():
    r = Redis()
    try:
        r.start()
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="session")
def admin(pg, rd):
    a = Admin(pg, rd)
    try:
        a.start()
        yield a
    finally:
        a.stop()
        if os.path.exists(a.log_path):
            os.unlink(a.log_path)


@pytest.fixture(scope="session")
def token(admin):
    return admin.login()


@pytest.fixture
def api(admin, token):
    """An admin's session; paths are relative to /api/v1."""
    s = admin.session(token)
    base = admin.base + "/api/v1"

    class Api:
        def __getattr__(self, method):
            def call(path, **kw):
                return s.request(method.upper(), base + path, **kw)
            return call
    return Api()


@pytest.fixture
def uid():
    """A fresh id fragment, so tests never share objects."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def cluster(api, uid):
    cid = "c-" + uid
    r = api.put(f"/clusters/{cid}", json={"capacity": 10000,
                                          "reserved_ratio": 0.1})
    assert r.status_code == 201, r.text
    return cid
