#!/usr/bin/env bash
# A fleet on one machine: HAProxy (deploy/haproxy/haproxy.cfg) in front of N `portcullis serve`
# instances, all on loopback.
#
#   deploy/haproxy/fleet.sh up [--instances N] [--port PORT] [--dir DIR] [--bin PORTCULLIS]
#                              [-- SERVE ARGS...]
#   deploy/haproxy/fleet.sh restart I --dir DIR     (SIGTERM instance I, wait, start it again)
#
# `up` makes DIR (default: a new temporary directory) with a certificate for localhost and
# 127.0.0.1 signed by a local CA (DIR/home/ca.pem: curl --cacert DIR/home/ca.pem), a shared
# ticket-key file (DIR/tickets.key), then starts instance I (1..N, default 3) on
# 127.0.0.1:PORT+I with its metrics on 127.0.0.1:PORT+100+I, its access log in
# DIR/instance-I.log and its output in DIR/instance-I.out/.err, and HAProxy on 127.0.0.1:PORT
# (default 8443) with the config written to DIR/haproxy.cfg. SERVE ARGS go to every instance
# (a folder to serve, --proxy URL, ...; default: the hello page). It prints "fleet ready on
# https://127.0.0.1:PORT (DIR)" once HAProxy sees every instance up, then runs HAProxy in the
# foreground; SIGINT or SIGTERM stops HAProxy and every instance.
#
# `restart I` is the zero-downtime restart of one instance: SIGTERM (the instance's /readyz
# turns 503, it stops accepting, in-flight requests finish), wait for it to exit, start it again
# with the same arguments and wait until it listens. HAProxy sends new connections to the
# others meanwhile (a refused connect is redispatched).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
BIN="${PORTCULLIS_BIN:-}"

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

