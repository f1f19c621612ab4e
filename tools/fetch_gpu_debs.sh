#!/usr/bin/env bash
# tools/fetch_gpu_debs.sh [DIR]: downloads (apt-get download, on this Debian 12
# machine) the Debian packages an engine-only build needs and a GPU machine may lack:
# nlohmann-json, GoogleTest, CLI11, OpenSSL, PCRE2 and ICU headers and libraries, and
# pkgconf. scripts/gpu-check.sh unpacks them (dpkg-deb -x, or ar + tar) into its
# build folder and points CMake and pkg-config at them. DIR (default third_party/debs,
# ignored by git) is what a device run carries: about 27 MB of .deb files.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/third_party/debs}"
mkdir -p "$dir"
cd "$dir"
pkgs=(nlohmann-json3-dev libgtest-dev libcli11-dev libssl-dev libssl3 libpcre2-dev libpcre2-8-0 libpcre2-16-0
      libpcre2-32-0 libpcre2-posix3 libicu-dev libicu72 icu-devtools pkgconf pkgconf-bin libpkgconf3)
# apt-get download writes into the current folder; as root it warns that _apt cannot
# write there, which is harmless.
apt-get download "${pkgs[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
missing=0
for p in "${pkgs[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || { echo "fetch_gpu_debs: $p was not downloaded" >&2; missing=1; }
done
du -sh "$dir"
exit "$missing"
