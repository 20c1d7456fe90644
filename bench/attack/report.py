#!/usr/bin/env python3
"""Reads bench/attack/attack.py's results: writes bench/ATTACK.md (the table, portcullis and
nginx side by side), or, with --check, fails on what .ci/run's short mode does not allow.

    report.py RESULTS.jsonl --write ATTACK.md
    report.py --check RESULTS.jsonl
"""
import argparse
import json
import platform
import subprocess
import sys
import time

GOAL_SUCCESS = 0.99
GOAL_P99_MS = 250
CI_SUCCESS = 0.95


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fd_leak(r):
    return r.get("fds_after", 0) > max(r.get("fds_base", 0) * 1.1, r.get("fds_base", 0) + 5)


def check(path):
    problems = []
    for r in rows(path):
        if r.get("server") != "portcullis":
            continue
        name = r["scenario"]
        if "error" in r:
            problems.append(f"{name}: did not run: {r['error']}")
            continue
        if r.get("panicked"):
            problems.append(f"{name}: the server panicked")
        if fd_leak(r):
            problems.append(f"{name}: descriptors {r['fds_base']} before, {r['fds_after']} 15 s after")
        # Without LRU purge, a full server refuses new clients by design (Node's
        # maxConnections; the row shows why the purge is on by default).
        if "purge off" not in name and (r.get("legit_success") or 0) < CI_SUCCESS:
            problems.append(f"{name}: legitimate success {r.get('legit_success')} < {CI_SUCCESS}")
    for r in rows(path):
        print("  {scenario:45} {server:10} success {s} p50 {p50} p99 {p99} fds {fb}->{fp}->{fa} "
              "recovered {rec}".format(scenario=r["scenario"], server=r["server"],
                                       s=r.get("legit_success", r.get("error")),
                                       p50=r.get("legit_p50_ms"), p99=r.get("legit_p99_ms"),
                                       fb=r.get("fds_base"), fp=r.get("fds_peak"),
                                       fa=r.get("fds_after"), rec=r.get("recovered_s")),
              file=sys.stderr)
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    print(f"attack short mode: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def mb(b):
    return f"{b / 1e6:.0f}" if isinstance(b, (int, float)) else "?"


def cell(r, key, fmt="{}"):
    v = r.get(key)
    return "–" if v is None else fmt.format(v)


def write(path, out):
    data = rows(path)
    by = {}
    order = []
    for r in data:
        if r["scenario"] not in by:
            order.append(r["scenario"])
        by.setdefault(r["scenario"], {})[r["server"]] = r
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    lines = [
        "# Under attack: portcullis and nginx side by side",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} with `bench/attack/run.sh` on {platform.machine()}, "
        f"{platform.release()}, {nginx_v}. Each server runs alone on core 0 (portcullis: "
        "`serve --workers 1`; nginx: one worker, TLS 1.2/1.3, HTTP/2, its default timeouts); the "
        "attack and a legitimate client run on core 1, all on 127.0.0.1. The legitimate client is "
        "a new visitor ten times a second: new TCP connection, full TLS handshake, `GET /`, 5 s "
        "deadline. *Recovered* is how long after the attack RSS and open descriptors were back "
        "within 10% of their level before it (– : not within 15 s).",
        "",
        f"Goals (issue 13): legitimate success ≥ {GOAL_SUCCESS:.0%}, p99 < {GOAL_P99_MS} ms in every "
        "scenario; descriptors and RSS back within 15 s; no panic.",
        "",
        "| scenario | server | legit success | p50 ms | p99 ms | peak RSS MB | RSS after MB | fds before → peak → after | recovered s | server CPU s | attack |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in order:
        for server in ("portcullis", "nginx"):
            r = by[name].get(server)
            if not r:
                continue
            if "error" in r:
                lines.append(f"| {name} | {server} | did not run: {r['error']} |||||||||")
                continue
            attack = {k: v for k, v in r.items() if k not in {
                "scenario", "server", "seconds", "legit_requests", "legit_success", "legit_p50_ms",
                "legit_p99_ms", "rss_base", "rss_peak", "rss_after", "fds_base", "fds_peak",
                "fds_after", "recovered_s", "server_cpu_s", "panicked", "attack"}}
            what = r.get("attack", "") + (" — " + ", ".join(f"{k} {v}" for k, v in attack.items()) if attack else "")
            success = r.get("legit_success")
            lines.append(
                f"| {name} | {server}{' (panicked)' if r.get('panicked') else ''} | "
                f"{'–' if success is None else f'{success:.1%}'} ({r.get('legit_requests')}) | "
                f"{cell(r, 'legit_p50_ms')} | {cell(r, 'legit_p99_ms')} | {mb(r.get('rss_peak'))} | "
                f"{mb(r.get('rss_after'))} | {r.get('fds_base')} → {r.get('fds_peak')} → {r.get('fds_after')} | "
                f"{cell(r, 'recovered_s')} | {cell(r, 'server_cpu_s')} | {what} |")
    misses = [f"{r['scenario']}: success {r.get('legit_success')}, p99 {r.get('legit_p99_ms')} ms"
              for r in data if r.get("server") == "portcullis" and "error" not in r and (
                  (r.get("legit_success") or 0) < GOAL_SUCCESS
                  or (r.get("legit_p99_ms") or 1e9) >= GOAL_P99_MS)]
    lines += ["", "## Where portcullis misses a goal", ""]
    lines += [f"- {m}" for m in misses] or ["None."]
    lines.append("")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def readme(path, readme_path):
    """The compact table between the attack markers of the README."""
    data = rows(path)
    by, order = {}, []
    for r in data:
        if r["scenario"] not in by:
            order.append(r["scenario"])
        by.setdefault(r["scenario"], {})[r["server"]] = r

    def fmt(r):
        if not r or "error" in r:
            return "–"
        s = r.get("legit_success")
        return f"{s:.1%}, p99 {r.get('legit_p99_ms')} ms" if s is not None else "–"

    table = ["| scenario | portcullis: legit success, p99 | nginx: legit success, p99 | portcullis peak RSS MB, fds back |",
             "|---|---|---|---|"]
    for name in order:
        p, n = by[name].get("portcullis"), by[name].get("nginx")
        back = "–"
        if p and "error" not in p:
            back = f"{mb(p.get('rss_peak'))}, {'yes' if not fd_leak(p) else 'NO'}"
        table.append(f"| {name} | {fmt(p)} | {fmt(n)} | {back} |")
    with open(readme_path) as f:
        text = f.read()
    start, end = "<!-- attack:start -->", "<!-- attack:end -->"
    if start not in text:
        raise SystemExit(f"{readme_path} has no {start} marker")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(readme_path, "w") as f:
        f.write(head + start + "\n" + "\n".join(table) + "\n" + end + tail)
    print(f"updated {readme_path}", file=sys.stderr)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--write")
    ap.add_argument("--readme")
    args = ap.parse_args()
    if args.check:
        sys.exit(check(args.results))
    code = write(args.results, args.write)
    if args.readme:
        code = code or readme(args.results, args.readme)
    sys.exit(code)


if __name__ == "__main__":
    main()
