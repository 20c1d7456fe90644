#!/usr/bin/env python3
"""The measurements of bench/run.sh: starts the servers (pinned to core 0), runs the load
generators (pinned to core 1) in interleaved rounds, and writes one JSON line per measurement.

    measure.py --dir RUNDIR --out results.jsonl [--quick] [--runtime current|multi]

RUNDIR holds cert.pem and key.pem (made by run.sh) and receives the logs. Every process this
script starts is killed when it ends, however it ends (and with PR_SET_PDEATHSIG if it is
killed outright). Nothing here touches a non-loopback address.
"""
import argparse
import select
import ctypes
import json
import os
import platform
import re
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "target"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE = "0"
CLIENT_CORE = "1"
CONNECTIONS = 50  # keep-alive and handshake runs
STREAMS = 10  # HTTP/2 streams per connection
IDLE_CONNECTIONS = 5000  # --quick: 2000
CLIENT_REQUESTS = 100000  # per client row and round (--quick: 20,000 / 30,000)
BULK_BYTES = 1 << 30
FILES_BIG_BYTES = 100 * 1000 * 1000  # the static "100 MB file" row
FILES_DISTINCT = 100  # the static "100 distinct small files" row
# Every client that can choose offers this one TLS 1.3 suite, so that every server encrypts with
# the same one (left to themselves they differ: portcullis prefers AES-256-GCM, rustls's
# default follows the client's order, h2load offers AES-128-GCM first).
TLS13_SUITE = "TLS_AES_128_GCM_SHA256"
HANDSHAKE_BATCH = 250  # h2load -c B -n B: B fresh clients, one connection and request each

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


STARTED = []  # every Popen of a server or long-running client


def kill_all():
    for proc in STARTED:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    STARTED.clear()


def spawn(cmd, log, **kw):
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_die_with_parent, **kw)
    STARTED.append(proc)
    return proc


# ---------------------------------------------------------------------------------------------
# /proc readings


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    """utime + stime of the processes (all their threads, live and exited)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / CLK_TCK


def rss_bytes(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def https_get(port, path):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                try:
                    more = tls.recv(65536)
                except (ssl.SSLError, OSError):
                    break
                if not more:
                    break
                data += more
    return data.partition(b"\r\n\r\n")[2]


# ---------------------------------------------------------------------------------------------
# servers


class Server:
    def __init__(self, name, label, run_dir, kind, runtime=None):
        self.name, self.label, self.run_dir, self.kind, self.runtime = name, label, run_dir, kind, runtime
        self.port = None
        self.proc = None

    def command(self):
        cert, key = (os.path.join(self.run_dir, f) for f in ("cert.pem", "key.pem"))
        pin = ["taskset", "-c", SERVER_CORE]
        if self.kind == "portcullis":
            return pin + [os.path.join(TARGET, "release", "portcullis-hello"), str(self.port), cert, key, self.runtime]
        if self.kind == "bare":
            return pin + [os.path.join(TARGET, "release", "bare-hello"), str(self.port), cert, key, self.runtime]
        if self.kind == "node":
            return pin + ["node", os.path.join(HERE, "node-hello.js"), str(self.port), cert, key]
        if self.kind in ("nginx", "nginx-files", "nginx-files-ofc"):
            prefix = os.path.join(self.run_dir, f"nginx-{self.name}")
            os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
            with open(os.path.join(prefix, "nginx.conf"), "w") as f:
                if self.kind == "nginx":
                    f.write(nginx_conf(self.run_dir, self.port, check=self.name.endswith("check")))
                else:
                    f.write(nginx_files_conf(self.run_dir, self.port, self.kind == "nginx-files-ofc"))
            return pin + ["nginx", "-p", prefix, "-c", "nginx.conf", "-g", "daemon off;"]
        if self.kind in ("portcullis-files", "portcullis-files-metrics"):
            # The command users run, one worker thread like nginx's one worker process; the
            # access log off, as nginx's. The second one also counts for --metrics (the cost
            # of the counters; nobody scrapes during the rows).
            metrics = ["--metrics", "127.0.0.1:0"] if self.kind.endswith("metrics") else []
            return pin + [os.path.join(TARGET, "release", "portcullis"), "serve", "--workers", "1",
                          "--access-log", "off", "--listen", f"127.0.0.1:{self.port}", "--cert", cert,
                          "--key", key] + metrics + [os.path.join(self.run_dir, "files")]
        raise ValueError(self.kind)

    def start(self):
        self.port = free_port()
        self.log_path = os.path.join(self.run_dir, f"{self.name}.log")
        log = open(self.log_path, "ab")
        offset = log.tell()  # the same log may hold an earlier instance's line
        self.proc = spawn(self.command(), log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log_path}")
            if self.kind.startswith("nginx"):
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    pass
            else:
                with open(self.log_path, "rb") as f:
                    f.seek(offset)
                    if b"listening on https://" in f.read():
                        return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start: see {self.log_path}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc in STARTED:
            STARTED.remove(self.proc)

    def pids(self):
        return descendants(self.proc.pid)

    def cpu(self):
        return cpu_seconds(self.pids())

    def rss(self):
        return rss_bytes(self.pids())

    def handshakes(self):
        """(full, resumed) so far, from /stats; None for nginx (checked by its access log)."""
        if self.kind.startswith("nginx"):
            return None
        m = re.search(rb"full (\d+) resumed (\d+)", https_get(self.port, "/stats"))
        return int(m.group(1)), int(m.group(2))

    def url(self, path="/"):
        return f"https://127.0.0.1:{self.port}{path}"


def nginx_conf(run_dir, port, check=False):
    """nginx with one worker, TLS 1.3, X25519, HTTP/2; `check` adds an access log of
    $ssl_session_reused (used only by the handshake check, never in a measured run)."""
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    major, minor, patch = map(int, re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version).groups())
    if (major, minor, patch) >= (1, 25, 1):
        listen = f"listen 127.0.0.1:{port} ssl;\n        http2 on;"
    else:  # `http2 on;` came in 1.25.1; before it, a listen parameter
        listen = f"listen 127.0.0.1:{port} ssl http2;"
    log = ("log_format reused '$ssl_session_reused';\n    access_log logs/reused.log reused;"
           if check else "access_log off;")
    return f"""
