#!/usr/bin/env bash
# Installs exactly what gridbench's build and tests need on Debian 12, as root:
# compiler, cmake, ninja and the Debian libraries. Idempotent: it installs only
# what is missing, and runs apt-get update only when something is.
# CUDA is not installed here: where /usr/local/cuda/bin/nvcc exists, the build
# compiles the CUDA code (GRIDBENCH_CUDA=AUTO); elsewhere it leaves it out.
#
# --with-chromium (scripts/test.sh passes it) also installs Debian's chromium for
# the dashboard's browser test (tests/dashboard/browser_test.cc). That one is
# best effort: where it cannot be installed the script warns and the test skips.
# On a clean Debian 12 it adds about 30 s (160 packages, after the build's).
set -euo pipefail

WITH_CHROMIUM=0
for arg in "$@"; do
  case "$arg" in
    --with-chromium) WITH_CHROMIUM=1 ;;
    *) echo "install-deps: unknown option $arg (known: --with-chromium)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  g++ cmake ninja-build pkg-config git
  libsqlite3-dev sqlite3
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev libpcre2-dev libicu-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libgtest-dev libgmock-dev zlib1g-dev
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
want_chromium=0
if [ "$WITH_CHROMIUM" -eq 1 ] && ! installed chromium && ! command -v chromium >/dev/null 2>&1; then
  want_chromium=1
fi

if [ "${#missing[@]}" -eq 0 ] && [ "$want_chromium" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; elif [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root" >&2
    exit 1
  else
    echo "install-deps: chromium is not installed and this is not root: the browser test will skip" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || [ "${#missing[@]}" -eq 0 ]
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$want_chromium" -eq 1 ]; then
  echo "install-deps: installing chromium (for the dashboard's browser test)"
  if ! $SUDO apt-get install -y -qq --no-install-recommends chromium; then
    echo "install-deps: chromium could not be installed: the browser test will skip" >&2
  fi
fi
