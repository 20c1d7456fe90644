#!/usr/bin/env bash
# The benchmark: portcullis against nginx, Node and a bare hyper + tokio-rustls server.
#
#   bench/run.sh [--quick] [--runtime current|multi] [--rate REQ_PER_S] [--baseline REV]
#
# Installs what it lacks (nginx-light, nghttp2-client for h2load, wrk, curl, node), builds the
# Rust servers and client in bench/ and the portcullis command (into bench/target), makes one
# ECDSA P-256 certificate and the static-file folder, runs bench/measure.py (servers on core 0,
# clients on core 1, loopback only, interleaved rounds) and bench/report.py, which writes
# bench/RESULTS.md and prints the table. A full run also puts the tables in README.md between
# the bench markers. --quick: one short round, for use after every
# performance change (under 2 minutes once built). --baseline REV: also run the client row with
# bench/portcullis-agent built against the library at commit REV (a git worktree, its own
# target directory), to compare the Agent with an earlier build in the same run. Every process started here ends with it.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
MODE=full
PASS=()
BASELINE=""
BASELINE_TREE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick; PASS+=(--quick) ;;
    --runtime|--rate) PASS+=("$1" "$2"); shift ;;
    --baseline) BASELINE="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

START=$(date +%s)
RUN=""
MEASURE_PID=""
cleanup() {
  if [ -n "$MEASURE_PID" ] && kill -0 "$MEASURE_PID" 2>/dev/null; then
    kill "$MEASURE_PID" 2>/dev/null || true
    wait "$MEASURE_PID" 2>/dev/null || true
  fi
  if [ -n "$RUN" ]; then rm -rf "$RUN"; fi
  if [ -n "$BASELINE_TREE" ]; then git -C "$ROOT" worktree remove --force "$BASELINE_TREE" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v node >/dev/null || missing+=(nodejs)
command -v openssl >/dev/null || missing+=(openssl)
command -v taskset >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is needed (rustup toolchain of the repository)" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 cores (server on core 0, clients on core 1)" >&2; exit 1; fi

# --- the Rust servers ----------------------------------------------------------------------------
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BENCH/target}"
for project in portcullis-hello bare-hello tls-client portcullis-agent; do
  echo "building bench/$project (release)" >&2
  cargo build --quiet --release --manifest-path "$BENCH/$project/Cargo.toml"
done
if [ -n "$BASELINE" ]; then
  REV=$(git -C "$ROOT" rev-parse --short "$BASELINE")
  BASELINE_TREE="$(mktemp -d /tmp/portcullis-baseline.XXXXXX)"
  rmdir "$BASELINE_TREE"
  git -C "$ROOT" worktree add --quiet --detach "$BASELINE_TREE" "$REV"
  # Today's client program against the library as it was at REV: only the library differs.
  rm -rf "$BASELINE_TREE/bench/portcullis-agent"
  cp -r "$BENCH/portcullis-agent" "$BASELINE_TREE/bench/portcullis-agent"
  rm -rf "$BASELINE_TREE/bench/portcullis-agent/target"
  echo "building bench/portcullis-agent against the library at $REV (release)" >&2
  CARGO_TARGET_DIR="$BENCH/target-baseline" cargo build --quiet --release \
    --manifest-path "$BASELINE_TREE/bench/portcullis-agent/Cargo.toml"
  PASS+=(--baseline-agent "$BENCH/target-baseline/release/portcullis-agent" --baseline-rev "$REV")
fi
echo "building the portcullis command (release)" >&2
cargo build --quiet --release -p portcullis-cli --manifest-path "$ROOT/Cargo.toml"
BUILT=$(date +%s)

# --- certificate, nginx's bulk file, limits --------------------------------------------------------
RUN="$(mktemp -d /tmp/portcullis-bench.XXXXXX)"
chmod 755 "$RUN"  # nginx's worker (user nobody) reads the bulk file
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null
mkdir -p "$RUN/www"
chmod 755 "$RUN/www"
truncate -s 1G "$RUN/www/bulk.bin"  # 1 GiB, sparse: no disk I/O
chmod 644 "$RUN/www/bulk.bin"
cat "$RUN/www/bulk.bin" > /dev/null  # into the page cache before nginx serves it
# The static-file rows' folder, served by `portcullis serve` and by nginx: a 12-byte file, a
# 16 KiB one, a 100 MB one and 100 distinct small files (their paths in files-uris.txt).
mkdir -p "$RUN/files"
printf 'hello world\n' > "$RUN/files/small.txt"
head -c 16384 /dev/urandom > "$RUN/files/16k.bin"
head -c 100000000 /dev/urandom > "$RUN/files/big.bin"
for i in $(seq -w 0 99); do
  printf 'file %s of a hundred\n' "$i" > "$RUN/files/f0$i.txt"
  echo "/f0$i.txt"
done > "$RUN/files-uris.txt"
chmod 755 "$RUN/files"
chmod 644 "$RUN"/files/*
cat "$RUN"/files/* > /dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- measure, report ---------------------------------------------------------------------------------
echo "measuring ($MODE); servers on core 0, clients on core 1" >&2
python3 "$BENCH/measure.py" --dir "$RUN" --out "$BENCH/results.jsonl" "${PASS[@]}" &
MEASURE_PID=$!
wait "$MEASURE_PID"
MEASURE_PID=""

README=()
[ "$MODE" = full ] && README=(--readme "$ROOT/README.md")
python3 "$BENCH/report.py" "$BENCH/results.jsonl" "$BENCH/RESULTS.md" "${README[@]}"
END=$(date +%s)
echo "" >&2
echo "bench/RESULTS.md written; build $((BUILT - START)) s, measurements and report $((END - BUILT)) s" >&2
