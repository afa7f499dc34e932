#!/usr/bin/env bash
# Prometheus and Alertmanager for the local stack, on 127.0.0.1, with config and data in a run folder.
#   deploy/prometheus.sh start [--targets HOST:PORT,...] [--port 9090] [--alertmanager-port 9093]
#                              [--interval 5s] [--run-dir .run/prometheus] [--timeout 60]
#   deploy/prometheus.sh targets --targets HOST:PORT,... [--run-dir DIR]   (change scrape targets)
#   deploy/prometheus.sh stop|status [--run-dir DIR]
#   deploy/prometheus.sh render --out FILE --rules-dir DIR --alertmanager HOST:PORT
#                               --targets-file FILE [--interval 5s]         (render the config only)
# Rules: every deploy/prometheus/rules/*.yml. Alertmanager: deploy/alertmanager/alertmanager.yml,
# or a minimal config that only collects alerts when that file does not exist.
set -euo pipefail
SCRIPT_NAME=prometheus
. "$(dirname "$0")/lib.sh"

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

action=${1:-}
shift || true
port=9090
am_port=9093
interval=5s
run_dir="$ROOT/.run/prometheus"
timeout=60
targets=""
out="" rules_dir="" alertmanager="" targets_file=""
while [ $# -gt 0 ]; do
  case $1 in
    --port) port=${2:?}; shift 2 ;;
    --alertmanager-port) am_port=${2:?}; shift 2 ;;
    --interval) interval=${2:?}; shift 2 ;;
    --run-dir) run_dir=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --targets) targets=${2?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --rules-dir) rules_dir=${2:?}; shift 2 ;;
    --alertmanager) alertmanager=${2:?}; shift 2 ;;
    --targets-file) targets_file=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done

render() {
  sed -e "s|@INTERVAL@|$interval|g" -e "s|@RULES_DIR@|$rules_dir|g" \
    -e "s|@ALERTMANAGER@|$alertmanager|g" -e "s|@TARGETS_FILE@|$targets_file|g" \
    "$ROOT/deploy/prometheus/prometheus.yml.in" >"$out.tmp"
  mv "$out.tmp" "$out"
}

if [ "$action" = render ]; then
  [ -n "$out" ] && [ -n "$rules_dir" ] && [ -n "$alertmanager" ] && [ -n "$targets_file" ] || usage
  render
  exit 0
fi

mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)
prom_pid="$run_dir/prometheus.pid"
prom_marker="$run_dir/prometheus-data"
am_pid="$run_dir/alertmanager.pid"
am_marker="$run_dir/alertmanager-data"

# The scrape targets file (file_sd): replaced atomically, so Prometheus never reads half of it.
write_targets() {
  python3 - "$run_dir/targets.json" "$1" <<'PY'
import json, os, sys
path, spec = sys.argv[1], sys.argv[2]
hosts = [t.strip() for t in spec.split(",") if t.strip()]
for host in hosts:
    name, _, port = host.rpartition(":")
    if not name or not port.isdigit():
        sys.exit(f"prometheus: error: scrape target {host!r} is not HOST:PORT")
with open(path + ".tmp", "w") as fh:
    json.dump([{"targets": hosts}] if hosts else [], fh)
os.replace(path + ".tmp", path)
PY
}

alertmanager_config() {
  local own="$ROOT/deploy/alertmanager/alertmanager.yml"
  if [ -f "$own" ]; then
    printf '%s\n' "$own"
    return
  fi
  cat >"$run_dir/alertmanager.yml" <<'YAML'
# Minimal fallback written by deploy/prometheus.sh: alerts are kept and shown, not sent anywhere.
route:
  receiver: keep
receivers:
  - name: keep
YAML
  printf '%s\n' "$run_dir/alertmanager.yml"
}

start() {
  local am_bin am_config
  am_bin=$(command -v alertmanager || command -v prometheus-alertmanager) \
    || die "alertmanager not found; run deploy/install.sh first"
  command -v prometheus >/dev/null && command -v promtool >/dev/null \
    || die "prometheus/promtool not found; run deploy/install.sh first"
  stop_all quiet
  port_in_use "$port" && die "port $port on 127.0.0.1 is already in use; choose --port"
  port_in_use "$am_port" && die "port $am_port on 127.0.0.1 is already in use; choose --alertmanager-port"
  rm -rf "$prom_marker" "$am_marker" "$run_dir/logs"
  mkdir -p "$run_dir/logs"
  write_targets "$targets"
  out="$run_dir/prometheus.yml" rules_dir="$ROOT/deploy/prometheus/rules" \
    alertmanager="127.0.0.1:$am_port" targets_file="$run_dir/targets.json"
  render
  promtool check config "$out" >"$run_dir/logs/promtool.log" 2>&1 \
    || { show_tail "$run_dir/logs/promtool.log"; die "the Prometheus config or a rule file is invalid"; }
  am_config=$(alertmanager_config)
  amtool check-config "$am_config" >"$run_dir/logs/amtool.log" 2>&1 \
    || { show_tail "$run_dir/logs/amtool.log"; die "the Alertmanager config $am_config is invalid"; }

  start_server "$am_pid" "$run_dir/logs/alertmanager.log" "$am_bin" \
    --config.file="$am_config" --storage.path="$am_marker" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address=""
  start_server "$prom_pid" "$run_dir/logs/prometheus.log" prometheus \
    --config.file="$out" --storage.tsdb.path="$prom_marker" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$port"
  printf '%s %s\n' "$port" "$am_port" >"$run_dir/ports"

  if ! wait_for "Alertmanager on 127.0.0.1:$am_port" "$timeout" "$am_pid" "$am_marker" \
      http_ok "http://127.0.0.1:$am_port/-/ready"; then
    show_tail "$run_dir/logs/alertmanager.log"
    stop_all quiet
    die "Alertmanager did not start; logs in $run_dir/logs"
  fi
  if ! wait_for "Prometheus on 127.0.0.1:$port" "$timeout" "$prom_pid" "$prom_marker" \
      http_ok "http://127.0.0.1:$port/-/ready"; then
    show_tail "$run_dir/logs/prometheus.log"
    stop_all quiet
    die "Prometheus did not start; logs in $run_dir/logs"
  fi
  say "Prometheus ready on http://127.0.0.1:$port, Alertmanager on http://127.0.0.1:$am_port" \
    "(scraping: ${targets:-nothing yet}; logs in $run_dir/logs)"
}

stop_all() {
  local prefix=""
  [ "${1:-}" = quiet ] && prefix="stale "
  stop_server "$prom_pid" "$prom_marker" "${prefix}Prometheus" 30
  stop_server "$am_pid" "$am_marker" "${prefix}Alertmanager" 30
}

case $action in
  start) start ;;
  stop) stop_all ;;
  targets)
    [ -f "$run_dir/targets.json" ] || die "no Prometheus run folder at $run_dir; start it first"
    write_targets "$targets"
    say "scrape targets: ${targets:-none}" ;;
  status)
    rc=0
    for name in prometheus alertmanager; do
      pidfile="$run_dir/$name.pid" marker="$run_dir/$name-data"
      if pid=$(live_pid "$pidfile" "$marker"); then say "$name running (pid $pid)"; else say "$name not running"; rc=3; fi
    done
    exit "$rc" ;;
  *) usage ;;
esac
