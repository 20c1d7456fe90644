#!/usr/bin/env python3
"""Turns the JSON lines of bench/measure.py into bench/RESULTS.md and prints the table.

    report.py results.jsonl RESULTS.md [--readme README.md]

With --readme, the table also replaces what stands between the `<!-- bench:start -->` and
`<!-- bench:end -->` markers of the README's `## Benchmarks` section (nothing else is touched).
"""
import argparse
import json
import re
import statistics
import sys
from collections import defaultdict

COLUMNS = ["nginx", "portcullis", "bare", "node", "portcullis-alt"]
FILE_COLUMNS = ["nginx-files", "nginx-files-ofc", "portcullis-files", "portcullis-files-metrics"]

# The static-file rows: (test, metric, label, unit, format)
FILE_ROWS = [
    ("files_small", "cpu_us", "12-byte file, server CPU per keep-alive request", "µs", "{:.1f}"),
    ("files_small", "rps", "12-byte file, requests/s (h2load --h1, 50 conns)", "req/s", "{:,.0f}"),
    ("files_small", "capacity", "12-byte file, requests/s per busy server core", "req/s", "{:,.0f}"),
    ("files_16k", "cpu_us", "16 KiB file, server CPU per keep-alive request", "µs", "{:.1f}"),
    ("files_16k", "capacity", "16 KiB file, requests/s per busy server core", "req/s", "{:,.0f}"),
    ("files_100", "cpu_us", "100 distinct small files in turn, server CPU per request", "µs", "{:.1f}"),
    ("files_100", "capacity", "100 distinct small files, requests/s per busy server core", "req/s", "{:,.0f}"),
    ("files_big", "mb_s", "100 MB file over one connection (curl)", "MB/s", "{:,.0f}"),
    ("files_big", "cpu_s_per_gb", "100 MB file, server CPU per GB", "s/GB", "{:.3f}"),
    ("files_big", "mb_s_core", "100 MB file, MB/s per busy server core", "MB/s", "{:,.0f}"),
]

# (test, metric, label, unit, higher is better, format)
ROWS = [
    ("h1", "rps", "HTTP/1.1 keep-alive, requests/s (h2load, 50 conns)", "req/s", True, "{:,.0f}"),
    ("h1", "cpu_us", "HTTP/1.1 keep-alive, server CPU per request", "µs", False, "{:.1f}"),
    ("h1", "capacity", "HTTP/1.1 keep-alive, requests/s per busy server core (10⁶ ÷ CPU µs)", "req/s", True, "{:,.0f}"),
    ("h2", "rps", "HTTP/2, requests/s (h2load, 50 conns × 10 streams)", "req/s", True, "{:,.0f}"),
    ("h2", "cpu_us", "HTTP/2, server CPU per request", "µs", False, "{:.1f}"),
    ("h2", "capacity", "HTTP/2, requests/s per busy server core", "req/s", True, "{:,.0f}"),
    ("full", "rps", "Full handshakes, h2load fresh clients: connections/s", "conn/s", True, "{:,.0f}"),
    ("full", "cpu_us", "Full handshake + 1 request (h2load), server CPU", "µs", False, "{:.0f}"),
    ("tls-full", "cpu_us", "Full handshake + 1 request (tls-client), server CPU", "µs", False, "{:.0f}"),
    ("resumed", "cpu_us", "Resumed handshake + 1 request (tls-client), server CPU", "µs", False, "{:.0f}"),
    ("bulk", "mb_s", "Bulk 1 GiB over one connection", "MB/s", True, "{:,.0f}"),
    ("bulk", "cpu_s_per_gb", "Bulk, server CPU per GB", "s/GB", False, "{:.3f}"),
    ("bulk", "gb_s_core", "Bulk, GB/s per busy server core (1 ÷ CPU s/GB)", "GB/s", True, "{:.2f}"),
    ("idle", "bytes_per_conn", "Memory per idle TLS keep-alive connection", "bytes", False, "{:,.0f}"),
    ("latency", "p50_ms", "Latency p50 at a fixed {rate:,} req/s", "ms", False, "{:.2f}"),
    ("latency", "p99_ms", "Latency p99 at a fixed {rate:,} req/s", "ms", False, "{:.2f}"),
]


