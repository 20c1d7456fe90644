#!/usr/bin/env bash
# conformance/run.sh: run h2spec (HTTP/2) and a tlsfuzzer selection (TLS) against nginx
# and portcullis on loopback (127.0.0.1 only) and print a table of totals.
#
# It downloads nothing. The tools come from outside the repository (README.md, "The
# tools", says which versions were used).
#
# Inputs (environment variables; all optional except where a suite needs them):
#   H2SPEC            h2spec binary                     (default: `h2spec` on PATH)
#   TLSFUZZER_DIR     tlsfuzzer checkout (has scripts/, tlsfuzzer/)
#   TLSFUZZER_PYTHON  python with tlslite-ng + ecdsa    (default: $TLSFUZZER_VENV/bin/python)
#   TLSFUZZER_VENV    venv holding tlslite-ng + ecdsa   (default: none)
#   PORTCULLIS        portcullis binary                 (default: target/release/portcullis,
#                                                        then target/debug/portcullis)
#   NGINX             nginx binary                      (default: `nginx` on PATH)
#   TARGETS           "nginx portcullis" (default both; a missing binary skips its target)
#   SUITES            "h2spec tlsfuzzer" (default both; a missing tool skips its suite)
#   OUT               results directory                 (default: /tmp/portcullis-conformance-<time>)
#   BASE_PORT         first of 4 loopback ports         (default 18540: nginx ec, nginx rsa,
#                                                        portcullis ec, portcullis rsa)
#   H2SPEC_TIMEOUT    seconds for the whole h2spec run  (default 900)
#   H2SPEC_CASE_TIMEOUT  h2spec -o, seconds per case    (default 2)
#   TLSFUZZER_SCRIPT_TIMEOUT  seconds per tlsfuzzer script (default 300)
#   TLSFUZZER_ONLY    comma-separated script names to run from the selection (default all)
#
# Arguments: --help.
#
# Each server gets two instances: one with an ECDSA P-256 certificate (h2spec and the
# "ec" tlsfuzzer lines) and one with an RSA-2048 certificate (most tlsfuzzer TLS 1.3
# scripts only offer RSA-PSS signatures). Certificates are made fresh with openssl.
# nginx is configured with portcullis's TLS policy (TLS 1.2 + 1.3, ECDHE + AEAD only,
# groups X25519, P-256, P-384).
#
# Output: OUT/<target>/{h2spec.txt,h2spec.xml,tlsfuzzer/,server.log}, OUT/summary.txt.
# Exit status: 0 if every requested run completed (failing cases do not change it),
# 1 on a setup error.
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"

case "${1:-}" in
  --help|-h) sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "unknown argument: $1 (try --help)" >&2; exit 1 ;;
esac

TARGETS="${TARGETS:-nginx portcullis}"
SUITES="${SUITES:-h2spec tlsfuzzer}"
OUT="${OUT:-/tmp/portcullis-conformance-$(date +%Y%m%d-%H%M%S)}"
BASE_PORT="${BASE_PORT:-18540}"
H2SPEC_TIMEOUT="${H2SPEC_TIMEOUT:-900}"
H2SPEC_CASE_TIMEOUT="${H2SPEC_CASE_TIMEOUT:-2}"
TLSFUZZER_SCRIPT_TIMEOUT="${TLSFUZZER_SCRIPT_TIMEOUT:-300}"
TLSFUZZER_ONLY="${TLSFUZZER_ONLY:-}"
H2SPEC="${H2SPEC:-$(command -v h2spec || true)}"
NGINX="${NGINX:-$(command -v nginx || command -v /usr/sbin/nginx || true)}"
TLSFUZZER_DIR="${TLSFUZZER_DIR:-}"
if [ -z "${TLSFUZZER_PYTHON:-}" ] && [ -n "${TLSFUZZER_VENV:-}" ]; then
  TLSFUZZER_PYTHON="$TLSFUZZER_VENV/bin/python"
