#!/usr/bin/env bash
# The attack harness: each scenario of bench/attack/attack.py against `portcullis serve` and
# nginx (one worker, a typical configuration) in the same run, while a legitimate client
# measures what new visitors see, and the servers' RSS, descriptors and CPU are sampled.
#
#   bench/attack/run.sh [--short] [--only NAME[,NAME...]]
#
# Full mode (about 25 minutes) writes bench/attack/results.jsonl, bench/ATTACK.md and the
# README table. --short
# (each scenario a few seconds, about 8 minutes, portcullis only) is what .ci/run runs: it fails
# on a panic, a descriptor leak or legitimate success below 95%. Everything stays on 127.0.0.1;
# servers on core 0, attackers on core 1; every process started here ends with it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MODE=full
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --short) MODE=short; PASS+=(--short --servers portcullis) ;;
    --only) PASS+=(--only "$2"); shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

missing=()
command -v slowhttptest >/dev/null || missing+=(slowhttptest)
command -v openssl >/dev/null || missing+=(openssl)
command -v prlimit >/dev/null || missing+=(util-linux)
command -v taskset >/dev/null || missing+=(util-linux)
if [ "$MODE" = full ]; then command -v nginx >/dev/null || missing+=(nginx-light); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 cores (server on core 0, attackers on core 1)" >&2; exit 1; fi

echo "building the portcullis command (release)" >&2
cargo build --quiet --release -p portcullis-cli --manifest-path "$ROOT/Cargo.toml"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis"

RUN="$(mktemp -d /tmp/portcullis-attack.XXXXXX)"
trap 'rm -rf "$RUN"' EXIT
chmod 755 "$RUN"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null
chmod 644 "$RUN/key.pem"  # nginx's worker reads nothing here, but its master runs as us
mkdir -p "$RUN/www"
printf 'portcullis attack harness\n' > "$RUN/www/index.html"
head -c 10000000 /dev/urandom > "$RUN/www/big.bin"
chmod -R a+rX "$RUN/www"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ "$MODE" = short ]; then
  OUT="$RUN/results.jsonl"
  python3 "$HERE/attack.py" --dir "$RUN" --portcullis "$BIN" --out "$OUT" "${PASS[@]}"
  python3 "$HERE/report.py" --check "$OUT"
else
  OUT="$HERE/results.jsonl"
  : > "$OUT"
  python3 "$HERE/attack.py" --dir "$RUN" --portcullis "$BIN" --out "$OUT" "${PASS[@]}"
  python3 "$HERE/report.py" "$OUT" --write "$ROOT/bench/ATTACK.md" --readme "$ROOT/README.md"
fi
