#!/usr/bin/env bash
# Installs exactly what gridbench's build and tests need on Debian 12, as root:
# compiler, cmake, ninja and the Debian libraries. Idempotent: it installs only
# what is missing, and runs apt-get update only when something is.
# CUDA is not installed here: where /usr/local/cuda/bin/nvcc exists, the build
# compiles the CUDA code (GRIDBENCH_CUDA=AUTO); elsewhere it leaves it out.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config git
  libsqlite3-dev sqlite3
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev libpcre2-dev libicu-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libgtest-dev libgmock-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing ${missing[*]}; run as root" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