worker_processes 1;
worker_rlimit_nofile 65536;
pid nginx.pid;
error_log logs/error.log warn;
events {{ worker_connections 20000; }}
http {{
    {log}
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    sendfile off;
    ssl_protocols TLSv1.3;
    ssl_ecdh_curve X25519;
    ssl_certificate {run_dir}/cert.pem;
    ssl_certificate_key {run_dir}/key.pem;
    server {{
        {listen}
        location / {{ return 200 "hello world\\n"; }}
        location = /bulk {{ alias {run_dir}/www/bulk.bin; }}
    }}
}}
"""


def nginx_files_conf(run_dir, port, open_file_cache):
    """nginx serving the static-file folder: one worker, TLS 1.3, X25519, `sendfile off` (TLS
    leaves nothing for sendfile), no compression; `open_file_cache` off or on (valid 1 s, as
    portcullis's cache revalidates within a second)."""
    ofc = ("open_file_cache max=1000 inactive=60s;\n    open_file_cache_valid 1s;"
           if open_file_cache else "open_file_cache off;")
    return f"""
worker_processes 1;
worker_rlimit_nofile 65536;
pid nginx.pid;
error_log logs/error.log warn;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    sendfile off;
    {ofc}
    ssl_protocols TLSv1.3;
    ssl_ecdh_curve X25519;
    ssl_certificate {run_dir}/cert.pem;
    ssl_certificate_key {run_dir}/key.pem;
    server {{
        listen 127.0.0.1:{port} ssl;
        root {run_dir}/files;
    }}
}}
"""


# ---------------------------------------------------------------------------------------------
# load generators (core 1)


def run_client(cmd, timeout=300):
    """Runs a load generator on the client core; returns (stdout, wall s, client CPU s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(["taskset", "-c", CLIENT_CORE] + cmd, capture_output=True, text=True,
                         timeout=timeout, preexec_fn=_die_with_parent)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({res.returncode}): {res.stdout[-2000:]} {res.stderr[-2000:]}")
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res.stdout, wall, client_cpu


def h2load(server, n, *extra, log_file=None, path="/", uris=None):
    """h2load against `server` at `path`, or at every URI of the file `uris` in turn."""
    cmd = ["h2load", "--groups=X25519", f"--tls13-ciphers={TLS13_SUITE}", "-n", str(n), *extra]
    if log_file:
        cmd.append(f"--log-file={log_file}")
    if uris:
        with open(uris) as f:
            paths = f.read().split()
        with open(uris + f".{server.port}", "w") as f:
            f.write("\n".join(server.url(p) for p in paths) + "\n")
        cmd += ["-i", uris + f".{server.port}"]
    else:
        cmd.append(server.url(path))
    cpu0 = server.cpu()
    out, wall, client_cpu = run_client(cmd)
    cpu = server.cpu() - cpu0
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    succeeded, failed = int(m.group(4)), int(m.group(5))
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    proto = re.search(r"Application protocol: (\S+)", out)
    kx = re.search(r"Server Temp Key: (\S+)", out)
    tls = re.search(r"TLS Protocol: (\S+)", out)
    cipher = re.search(r"Cipher: (\S+)", out)
    return {
        "requests": succeeded, "failed": failed, "rps": rps,
        "cpu_us": cpu * 1e6 / max(succeeded, 1), "server_cpu_s": cpu,
        "client_cpu_s": client_cpu, "wall_s": wall,
        "alpn": proto and proto.group(1), "kx": kx and kx.group(1),
        "tls": tls and tls.group(1), "cipher": cipher and cipher.group(1),
        "cmd": " ".join(["taskset", "-c", CLIENT_CORE] + cmd),
    }


def idle_rss(server, n):
    """RSS growth of a freshly started `server` over n idle keep-alive connections (100 warm-up
    connections first), held by bench/clients.py on the client core."""
    clients = os.path.join(HERE, "clients.py")
    run_client(["python3", clients, "idle", str(server.port), "100", "0"])  # warm-up
    time.sleep(0.5)
    rss0 = server.rss()
    holder = subprocess.Popen(
        ["taskset", "-c", CLIENT_CORE, "python3", clients, "idle", str(server.port), str(n), "300"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_die_with_parent)
    STARTED.append(holder)
    try:
        if not select.select([holder.stdout], [], [], 120)[0]:
            raise RuntimeError(f"idle client against {server.name} did not open its connections")
        opened = json.loads(holder.stdout.readline() or "{}")
        time.sleep(1.0)
        rss1 = server.rss()
        holder.stdin.close()
        closed = json.loads(holder.stdout.readline() or "{}")
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        STARTED.remove(holder)
    return {"connections": opened.get("open"), "open_s": opened.get("seconds"),
            "closed_by_server": closed.get("closed_by_server"),
            "rss0": rss0, "rss1": rss1,
            "bytes_per_conn": (rss1 - rss0) / n,
            "cmd": f"taskset -c {CLIENT_CORE} python3 bench/clients.py idle PORT {n}"}


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.rounds = 1 if args.quick else 3
        self.seconds = 1.2 if args.quick else 3.0  # one keep-alive / handshake run
        self.idle = 2000 if args.quick else IDLE_CONNECTIONS
        self.out = open(args.out, "w")
        self.calibrated = {}
        d = args.dir
        rt, alt = args.runtime, ("multi" if args.runtime == "current" else "current")
        names = {"current": "current_thread runtime", "multi": "multi_thread runtime, 1 worker"}
        self.servers = [
            Server("nginx", "nginx", d, "nginx"),
            Server("portcullis", f"portcullis ({names[rt]})", d, "portcullis", rt),
            Server("portcullis-alt", f"portcullis ({names[alt]})", d, "portcullis", alt),
            Server("bare", f"bare hyper-util + tokio-rustls ({names[rt]})", d, "bare", rt),
            Server("node", "node " + subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(), d, "node"),
        ]
        self.by_name = {s.name: s for s in self.servers}
        self.file_servers = [
            Server("nginx-files", "nginx, open_file_cache off", d, "nginx-files"),
            Server("nginx-files-ofc", "nginx, open_file_cache on", d, "nginx-files-ofc"),
            Server("portcullis-files", "portcullis serve DIR --workers 1 --access-log off", d, "portcullis-files"),
            Server("portcullis-files-metrics", "the same, --metrics on", d, "portcullis-files-metrics"),
        ]

    def emit(self, record):
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def log(self, msg):
        print(msg, file=sys.stderr, flush=True)

    def servers_for(self, test):
        names = {
            "h1": ["nginx", "portcullis", "portcullis-alt", "bare", "node"],
            "h2": ["nginx", "portcullis", "portcullis-alt", "bare"],
            "full": ["nginx", "portcullis", "bare", "node"],
            "tls_full": ["nginx", "portcullis", "bare", "node"],
            "resumed": ["nginx", "portcullis", "bare", "node"],
            "bulk": ["nginx", "portcullis", "bare", "node"],
            "latency": ["nginx", "portcullis", "bare", "node"],
            "idle": ["nginx", "portcullis", "bare", "node"],
        }[test]
        return [self.by_name[n] for n in names]

    # -- the rows -----------------------------------------------------------------------------

    def h1_args(self):
        return ["--h1", "-c", str(CONNECTIONS)]

    def h2_args(self):
        return ["-c", str(CONNECTIONS), "-m", str(STREAMS)]

    def full_handshakes(self, server, n):
        """n full handshakes: h2load -c B -n B repeated (each h2load client makes one connection
        and offers no session; an h2load client that reconnects resumes its session, so
        `-c 50 -n N -H 'Connection: close'` would measure resumptions)."""
        batches = max(1, round(n / HANDSHAKE_BATCH))
        total = {"requests": 0, "failed": 0, "server_cpu_s": 0.0, "client_cpu_s": 0.0, "wall_s": 0.0, "h2load_s": 0.0}
        for _ in range(batches):
            r = h2load(server, HANDSHAKE_BATCH, "--h1", "-c", str(HANDSHAKE_BATCH))
            for k in total:
                total[k] += r[k] if k != "h2load_s" else r["requests"] / r["rps"]
            info = r
        return {**info, **total, "rps": total["requests"] / total["h2load_s"],
                "cpu_us": total["server_cpu_s"] * 1e6 / max(total["requests"], 1),
                "cmd": info["cmd"] + f"  (x{batches})"}

    def calibrate(self, test, server, args, probe):
        """Warm-up run; sizes the measured runs to about self.seconds each."""
        r = h2load(server, probe, *args)
        n = int(r["rps"] * self.seconds / 1000 + 1) * 1000
        self.calibrated[(test, server.name)] = max(n, 1000)
        self.log(f"  calibrate {test:8} {server.name:15} {r['rps']:10.0f} req/s -> n={n}")

    def row_h1(self, server, rnd):
        r = h2load(server, self.calibrated[("h1", server.name)], *self.h1_args())
        self.emit({"test": "h1", "server": server.name, "round": rnd, **r})
        return r

    def row_h2(self, server, rnd):
        r = h2load(server, self.calibrated[("h2", server.name)], *self.h2_args())
        self.emit({"test": "h2", "server": server.name, "round": rnd, **r})
        return r

    def row_full(self, server, rnd):
        before = server.handshakes()
        r = self.full_handshakes(server, self.calibrated[("full", server.name)])
        after = server.handshakes()
        if before:  # the /stats request itself is one full handshake
            r["server_full"] = after[0] - before[0] - 1
            r["server_resumed"] = after[1] - before[1]
        self.emit({"test": "full", "server": server.name, "round": rnd, **r})
        return r

    def tls_client(self, server, mode, n):
        """bench/tls-client (50 loops of one-request connections): warm-up first, then the
        server's CPU over exactly the measured connections."""
        cmd = ["taskset", "-c", CLIENT_CORE, os.path.join(TARGET, "release", "tls-client"),
               mode, str(server.port), str(n), str(CONNECTIONS)]
        before = server.handshakes()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                start_new_session=True, preexec_fn=_die_with_parent)
        STARTED.append(proc)
        try:
            if not select.select([proc.stdout], [], [], 60)[0] or proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"tls-client against {server.name} did not get ready")
            cpu0 = server.cpu()
            t0 = time.perf_counter()
            out, _ = proc.communicate("go\n", timeout=300)
            wall = time.perf_counter() - t0
            cpu = server.cpu() - cpu0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            STARTED.remove(proc)
        if proc.returncode != 0:
            raise RuntimeError(f"tls-client {mode} against {server.name} failed")
        c = json.loads(out)
        after = server.handshakes()
        r = {"connections": c["connections"], "client_full": c["full"], "client_resumed": c["resumed"],
             "close_notify": c["close_notify"], "rps": c["connections"] / c["seconds"],
             "cpu_us": cpu * 1e6 / c["connections"], "server_cpu_s": cpu, "wall_s": wall,
             "cmd": " ".join(cmd).replace(TARGET, "bench/target").replace(str(server.port), "PORT")}
        if before:  # the /stats request itself is one full handshake; so is each warm-up
            r["server_full"] = after[0] - before[0] - 1 - CONNECTIONS
            r["server_resumed"] = after[1] - before[1]
        return r

    def row_tls_full(self, server, rnd):
        r = self.tls_client(server, "full", 800 if self.quick else 3000)
        self.last_tls_full = getattr(self, "last_tls_full", {})
        self.last_tls_full[server.name] = r["cpu_us"]
        self.emit({"test": "tls-full", "server": server.name, "round": rnd, **r})
        return r

    def row_resumed(self, server, rnd):
        r = self.tls_client(server, "resumed", 1000 if self.quick else 4000)
        # Servers that issue no new ticket on a resumed connection (OpenSSL: nginx, node) make
        # every third connection of a single-use-ticket client full: take those out at the
        # full-handshake cost the same client measured just before.
        full_us = self.last_tls_full[server.name]
        raw_cpu_us = r["cpu_us"]
        r["cpu_us_all_connections"] = raw_cpu_us
        r["cpu_us"] = (r["server_cpu_s"] * 1e6 - full_us * r["client_full"]) / max(r["client_resumed"], 1)
        self.emit({"test": "resumed", "server": server.name, "round": rnd, **r})
        return r

    def row_bulk(self, server, rnd):
        cmd = ["curl", "-k", "-s", "--http1.1", "--curves", "X25519", "--tls13-ciphers", TLS13_SUITE, "-o", "/dev/null",
               "-w", "%{size_download} %{time_total} %{http_code}", server.url("/bulk")]
        cpu0 = server.cpu()
        out, wall, client_cpu = run_client(cmd)
        cpu = server.cpu() - cpu0
        size, seconds, code = out.split()
        size, seconds = int(size), float(seconds)
        if size != BULK_BYTES or code != "200":
            raise RuntimeError(f"bulk from {server.name}: {size} bytes, status {code}")
        r = {"bytes": size, "mb_s": size / seconds / 1e6, "cpu_s_per_gb": cpu / (size / 1e9),
             "server_cpu_s": cpu, "client_cpu_s": client_cpu, "wall_s": wall,
             "cmd": " ".join(["taskset", "-c", CLIENT_CORE] + cmd)}
        self.emit({"test": "bulk", "server": server.name, "round": rnd, **r})
        return r

    def row_latency(self, server, rnd):
        rate = self.args.rate
        seconds = 1.5 if self.quick else 5
        log_file = os.path.join(self.args.dir, "latency.log")
        if os.path.exists(log_file):
            os.remove(log_file)
        args = ["--h1", "-c", str(CONNECTIONS), f"--rps={rate / CONNECTIONS:g}"]
        r = h2load(server, int(rate * seconds), *args, log_file=log_file)
        with open(log_file) as f:
            rows = [tuple(map(int, line.split("\t")[:3])) for line in f if line.strip()]
        # Leave out the first half second: its requests waited for the 50 handshakes.
        t_start = min(r[0] for r in rows)
        times = sorted(r[2] for r in rows if r[0] >= t_start + 500_000)
        q = statistics.quantiles(times, n=100, method="inclusive")
        r.update({"offered_rps": rate, "p50_ms": q[49] / 1000, "p99_ms": q[98] / 1000,
                  "samples": len(times),
                  "server_core_busy": r["server_cpu_s"] / r["wall_s"]})
        self.emit({"test": "latency", "server": server.name, "round": rnd, **r})
        return r

    def row_idle(self, server, rnd):
        """Fresh server; RSS growth over IDLE_CONNECTIONS idle keep-alive connections."""
        fresh = Server(server.name + "-idle", server.label, server.run_dir, server.kind, server.runtime).start()
        try:
            r = idle_rss(fresh, self.idle)
        finally:
            fresh.stop()
        self.emit({"test": "idle", "server": server.name, "round": rnd, **r})
        return r

    def row_client(self, rnd):
        nginx = self.by_name["nginx"]
        n = 20000 if self.quick else CLIENT_REQUESTS
        cmd = ["node", os.path.join(HERE, "node-client.js"), nginx.url(), str(n), str(CONNECTIONS), TLS13_SUITE]
        out, wall, client_cpu = run_client(cmd)
        r = json.loads(out)
        r["cmd"] = f"taskset -c {CLIENT_CORE} node bench/node-client.js https://127.0.0.1:PORT/ {n} {CONNECTIONS} {TLS13_SUITE}"
        self.emit({"test": "client", "server": "node-agent", "round": rnd, **r})
        return r

    def row_client_portcullis(self, rnd, baseline=False):
        """portcullis::client::Agent (keep-alive, current_thread runtime) against the same nginx,
        same concurrency, the same number of requests as the Node row (its CPU from its own
        /proc/self/stat, after a warm-up, like node-client.js; its RSS after the run). With
        `baseline`, the same client built from an earlier commit (bench/run.sh --baseline REV)."""
        nginx = self.by_name["nginx"]
        n = 30000 if self.quick else CLIENT_REQUESTS
        ca = os.path.join(self.args.dir, "cert.pem")
        binary = self.args.baseline_agent if baseline else os.path.join(TARGET, "release", "portcullis-agent")
        cmd = [binary, nginx.url(), ca, str(n), str(CONNECTIONS), TLS13_SUITE]
        out, wall, client_cpu = run_client(cmd)
        r = json.loads(out)
        shown = "bench/target-baseline/release/portcullis-agent" if baseline else "bench/target/release/portcullis-agent"
        r["cmd"] = (f"taskset -c {CLIENT_CORE} {shown} https://127.0.0.1:PORT/ "
                    f"DIR/cert.pem {n} {CONNECTIONS} {TLS13_SUITE}")
        name = "portcullis-agent-baseline" if baseline else "portcullis-agent"
        if baseline:
            r["baseline_rev"] = self.args.baseline_rev
        self.emit({"test": "client", "server": name, "round": rnd, **r})
        return r

    # -- static files ---------------------------------------------------------------------------

    FILE_ROWS = {
        "files_small": "/small.txt",  # 12 bytes
        "files_16k": "/16k.bin",
        "files_100": None,  # FILES_DISTINCT small files in turn
    }

    def row_files(self, test, server, rnd):
        path = self.FILE_ROWS[test]
        uris = os.path.join(self.args.dir, "files-uris.txt") if path is None else None
        r = h2load(server, self.calibrated[(test, server.name)], *self.h1_args(), path=path or "/", uris=uris)
        if r["failed"] or r["requests"] == 0:
            raise RuntimeError(f"{test} against {server.name}: {r['failed']} failed")
        self.emit({"test": test, "server": server.name, "round": rnd, **r})
        return r

    def row_files_big(self, server, rnd):
        cmd = ["curl", "-k", "-s", "--http1.1", "--curves", "X25519", "--tls13-ciphers", TLS13_SUITE, "-o", "/dev/null",
               "-w", "%{size_download} %{time_total} %{http_code}", server.url("/big.bin")]
        cpu0 = server.cpu()
        out, wall, client_cpu = run_client(cmd)
        cpu = server.cpu() - cpu0
        size, seconds, code = out.split()
        size, seconds = int(size), float(seconds)
        if size != FILES_BIG_BYTES or code != "200":
            raise RuntimeError(f"big file from {server.name}: {size} bytes, status {code}")
        r = {"bytes": size, "mb_s": size / seconds / 1e6, "cpu_s_per_gb": cpu / (size / 1e9),
             "server_cpu_s": cpu, "client_cpu_s": client_cpu, "wall_s": wall,
             "cmd": " ".join(["taskset", "-c", CLIENT_CORE] + cmd)}
        self.emit({"test": "files_big", "server": server.name, "round": rnd, **r})
        return r

    def files(self, t0):
        """The static-file rows: each server serves the same folder (small files, one 100 MB
        file), started after the other rows, interleaved by round like them."""
        for s in self.file_servers:
            s.start()
            self.log(f"started {s.name} on {s.port} (pid {s.proc.pid})")
        try:
            probe = 4000 if self.quick else 20000
            for test in self.FILE_ROWS:
                for s in self.file_servers:
                    path = self.FILE_ROWS[test]
                    uris = os.path.join(self.args.dir, "files-uris.txt") if path is None else None
                    r = h2load(s, probe, *self.h1_args(), path=path or "/", uris=uris)
                    n = int(r["rps"] * self.seconds / 1000 + 1) * 1000
                    self.calibrated[(test, s.name)] = max(n, 1000)
                    self.log(f"  calibrate {test:10} {s.name:16} {r['rps']:10.0f} req/s -> n={n}")
            for rnd in range(1, self.rounds + 1):
                self.log(f"files round {rnd}/{self.rounds} ({time.time() - t0:.0f} s)")
                for test in self.FILE_ROWS:
                    for s in self.file_servers:
                        r = self.row_files(test, s, rnd)
                        self.log(f"  {test:10} {s.name:16} " + summary("h1", r))
                for s in self.file_servers:
                    r = self.row_files_big(s, rnd)
                    self.log(f"  files_big  {s.name:16} " + summary("bulk", r))
        finally:
            for s in self.file_servers:
                s.stop()

    # -- checks -------------------------------------------------------------------------------

    def checks(self):
        clients = os.path.join(HERE, "clients.py")
        for s in self.servers:
            out, _, _ = run_client(["python3", clients, "close-notify", str(s.port)])
            self.emit({"test": "check-close", "server": s.name, **json.loads(out)})
        # nginx: an instance with an access log of $ssl_session_reused, then the same
        # handshake loads as the measured rows, counted from the log.
        check = Server("nginx-check", "nginx", self.args.dir, "nginx").start()
        try:
            self.full_handshakes(check, 2 * HANDSHAKE_BATCH)
            client = self.tls_client(check, "resumed", 300)
            time.sleep(0.3)
            with open(os.path.join(self.args.dir, "nginx-nginx-check", "logs", "reused.log")) as f:
                marks = f.read().split()
            self.emit({"test": "check-nginx-handshakes", "server": "nginx",
                       "h2load_connections": 2 * HANDSHAKE_BATCH,
                       "tls_client_connections": 300 + CONNECTIONS,
                       "full": marks.count("."), "resumed": marks.count("r"),
                       "client_full": client["client_full"], "client_resumed": client["client_resumed"]})
        finally:
            check.stop()

    # -- the run ------------------------------------------------------------------------------

    def run(self):
        t0 = time.time()
        for s in self.servers:
            s.start()
            self.log(f"started {s.name} on {s.port} (pid {s.proc.pid})")
        self.emit(meta(self))
        self.checks()
        probe = 4000 if self.quick else 20000
        for s in self.servers_for("h1"):
            self.calibrate("h1", s, self.h1_args(), probe)
        for s in self.servers_for("h2"):
            self.calibrate("h2", s, self.h2_args(), probe)
        for s in self.servers_for("full"):
            r = self.full_handshakes(s, HANDSHAKE_BATCH)
            n = max(HANDSHAKE_BATCH, round(r["rps"] * self.seconds / HANDSHAKE_BATCH) * HANDSHAKE_BATCH)
            self.calibrated[("full", s.name)] = n
            self.log(f"  calibrate full     {s.name:15} {r['rps']:10.0f} conn/s -> n={n}")
        for rnd in range(1, self.rounds + 1):
            self.log(f"round {rnd}/{self.rounds} ({time.time() - t0:.0f} s)")
            for test in ["h1", "h2", "full", "tls_full", "resumed", "bulk", "latency"]:
                for s in self.servers_for(test):
                    r = getattr(self, f"row_{test}")(s, rnd)
                    self.log(f"  {test:8} {s.name:15} " + summary(test, r))
            r = self.row_client(rnd)
            self.log(f"  client   node-agent      {r['rps']:.0f} req/s, {r['client_cpu_us_per_req']:.1f} us/req")
            r = self.row_client_portcullis(rnd)
            self.log(f"  client   portcullis-agent {r['rps']:.0f} req/s, {r['client_cpu_us_per_req']:.1f} us/req, "
                     f"RSS {r.get('rss_bytes', 0) / 1e6:.1f} MB, {r.get('alive_tasks', '?')} tasks")
            if self.args.baseline_agent:
                r = self.row_client_portcullis(rnd, baseline=True)
                self.log(f"  client   portcullis-agent@{self.args.baseline_rev} {r['rps']:.0f} req/s, "
                         f"{r['client_cpu_us_per_req']:.1f} us/req, RSS {r.get('rss_bytes', 0) / 1e6:.1f} MB")
            for s in self.servers_for("idle"):
                r = self.row_idle(s, rnd)
                self.log(f"  idle     {s.name:15} " + summary("idle", r))
        self.files(t0)
        self.emit({"test": "end", "seconds": time.time() - t0})
        self.log(f"done in {time.time() - t0:.0f} s")


