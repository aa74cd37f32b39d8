#!/usr/bin/python3
"""Sends exactly COUNT GET requests to 127.0.0.1:PORT over one keep-alive
connection and checks that every answer is 200.

bench/run.sh drives nginx under callgrind with it: instructions per
request need an exact request count, which a duration-bound load
generator such as wrk cannot give.

Usage: client.py PORT PATH COUNT
"""

import http.client
import sys


def main():
    port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    statuses = {}

    for _ in range(count):
        conn.request("GET", path, headers={"X-App-Id": "bench"})
        resp = conn.getresponse()
        resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1

    conn.close()

    if set(statuses) != {200}:
        print("client.py: answers by status: %s" % statuses, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