find_bin() {
  if [ -n "$BIN" ]; then
    # Absolute: the instances and the certificate step run elsewhere.
    case "$BIN" in */*) BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" ;; esac
    return
  fi
  if [ -x "$ROOT/target/release/portcullis" ]; then BIN="$ROOT/target/release/portcullis"
  elif command -v portcullis >/dev/null; then BIN="$(command -v portcullis)"
  else echo "fleet.sh: no portcullis binary: cargo build --release, or --bin PATH" >&2; exit 1; fi
}

# Waits (up to 30 s) for "listening on https://" in FILE.
wait_listening() {
  local file="$1" pid="$2" i
  for i in $(seq 300); do
    if grep -q "^listening on https://" "$file" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "fleet.sh: instance exited; see ${file%.out}.err" >&2; return 1
    fi
    sleep 0.1
  done
  echo "fleet.sh: instance did not start; see ${file%.out}.err" >&2
  return 1
}

# Starts instance I from DIR/instance-I.args (one argument per line).
start_instance() {
  local dir="$1" i="$2"
  local args=()
  mapfile -t args < "$dir/instance-$i.args"
  : > "$dir/instance-$i.out"
  PORTCULLIS_HOME="$dir/home" RUST_LOG="${RUST_LOG:-info}" \
    setsid "$(cat "$dir/bin")" serve "${args[@]}" \
    > "$dir/instance-$i.out" 2>> "$dir/instance-$i.err" < /dev/null &
  local pid=$!
  # Not a job of this shell: an instance killed on purpose is not reported as one.
  disown "$pid"
  echo "$pid" > "$dir/instance-$i.pid"
  wait_listening "$dir/instance-$i.out" "$pid"
}

DIR=""

cmd_up() {
  local n=3 port=8443 serve=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --instances) n="$2"; shift ;;
      --port) port="$2"; shift ;;
      --dir) DIR="$2"; shift ;;
      --bin) BIN="$2"; shift ;;
      --) shift; serve=("$@"); break ;;
      -h|--help) usage 0 ;;
      *) echo "fleet.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
  done
  find_bin
  command -v haproxy >/dev/null || { echo "fleet.sh: haproxy is not installed (apt-get install haproxy)" >&2; exit 1; }
  [ -n "$DIR" ] || DIR="$(mktemp -d /tmp/portcullis-fleet.XXXXXX)"
  mkdir -p "$DIR/home"
  DIR="$(cd "$DIR" && pwd)"
  echo "$BIN" > "$DIR/bin"

  # One certificate and one ticket-key file for every instance.
  if [ ! -f "$DIR/localhost.pem" ]; then
    (cd "$DIR" && PORTCULLIS_HOME="$DIR/home" "$BIN" cert new localhost 127.0.0.1 >/dev/null)
  fi
  [ -f "$DIR/tickets.key" ] || "$BIN" tickets new "$DIR/tickets.key" >/dev/null

  stop_all() {
    trap - EXIT INT TERM
    local f pids=()
    for f in "$DIR"/instance-*.pid "$DIR"/haproxy.pid; do
      [ -f "$f" ] && pids+=("$(cat "$f")")
    done
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # Instances drain (--shutdown-delay, in-flight requests) before they exit: wait up to 40 s.
    local p
    for _ in $(seq 400); do
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && break; p=""; done
      [ -z "$p" ] && return 0
      sleep 0.1
    done
  }
  trap stop_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local servers="" i
  for i in $(seq "$n"); do
    printf '%s\n' --listen "127.0.0.1:$((port + i))" --metrics "127.0.0.1:$((port + 100 + i))" \
      --proxy-protocol --cert "$DIR/localhost.pem" --key "$DIR/localhost-key.pem" \
      --ticket-keys "$DIR/tickets.key" --access-log "$DIR/instance-$i.log" \
      --shutdown-delay 2s \
      ${serve[@]+"${serve[@]}"} > "$DIR/instance-$i.args"
    start_instance "$DIR" "$i"
    servers+="    server portcullis$i 127.0.0.1:$((port + i)) check port $((port + 100 + i))\n"
  done

  # The shipped config with this fleet's frontend port and server lines.
  awk -v port="$port" -v servers="$servers" '
    /^    bind 127\.0\.0\.1:/ { print "    bind 127.0.0.1:" port; next }
    /^    # servers/ { print; printf "%s", servers; skip = 1; next }
    /^    # end of servers/ { skip = 0 }
    !skip { print }
  ' "$HERE/haproxy.cfg" > "$DIR/haproxy.cfg"
  haproxy -c -q -f "$DIR/haproxy.cfg"
  haproxy -db -f "$DIR/haproxy.cfg" 2> "$DIR/haproxy.err" &
  echo $! > "$DIR/haproxy.pid"

  # Ready when every instance answers its health check through HAProxy's eyes: /readyz, and
  # a TLS connection through the frontend.
  for i in $(seq 100); do
    local up=0
    for j in $(seq "$n"); do
      if curl -sf -o /dev/null "http://127.0.0.1:$((port + 100 + j))/readyz"; then up=$((up + 1)); fi
    done
    if [ "$up" = "$n" ] && curl -s -o /dev/null --cacert "$DIR/home/ca.pem" \
        "https://localhost:$port/" --resolve "localhost:$port:127.0.0.1"; then
      echo "fleet ready on https://127.0.0.1:$port ($DIR)"
      wait "$(cat "$DIR/haproxy.pid")"
      return
    fi
    sleep 0.1
  done
  echo "fleet.sh: the fleet did not come up; see $DIR" >&2
  exit 1
}

cmd_restart() {
  local i="${1:?instance number}" dir=""
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) dir="$2"; shift ;;
      *) echo "fleet.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
  done
  [ -n "$dir" ] && [ -f "$dir/instance-$i.pid" ] || { echo "fleet.sh: no instance $i in ${dir:-?}" >&2; exit 1; }
  local pid
  pid="$(cat "$dir/instance-$i.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  start_instance "$dir" "$i"
  echo "instance $i restarted (pid $(cat "$dir/instance-$i.pid"))"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  -h|--help|"") usage 0 ;;
  *) echo "fleet.sh: unknown command $1" >&2; usage ;;
esac
