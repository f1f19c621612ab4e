#!/usr/bin/env bash
# Installs exactly what gridbench's build and tests need on Debian 12, as root:
# compiler, cmake, ninja and the Debian libraries. Idempotent: it installs only
# what is missing, and runs apt-get update only when something is.
# CUDA is not installed here: where /usr/local/cuda/bin/nvcc exists, the build
# compiles the CUDA code (GRIDBENCH_CUDA=AUTO); elsewhere it leaves it out.
#
# --test-tools also installs the programs that some tests run against (slurm-wlm
# and munge for tests/cluster/slurm_test.sh, prometheus for promtool and the scrape
# in tests/integration/metrics_prometheus_test.sh, chromium for the dashboard's
# browser test tests/dashboard/browser_test.cc). gridbench itself
# does not need them, and their failure to install is a warning: those tests then
# skip and say why. The tests start their own daemons on private sockets and
# ports; they use none of the packages' services (where systemd runs, Debian's
# packages start munge and prometheus services of their own).
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config git
  libsqlite3-dev sqlite3
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev libpcre2-dev libicu-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libgtest-dev libgmock-dev zlib1g-dev
)
TEST_TOOLS=(slurm-wlm munge prometheus chromium)

with_test_tools=0
for arg in "$@"; do
  case "$arg" in
    --test-tools) with_test_tools=1 ;;
    *) echo "install-deps: unknown argument '$arg' (known: --test-tools)" >&2; exit 2 ;;
  esac
done

missing_of() {  # prints the packages of "$@" that are not installed
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      echo "$p"
    fi
  done
}

mapfile -t missing < <(missing_of "${PACKAGES[@]}")
tools_missing=()
if [ "$with_test_tools" -eq 1 ]; then mapfile -t tools_missing < <(missing_of "${TEST_TOOLS[@]}"); fi

if [ "${#missing[@]}" -eq 0 ] && [ "${#tools_missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present$([ "$with_test_tools" -eq 1 ] && echo ", and the test tools")"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    if [ "${#missing[@]}" -eq 0 ]; then
      echo "install-deps: warning: test tools missing (${tools_missing[*]}) and not root: their tests will skip" >&2
      exit 0
    fi
    echo "install-deps: missing ${missing[*]}; run as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${#tools_missing[@]}" -gt 0 ]; then
  echo "install-deps: installing the test tools ${tools_missing[*]}"
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${tools_missing[@]}"; then
    echo "install-deps: warning: could not install ${tools_missing[*]}: the Slurm and Prometheus tests will skip" >&2
  fi
fi