def summary(test, r):
    if test in ("tls_full", "resumed"):
        return (f"{r['rps']:10.0f} conn/s {r['cpu_us']:8.1f} us/conn, client saw {r['client_full']} full "
                f"{r['client_resumed']} resumed, server {r.get('server_full')} full {r.get('server_resumed')} resumed")
    if test in ("h1", "h2", "full"):
        return f"{r['rps']:10.0f} req/s {r['cpu_us']:8.1f} us/req (client core {r['client_cpu_s'] / r['wall_s']:.0%})"
    if test == "bulk":
        return f"{r['mb_s']:8.0f} MB/s {r['cpu_s_per_gb']:.3f} s/GB (client core {r['client_cpu_s'] / r['wall_s']:.0%})"
    if test == "latency":
        return f"p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms at {r['offered_rps']} req/s ({r['rps']:.0f} achieved)"
    if test == "idle":
        return f"{r['bytes_per_conn']:8.0f} B/conn ({r['connections']} open, {r['closed_by_server']} closed by server)"
    return ""


def version_of(cmd, pattern=r"(\S+)"):
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (res.stdout + res.stderr).strip()
    m = re.search(pattern, text)
    return m.group(1) if m else text.splitlines()[0] if text else None


def server_command(server, run_dir):
    if server.kind.startswith("nginx"):
        cmd = ["taskset", "-c", SERVER_CORE, "nginx", "-p", "DIR/nginx", "-c", "nginx.conf", "-g", "'daemon off;'"]
    else:
        cmd = [("PORT" if a == str(server.port) else a) for a in server.command()]
    return " ".join(cmd).replace(run_dir, "DIR").replace(HERE, "bench").replace(TARGET, "bench/target")