def load(path):
    meta, checks, data = {}, [], defaultdict(list)
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            t = r["test"]
            if t == "meta":
                meta = r
            elif t.startswith("check"):
                checks.append(r)
            elif t != "end":
                if t in ("h1", "h2", "files_small", "files_16k", "files_100") and r.get("cpu_us"):
                    r["capacity"] = 1e6 / r["cpu_us"]
                if t == "bulk" and r.get("cpu_s_per_gb"):
                    r["gb_s_core"] = 1 / r["cpu_s_per_gb"]
                if t == "files_big" and r.get("cpu_s_per_gb"):
                    r["mb_s_core"] = 1000 / r["cpu_s_per_gb"]
                data[(t, r["server"])].append(r)
            else:
                meta["seconds"] = r["seconds"]
    return meta, checks, data


def median(data, test, server, metric):
    values = [r[metric] for r in data.get((test, server), []) if r.get(metric) is not None]
    return statistics.median(values) if values else None


def cell(value, fmt, ref=None):
    if value is None:
        return "—"
    text = fmt.format(value)
    if ref:
        text += f" ({value / ref:.2f}×)"
    return text


def bare_delta(p, b, higher):
    """How much worse (positive %) portcullis is than bare on this row."""
    if p is None or b is None or b == 0:
        return None
    return (b / p - 1) * 100 if higher else (p / b - 1) * 100