fi
TLSFUZZER_PYTHON="${TLSFUZZER_PYTHON:-}"
if [ -z "${PORTCULLIS:-}" ]; then
  for p in "$REPO/target/release/portcullis" "$REPO/target/debug/portcullis"; do
    [ -x "$p" ] && { PORTCULLIS="$p"; break; }
  done
fi
PORTCULLIS="${PORTCULLIS:-}"

log() { printf '[conformance] %s\n' "$*" >&2; }
want() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }

# ---- which suites and targets can run ----
run_h2spec=0; run_tlsfuzzer=0
if want "$SUITES" h2spec; then
  if [ -n "$H2SPEC" ] && [ -x "$H2SPEC" ]; then run_h2spec=1
  else log "h2spec not found (set H2SPEC); skipping h2spec. See README.md."; fi
fi
if want "$SUITES" tlsfuzzer; then
  if [ -n "$TLSFUZZER_DIR" ] && [ -f "$TLSFUZZER_DIR/scripts/test-conversation.py" ] \
     && [ -n "$TLSFUZZER_PYTHON" ] && "$TLSFUZZER_PYTHON" -c 'import tlslite, ecdsa' 2>/dev/null; then
    run_tlsfuzzer=1
  else
    log "tlsfuzzer not usable (set TLSFUZZER_DIR and TLSFUZZER_VENV or TLSFUZZER_PYTHON);"
    log "skipping tlsfuzzer. See README.md."
  fi
fi
targets=()
for t in $TARGETS; do
  case "$t" in
    nginx) if [ -n "$NGINX" ] && [ -x "$NGINX" ]; then targets+=(nginx)
           else log "nginx not found (set NGINX, or apt-get install nginx-light); skipping"; fi ;;
    portcullis) if [ -n "$PORTCULLIS" ] && [ -x "$PORTCULLIS" ]; then targets+=(portcullis)
           else log "portcullis binary not found (set PORTCULLIS or cargo build --release); skipping"; fi ;;
    *) log "unknown target $t"; exit 1 ;;
  esac