def meta(bench):
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "test": "meta",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if bench.quick else "full",
        "rounds": bench.rounds,
        "cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "versions": {
            "rustc": version_of(["rustc", "--version"], r"rustc (\S+)"),
            "nginx": version_of(["nginx", "-v"], r"nginx/(\S+)"),
            "node": version_of(["node", "--version"], r"v(\S+)"),
            "openssl": version_of(["openssl", "version"], r"OpenSSL (\S+)"),
            "h2load": version_of(["h2load", "--version"], r"nghttp2/(\S+)"),
            "wrk": version_of(["wrk", "-v"], r"wrk (\S+)"),
            "curl": version_of(["curl", "--version"], r"curl (\S+)"),
            "python": platform.python_version(),
        },
        "servers": {s.name: s.label for s in bench.servers + bench.file_servers},
        "server_commands": {s.name: server_command(s, bench.args.dir)
                            for s in bench.servers + bench.file_servers},
        "rate": bench.args.rate,
        "idle_connections": bench.idle,
        "connections": CONNECTIONS, "streams": STREAMS, "tls13_suite": TLS13_SUITE,
        "handshake_batch": HANDSHAKE_BATCH,
        "nginx_conf": nginx_conf("DIR", "PORT"),
        "nginx_files_conf": nginx_files_conf("DIR", "PORT", True),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--runtime", default="current", choices=["current", "multi"])
    p.add_argument("--rate", type=int, default=5000, help="offered req/s of the latency row")
    p.add_argument("--baseline-agent", default=None, help="portcullis-agent built from an earlier commit")
    p.add_argument("--baseline-rev", default=None, help="that commit")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        Bench(args).run()
    finally:
        kill_all()


if __name__ == "__main__":
    main()
