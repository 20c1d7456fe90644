#!/usr/bin/env python3
"""A/B of server builds, for profiling work (bench/PROFILE.md): the same rows as bench/run.sh,
for any binaries that take `PORT CERT KEY [ARGS]` and print `listening on https://...`, pinned
and interleaved the same way, medians printed. Nothing is written to RESULTS.md.

    bench/ab.py NAME=BINARY[:ARG...] ... [--rows h1,h2,full,idle,bulk] [--rounds 3]

Example, the allocators of PROFILE.md:
    cargo build --release --manifest-path bench/portcullis-hello/Cargo.toml --features jemalloc
    cp bench/target/release/portcullis-hello /tmp/ph-jemalloc   # (likewise for mimalloc, none)
    bench/ab.py glibc=/tmp/ph-glibc jemalloc=/tmp/ph-jemalloc mimalloc=/tmp/ph-mimalloc

Needs what run.sh installs (h2load, curl, taskset); loopback only; every process it starts ends
with it.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure as M  # noqa: E402


class Build(M.Server):
    def __init__(self, name, binary, args, run_dir):
        super().__init__(name, name, run_dir, "build")
        self.binary, self.args = binary, args

    def command(self):
        cert, key = (os.path.join(self.run_dir, f) for f in ("cert.pem", "key.pem"))
        return ["taskset", "-c", M.SERVER_CORE, self.binary, str(self.port), cert, key] + self.args


def idle(server, n):
    """RSS growth per connection over n idle keep-alive connections, on a fresh server."""
    fresh = Build(server.name + "-idle", server.binary, server.args, server.run_dir).start()
    try:
        return M.idle_rss(fresh, n)["bytes_per_conn"]
    finally:
        fresh.stop()


def bulk(server):
    cmd = ["curl", "-k", "-s", "--http1.1", "--curves", "X25519", "--tls13-ciphers", M.TLS13_SUITE,
           "-o", "/dev/null", server.url("/bulk")]
    cpu0 = server.cpu()
    M.run_client(cmd)
    return (server.cpu() - cpu0) / (M.BULK_BYTES / 1e9)


def full(server, batches=4):
    cpu, done = 0.0, 0
    for _ in range(batches):
        r = M.h2load(server, M.HANDSHAKE_BATCH, "--h1", "-c", str(M.HANDSHAKE_BATCH))
        cpu += r["server_cpu_s"]
        done += r["requests"]
    return cpu * 1e6 / max(done, 1)


ROWS = {
    "h1": ("server CPU µs per keep-alive HTTP/1.1 request", lambda s, n, a: M.h2load(s, n, "--h1", "-c", "50")["cpu_us"]),
    "h2": ("server CPU µs per HTTP/2 request", lambda s, n, a: M.h2load(s, 2 * n, "-c", "50", "-m", "10")["cpu_us"]),
    "full": ("server CPU µs per full handshake + request", lambda s, n, a: full(s)),
    "idle": ("bytes of RSS per idle connection", lambda s, n, a: idle(s, a.idle)),
    "bulk": ("server CPU s per GB", lambda s, n, a: bulk(s)),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("builds", nargs="+", help="NAME=BINARY[:ARG...]")
    p.add_argument("--rows", default="h1,h2,full,idle,bulk")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=60000, help="per keep-alive run (HTTP/2: twice)")
    p.add_argument("--idle", type=int, default=2000, help="connections of the idle row")
    a = p.parse_args()
    rows = a.rows.split(",")
    with tempfile.TemporaryDirectory(prefix="portcullis-ab.") as d:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-sha256", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem")],
                       check=True, capture_output=True)
        builds = []
        for spec in a.builds:
            name, _, rest = spec.partition("=")
            binary, *args = rest.split(":")
            builds.append(Build(name, os.path.abspath(binary), args, d))
        results = {}
        try:
            for b in builds:
                b.start()
                M.h2load(b, 5000, "--h1", "-c", "50")  # warm-up
            for rnd in range(1, a.rounds + 1):
                for row in rows:
                    for b in builds:
                        v = ROWS[row][1](b, a.requests, a)
                        results.setdefault((row, b.name), []).append(v)
                        print(f"round {rnd} {row:5} {b.name:12} {v:12.3f}", file=sys.stderr, flush=True)
        finally:
            for b in builds:
                b.stop()
            M.kill_all()
    first = builds[0].name
    print(f"medians of {a.rounds} rounds (ratio to {first})")
    for row in rows:
        base = statistics.median(results[(row, first)])
        cells = [f"{b.name} {statistics.median(results[(row, b.name)]):.3f} ({statistics.median(results[(row, b.name)]) / base:.2f}x)"
                 for b in builds]
        print(f"{ROWS[row][0]}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
