#!/usr/bin/python3
"""What one acquire.lua call costs Redis, in instructions.

Starts its own redis-server under callgrind on a free loopback port,
twice: once to run one acquire (the base: start-up, script loading),
once to run 1 + CALLS acquires of one application; prints
(Ir of the second - Ir of the first) / CALLS.  The scripts are sent as
the gateway sends them: the library, then the script.

Usage: bench/acquire_cost.py [CALLS]    (default 200)
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import callgrind_total_ir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(calls, out):
    port = free_port()
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=" + out,
         "redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port, decode_responses=True)
        for _ in range(300):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        else:
            raise SystemExit("acquire_cost.py: redis-server did not start")

        r.hset("tg:{c1}:cluster", mapping={"capacity": 100000,
                                           "reserved_ratio": "0.2"})
        r.hset("tg:{c1}:app:a", mapping={
            "app_id": "a", "cluster_id": "c1", "guaranteed_quota": 1000,
            "burst_quota": 1000, "priority": 1, "max_borrow": 0,
            "cost_profile": "standard", "version": 1})
        acquire = r.register_script(
            (ROOT / "redis/lib/tollgate.lua").read_text() + "\n"
            + (ROOT / "redis/acquire.lua").read_text())
        keys = ["tg:{c1}:" + k for k in ("cluster", "app:a", "pool",
                                         "state:a", "emergency", "events")]

        for i in range(1 + calls):
            acquire(keys=keys, args=[10, 1, T0 + 10 * i, "bench"])

        r.shutdown(nosave=True)
    except redis.ConnectionError:
        pass    # the shutdown closes the connection
    finally:
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        base, counted = (os.path.join(tmp, "base.out"),
                         os.path.join(tmp, "counted.out"))
        run(0, base)
        run(calls, counted)
        print("acquire.lua: %.0f instructions per call in Redis "
              "(%d calls, callgrind)"
              % ((callgrind_total_ir(counted) - callgrind_total_ir(base))
                 / calls, calls))


if __name__ == "__main__":
    main()
