#!/usr/bin/env bash
# The whole test suite from a fresh machine: install what is missing, lint, then pytest (the
# integration fixtures start and stop their own Kafka and Prometheus on free ports).
#   deploy/test.sh [pytest arguments...]      e.g. deploy/test.sh -m 'not integration' -x
set -euo pipefail
SCRIPT_NAME=test
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/deploy/install.sh" --for-tests || die "deploy/install.sh failed (exit $?)"
say "ruff check ."
"$ROOT/.venv/bin/ruff" check --quiet . || die "ruff found problems"
say "pytest $*"
rc=0
"$VENV_PY" -m pytest -p no:cacheprovider "$@" || rc=$?
case $rc in
  0) ;;
  5) die "pytest collected no tests" ;;
  *) die "pytest failed (exit $rc)" ;;
esac
