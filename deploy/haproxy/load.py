#!/usr/bin/env python3
"""Keep-alive load through a fleet, counting what is lost while instances stop.

    deploy/haproxy/load.py URL --ca CA [--seconds S] [--connections C] [--source ADDR]

C threads (default 16) each keep one HTTP/1.1 connection and send GET URL back to back for S
seconds (default 5). A request that fails (connection closed or reset before a whole
response, a 5xx) is counted in `failed` and tried once more on a new connection, as curl,
browsers and most HTTP clients do for an idempotent request on a reused connection; `lost` counts
those that fail again. Prints "running" once 100 requests have succeeded, then, at the end,
one JSON line: requests, ok, failed, lost, reconnects, the status codes seen and the first
errors. Connects only to
URL's host (loopback in the tests), from --source when given (e.g. 127.0.0.2, so that the
servers can tell the client's address from the load balancer's).
"""

import argparse
import http.client
import json
import ssl
import sys
import threading
import time
from urllib.parse import urlsplit


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--ca", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--source", default=None)
    args = p.parse_args()

    url = urlsplit(args.url)
    ctx = ssl.create_default_context(cafile=args.ca)
    lock = threading.Lock()
    totals = {"requests": 0, "ok": 0, "failed": 0, "lost": 0, "reconnects": 0}
    statuses = {}
    announced = threading.Event()
    deadline = time.monotonic() + args.seconds

    def connect():
        source = (args.source, 0) if args.source else None
        return http.client.HTTPSConnection(url.hostname, url.port or 443, context=ctx,
                                           timeout=10, source_address=source)

    errors = []

    def attempt(conn, retry=False):
        """One request on conn: the status, or None when the connection failed."""
        try:
            conn.request("GET", url.path or "/")
            res = conn.getresponse()
            res.read()
            if res.getheader("connection", "").lower() == "close":
                conn.close()  # reconnected on the next request
            return res.status
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            with lock:
                if len(errors) < 20:
                    errors.append(f"{'retry' if retry else 'first'}: {type(e).__name__}: {e}")
            return None

    def worker():
        conn = connect()
        counts = {k: 0 for k in totals}
        seen = {}
        while time.monotonic() < deadline:
            counts["requests"] += 1
            status = attempt(conn)
            if status is None or status >= 500:
                counts["failed"] += 1
                counts["reconnects"] += 1
                conn.close()
                conn = connect()
                status = attempt(conn, retry=True)
                if status is None or status >= 500:
                    counts["lost"] += 1
            if status is not None:
                seen[status] = seen.get(status, 0) + 1
                if status < 500:
                    counts["ok"] += 1
            with lock:
                if not announced.is_set():
                    totals["ok"] += counts["ok"]
                    counts["ok"] = 0
                    if totals["ok"] >= 100:
                        announced.set()
                        print("running", flush=True)
        conn.close()
        with lock:
            for k, v in counts.items():
                totals[k] += v
            for k, v in seen.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({**totals, "statuses": {str(k): v for k, v in sorted(statuses.items())},
                      "errors": errors}), flush=True)
    return 0 if totals["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
