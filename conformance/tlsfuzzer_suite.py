#!/usr/bin/env python3
"""Run a selection of tlsfuzzer scripts against one server and summarise them.

Usage:
  tlsfuzzer_suite.py --tlsfuzzer DIR --python PY --host 127.0.0.1 \
      --rsa-port N --ec-port M --selection FILE --out DIR [--timeout S] [--label NAME]

DIR is a tlsfuzzer checkout (with scripts/ and tlsfuzzer/), PY a Python that has
tlslite-ng and ecdsa (the venv's bin/python). Each selection line is
"<rsa|ec> <script> [args...] [na=REGEX]"; the script runs with PYTHONPATH=DIR,
-h HOST and -p <port of that instance>, under a per-script timeout. A failing probe
whose "name: failure text" matches an na= regex (Python re.search) is counted as
"n/a" (a feature outside the tested policy) instead of "fail"; tlsfuzzer's own
FAIL count is the sum of both.

Writes OUT/<n>-<script>.log per script and OUT/summary.json, and prints per-script
totals, then every failing probe with the last line of its exception. Standard
library only.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

TOTAL_KEYS = ("TOTAL", "SKIP", "PASS", "XFAIL", "FAIL", "XPASS")
SUM_KEYS = TOTAL_KEYS + ("NA", "RUNS")


def parse_selection(path):
    entries = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = shlex.split(line)
            if parts[0] not in ("rsa", "ec"):
                raise SystemExit("bad selection line (want rsa|ec first): " + line)
            na = [re.compile(a[3:]) for a in parts[2:] if a.startswith("na=")]
            args = [a for a in parts[2:] if not a.startswith("na=")]
            entries.append((parts[0], parts[1], args, na))
    return entries


# "name ..." or, in scripts that repeat probes, '"name" repeat N...'
PROBE_RE = re.compile(r'^(?:"(?P<quoted>.*)" repeat \d+|(?P<plain>.*?)) ?\.\.\.$')


def parse_output(text):
    """Totals, failing probe names and, per failing probe, its failure text."""
    totals = {}
    for key in TOTAL_KEYS:
        m = re.search(r"^%s: (\d+)$" % key, text, re.M)
        if m:
            totals[key] = int(m.group(1))
    failed, xpassed = [], []
    for header, target in (("FAILED:", failed), ("XPASSED:", xpassed)):
        m = re.search(r"^%s\n((?:\t.*\n?)+)" % header, text, re.M)
        if m:
            for item in m.group(1).splitlines():
                item = item.strip()
                if item.startswith(("'", '"')):
                    try:
                        item = eval(item, {}, {})  # repr() of a str
                    except Exception:
                        pass
                target.append(item)
    # failure text per probe: the last exception line of its traceback
    reasons = {}
    lines = text.splitlines()
    current = None
    node = None
    for i, line in enumerate(lines):
        m = PROBE_RE.match(line)
        if m and not line.startswith((" ", "\t")):
            current, node = m.group("quoted") or m.group("plain"), None
            continue
        if current is None:
            continue
        if line.startswith("Error encountered while processing node "):
            nm = re.match(r"Error encountered while processing node (\S+?\(.*?\)|<[^ ]+)", line)
            node = nm.group(1) if nm else None
        elif line == "Traceback (most recent call last):":
            j = i + 1
            last = ""
            while j < len(lines) and lines[j].strip():
                if not lines[j].startswith(" "):
                    last = lines[j]
                j += 1
            text_ = last
            if node:
                text_ = "%s [at %s]" % (last, node)
            if text_ not in reasons.setdefault(current, []):
                reasons[current].append(text_)
        elif line.startswith("Expected error message: "):
            if line not in reasons.setdefault(current, []):
                reasons[current].append(line)
    return totals, failed, xpassed, reasons


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tlsfuzzer", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--rsa-port", type=int, required=True)
    ap.add_argument("--ec-port", type=int, required=True)
    ap.add_argument("--selection", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--label", default="server")
    ap.add_argument("--only", default="", help="comma-separated script names to run")
    ap.add_argument("--reparse", action="store_true",
                    help="do not run anything: re-read the logs already in --out")
    args = ap.parse_args()

    args.tlsfuzzer = os.path.abspath(args.tlsfuzzer)
    if os.sep in args.python:
        args.python = os.path.abspath(args.python)
    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.path.abspath(args.tlsfuzzer))
    only = set(s for s in args.only.split(",") if s)
    previous = {}
    if args.reparse and os.path.exists(os.path.join(args.out, "summary.json")):
        with open(os.path.join(args.out, "summary.json")) as f:
            previous = dict((r["log"], r) for r in json.load(f)["scripts"])
    results = []
    grand = dict((k, 0) for k in SUM_KEYS)
    grand["ERRORS"] = 0
    for n, (cert, script, extra, na) in enumerate(parse_selection(args.selection), 1):
        if only and script not in only:
            continue
        port = args.rsa_port if cert == "rsa" else args.ec_port
        cmd = [args.python, os.path.join(args.tlsfuzzer, "scripts", script),
               "-h", args.host, "-p", str(port)] + extra
        log = os.path.join(args.out, "%02d-%s-%s.log" % (n, cert, script[:-3]))
        if args.reparse:
            with open(log) as f:
                out = f.read().split("\n", 1)[1]
            rc, timed_out = previous.get(log, {}).get("rc"), False
            took = previous.get(log, {}).get("seconds", 0.0)
        else:
            start = time.time()
            try:
                proc = subprocess.run(cmd, cwd=args.tlsfuzzer, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=args.timeout)
                out = proc.stdout.decode("utf-8", "replace")
                rc, timed_out = proc.returncode, False
            except subprocess.TimeoutExpired as e:
                out = (e.output or b"").decode("utf-8", "replace")
                rc, timed_out = None, True
            took = time.time() - start
            with open(log, "w") as f:
                f.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n" + out)
        totals, failed, xpassed, reasons = parse_output(out)
        error = None
        if timed_out:
            error = "timed out after %ds" % args.timeout
        elif "TOTAL" not in totals:
            tail = [l for l in out.splitlines() if l.strip()][-1:] or ["(no output)"]
            error = "no summary (rc=%s): %s" % (rc, tail[0])
        shown, i, excluded = [], 0, 0
        while i < len(extra):  # "-e probe" pairs are left out of the display name
            if extra[i] == "-e" and i + 1 < len(extra):
                excluded += 1
                i += 2
                continue
            shown.append(extra[i])
            i += 1
        if excluded:
            shown.append("(%d probes excluded)" % excluded)
        name = "%s [%s]%s" % (script, cert, (" " + " ".join(shown)) if shown else "")
        # a probe can fail several times (scripts with repeats): one case, with a count
        cases = [{"probe": p, "count": failed.count(p), "reasons": reasons.get(p, [])}
                 for p in dict.fromkeys(failed)]
        unlisted = totals.get("FAIL", 0) - len(failed)
        if unlisted > 0:  # a check that is not a probe (e.g. nonce monotonicity)
            notes = [l.strip() for l in out.splitlines()
                     if re.search(r"\bFAIL\b", l) and not l.startswith(("FAIL:", "XFAIL:"))]
            cases.append({"probe": "(failure not in the script's FAILED list)",
                          "count": unlisted, "reasons": notes or ["(see log)"]})
        real, not_app = [], []
        for case in cases:
            p = case["probe"]
            text = p + ": " + "; ".join(case["reasons"])
            (not_app if any(r.search(text) for r in na) else real).append(case)
        totals["RUNS"] = sum(totals.get(k, 0) for k in ("PASS", "FAIL", "XFAIL", "XPASS"))
        if not_app:
            totals["NA"] = sum(c["count"] for c in not_app)
            totals["FAIL"] = totals.get("FAIL", 0) - totals["NA"]
        res = {"script": script, "cert": cert, "args": extra,
               "na": [r.pattern for r in na], "name": name, "rc": rc,
               "seconds": round(took, 1), "totals": totals, "error": error,
               "failed": real, "not_applicable": not_app,
               "xpassed": xpassed, "log": log}
        results.append(res)
        for k in SUM_KEYS:
            grand[k] += totals.get(k, 0)
        if error:
            grand["ERRORS"] += 1
        t = totals
        print("%-4s %-58s %s %5.1fs" % (
            cert, script,
            "ERROR %s" % error if error else
            "pass %3d fail %3d n/a %3d xfail %2d xpass %d skip %2d" % (
                t.get("PASS", 0), t.get("FAIL", 0), t.get("NA", 0), t.get("XFAIL", 0),
                t.get("XPASS", 0), t.get("SKIP", 0)),
            took), flush=True)

    summary = {"label": args.label, "totals": grand, "scripts": results}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print()
    print("tlsfuzzer %s: %d scripts, %d probe runs: %d passed, %d failed, %d n/a (policy), "
          "%d xfail, %d xpass, %d skipped; %d scripts errored" % (
              args.label, len(results), grand["RUNS"], grand["PASS"], grand["FAIL"],
              grand["NA"], grand["XFAIL"], grand["XPASS"], grand["SKIP"], grand["ERRORS"]))
    bad = [r for r in results if r["failed"] or r["xpassed"] or r["error"]]
    if bad:
        print("failing cases (%s):" % args.label)
        for r in bad:
            if r["error"]:
                print("  %s: %s" % (r["name"], r["error"]))
            for fcase in r["failed"]:
                why = "; ".join(dict.fromkeys(fcase["reasons"])) or "(see log)"
                times = " (x%d)" % fcase["count"] if fcase["count"] > 1 else ""
                print("  %s :: %s%s: %s" % (r["name"], fcase["probe"], times, why))
            for x in r["xpassed"]:
                print("  %s :: %s: XPASS (expected to fail, passed)" % (r["name"], x))
    na_scripts = [r for r in results if r["not_applicable"]]
    if na_scripts:
        print("not applicable under the tested policy (counted as n/a, not fail):")
        for r in na_scripts:
            print("  %s: %d probe runs matching %s" % (
                r["name"], r["totals"]["NA"], " | ".join(r["na"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
