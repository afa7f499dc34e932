#!/usr/bin/env bash
# The main job on one machine: Kafka, the spec's topics, Prometheus + Alertmanager, one ccpulse
# worker and the simulator, until Ctrl-C; then everything is stopped. Servers left over from an
# earlier run that was killed are stopped first. Logs: .run/logs/.
#   deploy/demo.sh [--kafka-port 9092] [--prometheus-port 9090] [--alertmanager-port 9093]
#                  [--web-port 6066]
set -euo pipefail
SCRIPT_NAME=demo
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

KAFKA_PORT=9092 PROM_PORT=9090 AM_PORT=9093 WEB_PORT=6066
while [ $# -gt 0 ]; do
  case $1 in
    --kafka-port) KAFKA_PORT=${2:?}; shift 2 ;;
    --prometheus-port) PROM_PORT=${2:?}; shift 2 ;;
    --alertmanager-port) AM_PORT=${2:?}; shift 2 ;;
    --web-port) WEB_PORT=${2:?}; shift 2 ;;
    *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
RUN="$ROOT/.run"
LOGS="$RUN/logs"
CCPULSE="$ROOT/.venv/bin/ccpulse"
WORKER_PID="$RUN/worker.pid" WORKER_MARK="$CCPULSE worker"
SIM_PID="$RUN/simulate.pid" SIM_MARK="$CCPULSE simulate"

stop_everything() {
  stop_server "$SIM_PID" "$SIM_MARK" simulator 10
  stop_server "$WORKER_PID" "$WORKER_MARK" worker 30
  "$ROOT/deploy/prometheus.sh" stop --run-dir "$RUN/prometheus"
  "$ROOT/deploy/kafka.sh" stop --run-dir "$RUN/kafka"
}

# Accepted and rejected event counts from the worker's /metrics, e.g. "1234 5". It asks for that one
# series (`name[]`): the whole page of every region's series is megabytes and takes seconds to render
# once the demo has run a few minutes. It ignores Ctrl-C (the script's trap handles that), so an
# interrupt never shows a Python traceback.
event_counts() (
  trap '' INT
  python3 - "http://127.0.0.1:$WEB_PORT/metrics?name%5B%5D=ccpulse_events_total" <<'PY'
import re, sys, urllib.request
counts = {"accepted": 0.0, "rejected": 0.0}
try:
    text = urllib.request.urlopen(sys.argv[1], timeout=2).read().decode()
except Exception:
    sys.exit(1)
for match in re.finditer(r'^ccpulse_events_total\{[^}]*result="(\w+)"[^}]*\} (\S+)$', text, re.M):
    if match[1] in counts:
        counts[match[1]] += float(match[2])
print(int(counts["accepted"]), int(counts["rejected"]))
PY
)

"$ROOT/deploy/install.sh" || die "deploy/install.sh failed (exit $?)"
"$CCPULSE" worker --help >/dev/null 2>&1 \
  || die "'ccpulse worker' is not available in this checkout yet (ccpulse worker --help failed)"
"$CCPULSE" simulate --help >/dev/null 2>&1 \
  || die "'ccpulse simulate' is not available in this checkout yet (ccpulse simulate --help failed)"

stop_everything
mkdir -p "$LOGS"
ln -sfn ../kafka/logs "$LOGS/kafka"
ln -sfn ../prometheus/logs "$LOGS/prometheus"
trap 'echo; say "stopping"; stop_everything; say "stopped everything"' EXIT
trap 'exit 130' INT TERM

"$ROOT/deploy/kafka.sh" start --port "$KAFKA_PORT" --run-dir "$RUN/kafka"
export CCPULSE_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
"$CCPULSE" topics apply
"$ROOT/deploy/prometheus.sh" start --port "$PROM_PORT" --alertmanager-port "$AM_PORT" \
  --run-dir "$RUN/prometheus" --targets "127.0.0.1:$WEB_PORT"

rm -rf "$RUN/worker-data"  # Faust's local data belongs to the broker that was just thrown away
start_server "$WORKER_PID" "$LOGS/worker.log" "$CCPULSE" worker --web-port "$WEB_PORT" \
  --datadir "$RUN/worker-data"
wait_for "worker /metrics on 127.0.0.1:$WEB_PORT" 120 "$WORKER_PID" "$WORKER_MARK" \
  http_ok "http://127.0.0.1:$WEB_PORT/metrics" || { show_tail "$LOGS/worker.log"; die "the worker did not start"; }
say "worker running (pid $(cat "$WORKER_PID"), log $LOGS/worker.log)"
start_server "$SIM_PID" "$LOGS/simulate.log" "$CCPULSE" simulate --kafka --rate 200 --duration 0 --seed 1
say "simulator producing live traffic to cc.events, 200 events/s on a day's average (fewer at night, more at the" \
  "morning peak; pid $(cat "$SIM_PID"), log $LOGS/simulate.log)"

cat <<TXT

  Worker metrics      http://127.0.0.1:$WEB_PORT/metrics
  Prometheus          http://127.0.0.1:$PROM_PORT   (try: ccpulse_service_level_ratio{region="ALL",window="15m"})
  Alertmanager        http://127.0.0.1:$AM_PORT
  Metric topic        .venv/bin/python -m streams.tail cc.metrics --bootstrap 127.0.0.1:$KAFKA_PORT
  SLA alerts topic    .venv/bin/python -m streams.tail cc.alerts --bootstrap 127.0.0.1:$KAFKA_PORT
  Logs                $LOGS/

  Progress every 10 s below; Ctrl-C stops everything.

TXT

previous=0
while true; do
  sleep 10
  for name in worker simulator; do
    pidfile=$WORKER_PID mark=$WORKER_MARK log="$LOGS/worker.log"
    [ "$name" = simulator ] && pidfile=$SIM_PID mark=$SIM_MARK log="$LOGS/simulate.log"
    live_pid "$pidfile" "$mark" >/dev/null || { show_tail "$log"; die "the $name exited; see $log"; }
  done
  if read -r accepted rejected < <(event_counts); then
    say "$(date +%T) events accepted: $accepted (+$((accepted - previous)) in 10 s), rejected: $rejected"
    previous=$accepted
  else
    say "$(date +%T) /metrics did not answer"
  fi
done