def table(meta, data):
    servers = meta.get("servers", {})
    rate = meta.get("rate", 0)
    head = ["", "unit"] + [servers.get(c, c) for c in COLUMNS] + ["portcullis vs bare"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for test, metric, label, unit, higher, fmt in ROWS:
        ref = median(data, test, "nginx", metric)
        cells = []
        for c in COLUMNS:
            v = median(data, test, c, metric)
            cells.append(cell(v, fmt, ref if c != "nginx" else None))
        d = bare_delta(median(data, test, "portcullis", metric), median(data, test, "bare", metric), higher)
        verdict = "—" if d is None else (f"{d:+.1f}% worse" if d > 0 else f"{-d:.1f}% better")
        lines.append("| " + " | ".join([label.format(rate=rate), unit] + cells + [verdict]) + " |")
    node_rps = median(data, "client", "node-agent", "rps")
    node_cpu = median(data, "client", "node-agent", "client_cpu_us_per_req")
    pc_rps = median(data, "client", "portcullis-agent", "rps")
    pc_cpu = median(data, "client", "portcullis-agent", "client_cpu_us_per_req")
    lines.append("| Client: keep-alive agent against nginx, requests/s | req/s | (server) | "
                 f"{cell(pc_rps, '{:,.0f}')} (Agent) | — | "
                 f"{cell(node_rps, '{:,.0f}')} (https.Agent) | — | — |")
    lines.append("| Client: keep-alive agent, client CPU per request | µs | (server) | "
                 f"{cell(pc_cpu, '{:.1f}')} | — | "
                 f"{cell(node_cpu, '{:.1f}')} | — | — |")
    pc_rss = median(data, "client", "portcullis-agent", "rss_bytes")
    node_rss = median(data, "client", "node-agent", "rss_bytes")
    if pc_rss is not None or node_rss is not None:
        n = (data.get(("client", "portcullis-agent")) or [{}])[0].get("requests")
        mb = lambda v: None if v is None else v / 1e6
        lines.append(f"| Client: RSS after {n or '?':,} requests (+ warm-up) | MB | (server) | "
                     f"{cell(mb(pc_rss), '{:.1f}')} | — | {cell(mb(node_rss), '{:.1f}')} | — | — |")
    return "\n".join(lines)


def client_baseline_table(data):
    """The Agent against the same Agent built from an earlier commit, when measured."""
    rs = data.get(("client", "portcullis-agent-baseline"))
    if not rs:
        return ""
    rev = rs[0].get("baseline_rev", "baseline")
    rows = [("requests/s", "rps", "req/s", "{:,.0f}", 1.0),
            ("client CPU per request", "client_cpu_us_per_req", "µs", "{:.1f}", 1.0),
            ("RSS after the run", "rss_bytes", "MB", "{:.1f}", 1e-6),
            ("live tasks after the run", "alive_tasks", "", "{:,.0f}", 1.0)]
    lines = [f"portcullis::Agent against itself at {rev} (same nginx, same run, medians):", "",
             f"|  | unit | Agent at {rev} | Agent now |", "|---|---|---|---|"]
    for label, metric, unit, fmt, scale in rows:
        old = median(data, "client", "portcullis-agent-baseline", metric)
        new = median(data, "client", "portcullis-agent", metric)
        show = lambda v: "—" if v is None else fmt.format(v * scale)
        lines.append(f"| {label} | {unit} | {show(old)} | {show(new)} |")
    return "\n".join(lines)


def files_table(meta, data):
    servers = meta.get("servers", {})
    head = ["", "unit"] + [servers.get(c, c) for c in FILE_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for test, metric, label, unit, fmt in FILE_ROWS:
        ref = median(data, test, "nginx-files", metric)
        cells = [cell(median(data, test, c, metric), fmt, ref if c != "nginx-files" else None) for c in FILE_COLUMNS]
        lines.append("| " + " | ".join([label, unit] + cells) + " |")
    return "\n".join(lines)


def targets(meta, data):
    def m(test, server, metric):
        return median(data, test, server, metric)

    rows = []

    def check(name, value, limit, ok_if_le, unit=""):
        if value is None:
            rows.append(f"| {name} | not measured | — |")
            return
        met = value <= limit if ok_if_le else value >= limit
        rows.append(f"| {name} | {value:.2f}{unit} (target {'≤' if ok_if_le else '≥'} {limit}{unit}) | {'met' if met else '**not met**'} |")

    def ratio(a, b):
        return a / b if a is not None and b else None

    check("Keep-alive server CPU per request, portcullis ÷ nginx (HTTP/1.1)",
          ratio(m("h1", "portcullis", "cpu_us"), m("h1", "nginx", "cpu_us")), 0.6, True, "×")
    check("Keep-alive requests/s, portcullis ÷ nginx (HTTP/1.1, as measured: the client's core is the limit)",
          ratio(m("h1", "portcullis", "rps"), m("h1", "nginx", "rps")), 1.3, False, "×")
    check("Keep-alive requests/s per busy server core, portcullis ÷ nginx (HTTP/1.1)",
          ratio(m("h1", "portcullis", "capacity"), m("h1", "nginx", "capacity")), 1.3, False, "×")
    check("Keep-alive requests/s, portcullis ÷ node (HTTP/1.1, as measured)",
          ratio(m("h1", "portcullis", "rps"), m("h1", "node", "rps")), 2.5, False, "×")
    check("Keep-alive requests/s per busy server core, portcullis ÷ node (HTTP/1.1)",
          ratio(m("h1", "portcullis", "capacity"), m("h1", "node", "capacity")), 2.5, False, "×")
    check("CPU per full handshake, portcullis ÷ nginx (h2load row)",
          ratio(m("full", "portcullis", "cpu_us"), m("full", "nginx", "cpu_us")), 0.35, True, "×")
    check("CPU per full handshake, portcullis ÷ nginx (tls-client row)",
          ratio(m("tls-full", "portcullis", "cpu_us"), m("tls-full", "nginx", "cpu_us")), 0.35, True, "×")
    idle = m("idle", "portcullis", "bytes_per_conn")
    check("Memory per idle TLS connection (kB = 1000 bytes)", idle / 1000 if idle is not None else None, 10, True, " kB")
    worst, worst_row = None, None
    for test, metric, label, unit, higher, fmt in ROWS:
        d = bare_delta(m(test, "portcullis", metric), m(test, "bare", metric), higher)
        if d is not None and (worst is None or d > worst):
            worst, worst_row = d, label.format(rate=meta.get("rate", 0))
    if worst is not None:
        rows.append(f"| portcullis never worse than bare by more than 5% on any row | worst: {worst:+.1f}% ({worst_row}) | {'met' if worst <= 5 else '**not met**'} |")
    bulk = m("bulk", "portcullis", "mb_s")
    check("Bulk throughput on one core (as measured: curl's core is the limit)", bulk / 1000 if bulk is not None else None, 2, False, " GB/s")
    check("Bulk throughput per busy server core", m("bulk", "portcullis", "gb_s_core"), 2, False, " GB/s")
    check("Client requests/s ≥ 2× Node's keep-alive Agent (portcullis::Agent ÷ https.Agent, against nginx)",
          ratio(m("client", "portcullis-agent", "rps"), m("client", "node-agent", "rps")), 2, False, "×")
    # Static files: against nginx as installed (open_file_cache off) and as tuned (on).
    for column, config in (("nginx-files", "nginx's default, open_file_cache off"),
                           ("nginx-files-ofc", "nginx with open_file_cache")):
        for test, what in (("files_small", "a 12-byte file"), ("files_16k", "a 16 KiB file")):
            check(f"Static files: server CPU per keep-alive request for {what}, portcullis serve ÷ {config}",
                  ratio(m(test, "portcullis-files", "cpu_us"), m(test, column, "cpu_us")), 0.6, True, "×")
        check(f"Static files: a 100 MB file, MB/s per busy server core, portcullis serve ÷ {config}",
              ratio(m("files_big", "portcullis-files", "mb_s_core"), m("files_big", column, "mb_s_core")), 1.5, False, "×")
        check(f"Static files: 100 distinct small files, requests/s per busy server core, portcullis serve ÷ {config}",
              ratio(m("files_100", "portcullis-files", "capacity"), m("files_100", column, "capacity")), 1.0, False, "×")
    # The counters behind --metrics: at most 2% more CPU per request than without.
    for test, what in (("files_small", "a 12-byte file"), ("files_16k", "a 16 KiB file"),
                       ("files_100", "100 distinct small files")):
        check(f"--metrics on: server CPU per keep-alive request for {what}, with ÷ without",
              ratio(m(test, "portcullis-files-metrics", "cpu_us"), m(test, "portcullis-files", "cpu_us")),
              1.02, True, "×")
    return "| target | measured (medians, same run) | |\n|---|---|---|\n" + "\n".join(rows)


def verification(meta, checks, data):
    out = []
    for server in COLUMNS:
        rs = data.get(("full", server), [])
        if rs and rs[0].get("server_full") is not None:
            out.append(f"- Full-handshake row (h2load), {server}: {sum(r['requests'] for r in rs):,} requests; the server "
                       f"counted {sum(r['server_full'] for r in rs):,} full and {sum(r['server_resumed'] for r in rs):,} resumed handshakes.")
    for test, what in (("tls-full", "full"), ("resumed", "resumed")):
        for server in COLUMNS:
            rs = data.get((test, server), [])
            if not rs:
                continue
            line = (f"- {what.capitalize()}-handshake row (tls-client), {server}: {sum(r['connections'] for r in rs):,} connections; "
                    f"rustls (client) saw {sum(r['client_full'] for r in rs):,} full and {sum(r['client_resumed'] for r in rs):,} resumed")
            if rs[0].get("server_full") is not None:
                line += (f"; the server counted {sum(r['server_full'] for r in rs):,} full and "
                         f"{sum(r['server_resumed'] for r in rs):,} resumed")
            line += f"; {sum(r['close_notify'] for r in rs):,} closes carried close_notify."
            out.append(line)
    for c in checks:
        if c["test"] == "check-nginx-handshakes":
            out.append(f"- nginx, a separate instance logging `$ssl_session_reused` under the same loads: "
                       f"{c['h2load_connections']} h2load fresh-client connections and {c['tls_client_connections']} tls-client "
                       f"resuming connections (rustls saw {c['client_full']} full, {c['client_resumed']} resumed after the "
                       f"warm-up) → the log shows {c['full']} full and {c['resumed']} resumed handshakes.")
    out.append("- The resumed row takes out the connections that could not resume at the full-handshake cost "
               "of the tls-client row of the same round: node sends no new ticket on a resumed connection (nginx does), "
               "so a client with single-use tickets (rustls, browsers) resumes only two connections in three. "
               "Raw CPU ÷ all connections is in results.jsonl (`cpu_us_all_connections`).")
    closes = [f"{c['server']}: {c['close']}" for c in checks if c["test"] == "check-close"]
    if closes:
        out.append("- How each server ends a `Connection: close` response (Python `ssl`, `suppress_ragged_eofs=False`): "
                   + "; ".join(closes) + ".")
    kx = sorted({f"{s}: {r.get('tls')} {r.get('cipher')} {r.get('kx')}" for (t, s), rs in data.items() for r in rs if r.get("kx")})
    out.append("- TLS parameters h2load reported: " + "; ".join(kx) + ".")
    alpn = sorted({f"{t} {s}: {r.get('alpn')}" for (t, s), rs in data.items() for r in rs if r.get("alpn") and t in ("h1", "h2")})
    out.append("- ALPN: " + "; ".join(alpn) + ".")
    failed = sum(r.get("failed", 0) for rs in data.values() for r in rs)
    out.append(f"- Failed requests across all h2load runs: {failed}.")
    closed = [f"{s}: {r['closed_by_server']}" for (t, s), rs in data.items() if t == "idle" for r in rs if r.get("closed_by_server")]
    out.append("- Idle connections closed by a server during the memory measurement: " + (", ".join(closed) if closed else "none") + ".")
    busy = []
    for (t, s), rs in sorted(data.items()):
        for r in rs:
            if r.get("client_cpu_s") and r.get("wall_s") and r["client_cpu_s"] / r["wall_s"] > 0.9:
                busy.append(f"{t}/{s}")
    out.append("- Runs whose load generator kept its core over 90% busy (their requests/s is the client's limit; the "
               "CPU-per-request figures are not affected): " + (", ".join(sorted(set(busy))) if busy else "none") + ".")
    return "\n".join(out)


def rounds_table(data):
    lines = ["| row | server | each round |", "|---|---|---|"]
    for test, metric, label, unit, higher, fmt in ROWS:
        for server in COLUMNS:
            rs = data.get((test, server))
            if rs:
                lines.append(f"| {test} {metric} | {server} | " + ", ".join(fmt.format(r[metric]) for r in rs) + " |")
    for test, metric, label, unit, fmt in FILE_ROWS:
        for server in FILE_COLUMNS:
            rs = data.get((test, server))
            if rs:
                lines.append(f"| {test} {metric} | {server} | " + ", ".join(fmt.format(r[metric]) for r in rs) + " |")
    for agent in ("portcullis-agent", "portcullis-agent-baseline", "node-agent"):
        rs = data.get(("client", agent))
        if rs:
            lines.append(f"| client rps | {agent} | " + ", ".join(f"{r['rps']:,.0f}" for r in rs) + " |")
    return "\n".join(lines)


def commands(meta, data):
    lines = [f"{s:15} {cmd}" for s, cmd in meta.get("server_commands", {}).items()]
    lines.append("")
    for (t, s), rs in sorted(data.items()):
        lines.append(f"{t:8} {s:15} {generic(rs[0].get('cmd', ''))}")
    return "\n".join(lines)


def generic(cmd):
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", re.sub(r"--log-file=\S+", "--log-file=FILE", cmd))


def busy_note(meta):
    load = float((meta.get("loadavg") or ["0"])[0])
    if load < 0.5:
        return ""
    return ("\n  **The machine was not idle** (other work shared its cores): differences of 10–20% between "
            "rounds are noise here; re-run on an idle machine before drawing conclusions.")


def render(meta, checks, data):
    v = meta.get("versions", {})
    rate = meta.get("rate", 0)
    return f"""# Benchmark results

Generated by `bench/run.sh{' --quick' if meta.get('mode') == 'quick' else ''}` ({meta.get('mode')} mode,
{meta.get('rounds')} round(s), medians; ratios in brackets are to nginx measured in the same run).
Do not edit by hand: run the command again.

- Date: {meta.get('date')}; measurements took {meta.get('seconds', 0):.0f} s.
- Machine: {meta.get('cpu')}, {meta.get('cores')} cores, Linux {meta.get('kernel')};
  load average when the run started: {' '.join(meta.get('loadavg', []))}.{busy_note(meta)}
- Versions: rustc {v.get('rustc')}, nginx {v.get('nginx')}, node {v.get('node')}, OpenSSL {v.get('openssl')},
  h2load {v.get('h2load')}, wrk {v.get('wrk')} (installed, unused: as client-bound as h2load here), curl {v.get('curl')}, Python {v.get('python')}.
- Every server: the same ECDSA P-256 certificate (made by `openssl` for this run), TLS 1.3, X25519,
  a 12-byte `hello world\\n` body, pinned to core 0 (`taskset -c 0`); every client pinned to core 1.
  h2load, curl, node and tls-client offer only {meta.get('tls13_suite')} (left to themselves the servers pick
  different suites); the Python client (idle row) offers OpenSSL's defaults.

## Table

{table(meta, data)}

{client_baseline_table(data)}

## Static files

{files_table(meta, data)}

## Targets

{targets(meta, data)}

Where the gaps come from, with profiles: [PROFILE.md](PROFILE.md).

## What each row measures

- **HTTP/1.1 keep-alive**: `h2load --h1 -c 50 -n N` (N sized from a warm-up run to ~{1.5 if meta.get('mode') == 'quick' else 3} s).
  Server CPU = utime + stime of the server's processes (all threads; nginx: master + worker) from
  `/proc/PID/stat` before and after the run, ÷ requests. "Per busy server core" = 10⁶ ÷ that CPU:
  what one core would serve if the client's core were not the limit (on 2 cores it is).
- **HTTP/2**: `h2load -c 50 -m 10 -n N`; node's `https` server does not speak HTTP/2.
- **Full handshakes (h2load)**: `h2load --h1 -c {meta.get('handshake_batch')} -n {meta.get('handshake_batch')}` repeated: each h2load client makes one
  connection and offers no session. (An h2load client that reconnects, e.g. after `Connection: close`,
  resumes its session: `-c 50 -n N -H 'Connection: close'` would measure resumptions.)
- **Full / resumed handshakes (tls-client)**: `bench/tls-client` (rustls, 50 loops, one
  `Connection: close` request per connection, read to the end): `full` without resumption, `resumed`
  offering the ticket of the loop's previous connection. Warm-up connections are outside the measurement.
  The CPU figures cover accept, handshake, ticket issue, one request and the close.
- **Bulk**: `curl -k --http1.1 -o /dev/null` of `/bulk`, 1 GiB (servers: a 64 KiB chunk repeated;
  nginx: a 1 GiB file with `sendfile off`). MB/s from curl's total time.
- **Idle memory**: a fresh server, 100 warm-up connections, then `bench/clients.py idle` opens
  {meta.get('idle_connections')} connections (handshake, one keep-alive request) and holds them; (VmRSS after −
  VmRSS before) ÷ {meta.get('idle_connections')}. nginx allocates its connection array at start, so its
  figure leaves out ~0.5 kB per connection.
- **Latency**: `h2load --h1 -c 50 --rps={rate / 50 if rate else 0:g} --log-file=F` (a fixed {rate:,} req/s in total); p50/p99 of
  the per-request times of the log.
- **Client**: `bench/node-client.js`, Node's `https.Agent({{keepAlive: true}})`, 50 requests in flight
  against the same nginx; portcullis: `bench/portcullis-agent`, `portcullis::client::Agent` with
  `keep_alive(true)`, 50 tasks in flight on a current_thread runtime, each reading the body with
  `.bytes()`. Client CPU from each client's own utime + stime, ÷ requests.
- **Static files**: one folder (a 12-byte `small.txt`, a random 16 KiB `16k.bin`, a random
  100 MB `big.bin`, 100 small `f0NN.txt`), in the page cache, served by `portcullis serve DIR
  --workers 1 --access-log off` (the command users run, on one thread like nginx's one worker;
  access log off, as nginx's) and by nginx (one worker, `sendfile off`, no gzip, access log off)
  twice: `open_file_cache` off (nginx's default) and on (`max=1000`, valid 1 s, as portcullis's
  cache revalidates within a second). `h2load --h1 -c 50 -n N` for the small rows (`-i` with the
  100 paths for the distinct-files row: each connection walks them in turn); `curl --http1.1` for the
  100 MB file, MB/s per busy core = 1000 ÷ server CPU s/GB. No client asks for compression here.
- **portcullis vs bare**: how much worse (or better) portcullis is than the hand-written
  hyper-util + tokio-rustls server on the same row, in the direction that matters for the row.

## Checks

{verification(meta, checks, data)}

## Every round

{rounds_table(data)}

## Commands

```
{commands(meta, data)}
```

nginx.conf (DIR is the run's temporary directory, PORT a free port):

```nginx
{meta.get('nginx_conf', '').strip()}
```

nginx.conf of the static-file rows (`nginx-files-ofc`; `nginx-files` has `open_file_cache off;`):

```nginx
{meta.get('nginx_files_conf', '').strip()}
```
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("markdown")
    p.add_argument("--readme")
    args = p.parse_args()
    meta, checks, data = load(args.results)
    with open(args.markdown, "w") as f:
        f.write(render(meta, checks, data))
    print(table(meta, data))
    print()
    print(client_baseline_table(data))
    print()
    print(files_table(meta, data))
    print()
    print(targets(meta, data))
    if args.readme:
        with open(args.readme) as f:
            text = f.read()
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        if start in text and end in text:
            before, rest = text.split(start, 1)
            after = rest.split(end, 1)[1]
            note = (f"\n{meta.get('mode').capitalize()} run of {meta.get('date')} on {meta.get('cpu')} "
                    f"(medians of {meta.get('rounds')} rounds; in brackets: ratio to nginx). "
                    "Details, targets and checks: [bench/RESULTS.md](bench/RESULTS.md).\n\n")
            with open(args.readme, "w") as f:
                files = "\n\nStatic files, `portcullis serve DIR` against nginx serving the same folder:\n\n" + files_table(meta, data)
                baseline = client_baseline_table(data)
                baseline = "\n\n" + baseline if baseline else ""
                f.write(before + start + note + table(meta, data) + baseline + files + "\n" + end + after)
        else:
            print(f"{args.readme}: no bench markers; not updated", file=sys.stderr)


if __name__ == "__main__":
    main()
