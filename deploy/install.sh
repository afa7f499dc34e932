#!/usr/bin/env bash
# Install everything ccpulse needs to run and test on Debian 12: the Python venv with the project,
# Prometheus and Alertmanager from Debian, and the Kafka broker's jars from Maven Central.
# Idempotent and quiet: it prints a line only for what it actually does.
set -euo pipefail
SCRIPT_NAME=install
. "$(dirname "$0")/lib.sh"

# The venv's interpreter: python3 on the PATH, or CCPULSE_PYTHON, with which a venv made by another
# is made again (without it, any venv of Python >= 3.10 is kept). How the interpreter was built
# matters: Debian's python3.11 (its interpreter linked statically) ran the core ~11 % faster than
# pyenv's default build, which has a shared libpython (README, Performance).
PYTHON=${CCPULSE_PYTHON:-python3}
# --for-tests: also what only the test suite needs
FOR_TESTS=0
[ "${1:-}" = --for-tests ] && FOR_TESTS=1
APT_UPDATED=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "missing Debian packages ($*); run as root or: sudo apt-get install $*"
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  # Debian's maintainer scripts would start the packaged services (on all interfaces, with the
  # system config); the stack runs its own instances, so forbid service starts during the install.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  [ "$created" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install $* failed (exit $rc)"
}

system_packages() {
  local missing=()
  command -v "$PYTHON" >/dev/null || die "$PYTHON is required (CCPULSE_PYTHON names another interpreter)"
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
  { command -v alertmanager || command -v prometheus-alertmanager; } >/dev/null && command -v amtool >/dev/null \
    || missing+=(prometheus-alertmanager)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v setsid >/dev/null || missing+=(util-linux)
  if [ "$FOR_TESTS" = 1 ]; then
    command -v valgrind >/dev/null || missing+=(valgrind)  # the benchmark's instruction count
  fi
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# The interpreter a Python prints itself as: its installation and version (a venv prints its base's);
# nothing when there is none (no venv yet).
interpreter() { "$1" -c 'import sys; print(sys.base_prefix, sys.version.split()[0])' 2>/dev/null || true; }

python_env() {
  local stamp="$ROOT/.venv/.ccpulse-installed" want have
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
  have=$(interpreter "$VENV_PY")
  if [ -z "$have" ] || ! "$VENV_PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
     || { [ -n "${CCPULSE_PYTHON:-}" ] && [ "$have" != "$(interpreter "$PYTHON")" ]; }; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than Python 3.10"
    say "creating the Python venv .venv with $PYTHON ($(interpreter "$PYTHON"))"
    "$PYTHON" -m venv --clear "$ROOT/.venv"
    rm -f "$stamp"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing ccpulse and its dependencies into .venv (pip)"
    "$VENV_PY" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]"
    printf '%s\n' "$want" >"$stamp"
  fi
}

kafka_jars() {
  local libs tmp
  libs=$(kafka_libs)
  [ -f "$libs/.complete" ] && return 0
  say "fetching Apache Kafka $(kafka_version) jars with Maven into $libs"
  mkdir -p "$(dirname "$libs")"
  tmp="$libs.partial.$$"
  rm -rf "$tmp"
  mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 \
    || { show_tail "$tmp.log"; die "Maven could not fetch the Kafka jars (log: $tmp.log)"; }
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven finished but no kafka_2.13 jar is in $tmp"
  rm -rf "$libs" "$tmp.log"
  mv "$tmp" "$libs"
  touch "$libs/.complete"
}

system_packages
python_env
kafka_jars