done
if [ ${#targets[@]} -eq 0 ] || [ $((run_h2spec + run_tlsfuzzer)) -eq 0 ]; then
  log "nothing to run"; exit 1
fi
command -v openssl >/dev/null || { log "openssl is needed to make test certificates"; exit 1; }

mkdir -p "$OUT" || exit 1
OUT="$(cd "$OUT" && pwd)"
WORK="$OUT/work"
mkdir -p "$WORK"
log "results in $OUT"

# ---- certificates ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$WORK/ec-key.pem" -out "$WORK/ec-cert.pem" 2>/dev/null || { log "openssl failed"; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$WORK/rsa-key.pem" -out "$WORK/rsa-cert.pem" 2>/dev/null || { log "openssl failed"; exit 1; }

PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
  done
  sleep 0.5
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {  # wait_port PORT PID: until something accepts TLS on 127.0.0.1:PORT
  local port=$1 pid=$2 i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

start_nginx() {  # start_nginx EC_PORT RSA_PORT DIR
  local ec=$1 rsa=$2 dir=$3
  mkdir -p "$dir/html" "$dir/logs" "$dir/tmp"
  echo '<!doctype html><title>hello</title><p>hello from nginx</p>' > "$dir/html/index.html"
  server_block() {
    cat <<EOF
    server {
        listen 127.0.0.1:$1 ssl http2;
        server_name localhost;
        ssl_certificate     $WORK/$2-cert.pem;
        ssl_certificate_key $WORK/$2-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;            # portcullis's policy
        ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20;  # ECDHE + AEAD only
        ssl_ecdh_curve X25519:prime256v1:secp384r1;  # portcullis's default groups
        root $dir/html;
        index index.html;
    }
EOF
  }
  cat > "$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $dir/logs/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$(server_block "$ec" ec)
$(server_block "$rsa" rsa)
}
EOF
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" >"$dir/server.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$ec" "$pid" && wait_port "$rsa" "$pid"
}

start_portcullis() {  # start_portcullis PORT CERTKIND DIR
  local port=$1 kind=$2 dir=$3
  mkdir -p "$dir"
  "$PORTCULLIS" serve --listen "127.0.0.1:$port" \
    --cert "$WORK/$kind-cert.pem" --key "$WORK/$kind-key.pem" \
    >"$dir/server-$kind.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$pid"
}

run_suites() {  # run_suites TARGET EC_PORT RSA_PORT
  local t=$1 ec=$2 rsa=$3 dir="$OUT/$1"
  if [ $run_h2spec = 1 ]; then
    log "$t: h2spec against 127.0.0.1:$ec"
    timeout "$H2SPEC_TIMEOUT" "$H2SPEC" -h 127.0.0.1 -p "$ec" -t -k -o "$H2SPEC_CASE_TIMEOUT" \
      -j "$dir/h2spec.xml" >"$dir/h2spec.txt" 2>&1
    local rc=$?
    [ $rc = 124 ] && log "$t: h2spec timed out after ${H2SPEC_TIMEOUT}s"
    tail -n 1 "$dir/h2spec.txt" >&2
  fi
  if [ $run_tlsfuzzer = 1 ]; then
    log "$t: tlsfuzzer selection against 127.0.0.1:$rsa (rsa) and :$ec (ec)"
    python3 "$HERE/tlsfuzzer_suite.py" --tlsfuzzer "$TLSFUZZER_DIR" --python "$TLSFUZZER_PYTHON" \
      --host 127.0.0.1 --rsa-port "$rsa" --ec-port "$ec" \
      --selection "$HERE/tlsfuzzer-selection.txt" --out "$dir/tlsfuzzer" \
      --timeout "$TLSFUZZER_SCRIPT_TIMEOUT" --label "$t" --only "$TLSFUZZER_ONLY" \
      >"$dir/tlsfuzzer.txt" 2>&1
    if [ $? != 0 ]; then
      log "$t: tlsfuzzer_suite.py failed:"; tail -n 5 "$dir/tlsfuzzer.txt" >&2; status=1
    fi
    grep -E '^tlsfuzzer ' "$dir/tlsfuzzer.txt" >&2
  fi
}

status=0
port=$BASE_PORT
for t in "${targets[@]}"; do
  ec=$port; rsa=$((port + 1)); port=$((port + 2))
  dir="$OUT/$t"; mkdir -p "$dir"
  case "$t" in
    nginx)
      "$NGINX" -v >"$dir/version.txt" 2>&1
      if ! start_nginx "$ec" "$rsa" "$dir"; then
        log "nginx did not start: $(tail -n 3 "$dir/server.log" "$dir/logs/error.log" 2>/dev/null)"
        status=1; continue
      fi ;;
    portcullis)
      "$PORTCULLIS" --version >"$dir/version.txt" 2>&1
      if ! start_portcullis "$ec" ec "$dir" || ! start_portcullis "$rsa" rsa "$dir"; then
        log "portcullis did not start: $(tail -n 3 "$dir"/server-*.log 2>/dev/null)"
        status=1; continue
      fi ;;
  esac
  run_suites "$t" "$ec" "$rsa"
  cleanup; PIDS=()
done

{
  echo "conformance run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for t in "${targets[@]}"; do echo "$t: $(head -n 1 "$OUT/$t/version.txt" 2>/dev/null)"; done
  echo "openssl: $(openssl version)"
  [ $run_h2spec = 1 ] && echo "h2spec: $("$H2SPEC" --version 2>&1 | head -n 1)"
  if [ $run_tlsfuzzer = 1 ]; then
    echo "tlsfuzzer: $(git -C "$TLSFUZZER_DIR" rev-parse HEAD 2>/dev/null || cat "$TLSFUZZER_DIR/COMMIT" 2>/dev/null || echo "(unknown commit) $TLSFUZZER_DIR"); tlslite-ng $("$TLSFUZZER_PYTHON" -c 'import tlslite; print(tlslite.__version__)' 2>/dev/null)"
  fi
  echo
  python3 "$HERE/report.py" "$OUT" "${targets[@]}"
} >"$OUT/summary.txt"
cat "$OUT/summary.txt"
exit $status
