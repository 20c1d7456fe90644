#!/usr/bin/env python3
"""Summarise a conformance/run.sh results directory.

Usage: report.py [--grouped] OUT_DIR [TARGET ...]

Reads OUT_DIR/<target>/h2spec.xml (h2spec's JUnit report) and
OUT_DIR/<target>/tlsfuzzer/summary.json (written by tlsfuzzer_suite.py) for each
target (default: every sub-directory), prints a table of totals and then every
failing case with its failure text. With --grouped, tlsfuzzer failures are grouped by
script and failure text, with a count and up to three of the probes' names.
Standard library only.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def h2spec_results(path):
    """(tests, passed, skipped, failed, [(id, title, expected, actual)]) or None."""
    if not os.path.exists(path):
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    tests = passed = skipped = failed = 0
    failures = []
    for suite in root.iter("testsuite"):
        for n, case in enumerate(suite.iter("testcase"), 1):
            tests += 1
            case_id = "%s/%d" % (suite.get("package"), n)
            title = "%s: %s" % (suite.get("name"), case.get("classname"))
            bad = case.find("error")
            if bad is None:
                bad = case.find("failure")
            if case.find("skipped") is not None:
                skipped += 1
            elif bad is not None:
                failed += 1
                lines = [l.strip() for l in (bad.text or "").strip().splitlines() if l.strip()]
                expected = " | ".join(lines[:-1])
                actual = lines[-1] if lines else ""
                failures.append((case_id, title, expected, actual))
            else:
                passed += 1
    return tests, passed, skipped, failed, failures


def tlsfuzzer_results(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def main():
    args = sys.argv[1:]
    grouped = "--grouped" in args
    args = [a for a in args if a != "--grouped"]
    if not args:
        print(__doc__)
        return 2
    out = args[0]
    targets = args[1:] or sorted(
        d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d)))
    rows = []
    details = []
    for t in targets:
        h = h2spec_results(os.path.join(out, t, "h2spec.xml"))
        if h:
            rows.append((t, "h2spec", "%d tests" % h[0], h[1], h[3], "-", h[2], "-"))
            for case_id, title, expected, actual in h[4]:
                details.append("%s h2spec %s %s\n      expected: %s\n      actual:   %s" % (
                    t, case_id, title, expected, actual))
        elif os.path.exists(os.path.join(out, t, "h2spec.txt")):
            rows.append((t, "h2spec", "no report (see h2spec.txt)", "-", "-", "-", "-", "-"))
        s = tlsfuzzer_results(os.path.join(out, t, "tlsfuzzer", "summary.json"))
        if s:
            g = s["totals"]
            rows.append((t, "tlsfuzzer", "%d scripts, %d probe runs" % (
                len(s["scripts"]), g["RUNS"]), g["PASS"], g["FAIL"] + g["XPASS"],
                g.get("NA", 0), g["SKIP"], g["ERRORS"]))
            for r in s["scripts"]:
                if r["error"]:
                    details.append("%s tlsfuzzer %s: ERROR %s" % (t, r["name"], r["error"]))
                groups = {}
                for c in r["failed"]:
                    why = "; ".join(dict.fromkeys(c["reasons"])) or "(see %s)" % r["log"]
                    if grouped:
                        groups.setdefault(why, []).append(c)
                        continue
                    times = " (x%d)" % c.get("count", 1) if c.get("count", 1) > 1 else ""
                    details.append("%s tlsfuzzer %s :: %s%s\n      %s" % (
                        t, r["name"], c["probe"], times, why))
                for why, cases in groups.items():
                    runs = sum(c.get("count", 1) for c in cases)
                    names = ", ".join(repr(c["probe"]) for c in cases[:3])
                    more = ", ..." if len(cases) > 3 else ""
                    details.append("%s tlsfuzzer %s :: %d probe runs, e.g. %s%s\n      %s" % (
                        t, r["name"], runs, names, more, why))
                for x in r["xpassed"]:
                    details.append("%s tlsfuzzer %s :: %s\n      XPASS" % (t, r["name"], x))
    head = ("target", "suite", "run", "passed", "failed", "n/a", "skipped", "errors")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    fmt = "  ".join("%%-%ds" % w for w in widths)
    print(fmt % head)
    print(fmt % tuple("-" * w for w in widths))
    for r in rows:
        print(fmt % tuple(str(x) for x in r))
    print()
    print("tlsfuzzer 'passed' counts the sanity probe at the start and end of each script;")
    print("'n/a' = probes of features outside the tested policy (see tlsfuzzer-selection.txt).")
    if details:
        print()
        print("Failing cases:")
        for d in details:
            print("  " + d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
