#!/usr/bin/python3
"""Sends exactly COUNT requests to 127.0.0.1:PORT over one keep-alive
connection and checks that every answer is a success (2xx).

bench/run.sh drives nginx under callgrind with it: instructions per
request need an exact request count, which a duration-bound load
generator such as wrk cannot give.

Usage: client.py PORT PATH COUNT [--apps N] [--put BYTES]

--apps N     the requests name applications app-1 .. app-N in turn,
             starting again after app-N (default: the one application
             "bench")
--put BYTES  PUT a body of BYTES bytes instead of a GET
"""

import argparse
import http.client
import sys


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("count", type=int)
    ap.add_argument("--apps", type=int, default=0)
    ap.add_argument("--put", type=int, default=None)
    args = ap.parse_args()

    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=300)
    method = "GET" if args.put is None else "PUT"
    body = None if args.put is None else b"x" * args.put
    statuses = {}

    for n in range(args.count):
        app = "app-%d" % (n % args.apps + 1) if args.apps else "bench"
        conn.request(method, args.path, body=body, headers={"X-App-Id": app})
        resp = conn.getresponse()
        resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1

    conn.close()

    if any(status // 100 != 2 for status in statuses):
        print("client.py: answers by status: %s" % statuses, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
