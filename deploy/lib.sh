# Shared helpers of the deploy/*.sh scripts (sourced, not run): paths, ports, pid files, waiting.
# Servers are started in their own session (setsid) so that Ctrl-C in a terminal reaches only the
# script, which then stops them in order; each one is tracked by a pid file in its run folder.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${CCPULSE_CACHE:-$HOME/.cache/ccpulse}
VENV_PY="$ROOT/.venv/bin/python"

say() { printf '%s: %s\n' "${SCRIPT_NAME:-$(basename "$0" .sh)}" "$*"; }
die() { say "error: $*" >&2; exit 1; }

# The Kafka version lives in one place: the pom that fetches the jars.
kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/kafka/pom.xml"; }
kafka_libs() { printf '%s/kafka-%s/libs' "$CACHE_DIR" "$(kafka_version)"; }

# A TCP port on 127.0.0.1 that nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_in_use() {
  python3 - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    s.settimeout(1)
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

# True when an HTTP GET of the URL answers 200 within two seconds.
http_ok() {
  python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

# The pid recorded in a pid file if that process is alive and is the one we started (its command
# line names the run folder), so a recycled pid is never signalled.
live_pid() {
  local pidfile=$1 marker=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  printf '%s\n' "$pid"
}

# Start a command as a background server in its own session; its output goes to LOGFILE.
start_server() {
  local pidfile=$1 logfile=$2
  shift 2
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  printf '%s\n' "$!" >"$pidfile"
}

# Stop the server of a pid file: SIGTERM, wait up to GRACE seconds, then SIGKILL.
stop_server() {
  local pidfile=$1 marker=$2 name=$3 grace=${4:-30} pid i
  if pid=$(live_pid "$pidfile" "$marker"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 5; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name (pid $pid) did not stop within ${grace}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

# Poll a command until it succeeds; fail when the deadline passes or the server process dies.
# usage: wait_for WHAT SECONDS PIDFILE MARKER COMMAND...
wait_for() {
  local what=$1 seconds=$2 pidfile=$3 marker=$4 deadline
  shift 4
  deadline=$((SECONDS + seconds))
  until "$@"; do
    live_pid "$pidfile" "$marker" >/dev/null || { say "error: $what: the process exited" >&2; return 1; }
    ((SECONDS < deadline)) || { say "error: $what: not ready after ${seconds}s" >&2; return 1; }
    sleep 0.5
  done
}

# Print the last lines of a log file to stderr, framed, to explain a failure.
show_tail() {
  local file=$1 lines=${2:-40}
  [ -f "$file" ] || return 0
  printf -- '--- last %s lines of %s ---\n' "$lines" "$file" >&2
  tail -n "$lines" "$file" >&2
  printf -- '---\n' >&2
}
