#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes/ against the Kubernetes
# API schemas with kubernetes-validate (PyPI), strictly (an unknown field is an
# error), for the oldest Kubernetes they are written for (1.27: gRPC probes are GA
# there) and the newest the tool bundles. kubernetes-validate carries the schemas
# of each version in its package: after the install, validation reads no network.
# A negative control first: a manifest with a misspelt field must fail, so that a
# pass means something.
#
# Usage: tools/validate_kubernetes.sh [--venv DIR]
#   --venv DIR  the virtual environment to use, created (and kubernetes-validate
#               installed into it from PyPI) when absent; default
#               ${XDG_CACHE_HOME:-~/.cache}/gridbench/venv-kubernetes
# Run by ctest as Deploy.KubernetesManifests when configured with
# -DGRIDBENCH_KUBERNETES_TESTS=ON.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/gridbench/venv-kubernetes"
VERSION_PIN="kubernetes-validate==1.37.0"
KUBERNETES_VERSIONS=(1.27.0 1.37.0)
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV=$2; shift 2 ;;
    *) echo "validate_kubernetes: unknown argument '$1' (known: --venv DIR)" >&2; exit 2 ;;
  esac
done

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  command -v python3 > /dev/null || { echo "validate_kubernetes: python3 is needed (Debian: python3 python3-venv)" >&2; exit 1; }
  echo "validate_kubernetes: installing $VERSION_PIN into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$VERSION_PIN"
fi
validate=("$VENV/bin/kubernetes-validate" --strict)

manifests=("$ROOT"/deploy/kubernetes/*.yaml)
[ -e "${manifests[0]}" ] || { echo "FAIL: no manifests in $ROOT/deploy/kubernetes" >&2; exit 1; }

# The negative control.
bad=$(mktemp --suffix=.yaml)
trap 'rm -f "$bad"' EXIT
sed 's/containerPort:/containerPrt:/' "$ROOT/deploy/kubernetes/coordinator.yaml" > "$bad"
if "${validate[@]}" --quiet -k "${KUBERNETES_VERSIONS[0]}" "$bad" > /dev/null 2>&1; then
  echo "FAIL: kubernetes-validate accepted a manifest with a misspelt field: it checks nothing" >&2
  exit 1
fi

status=0
for v in "${KUBERNETES_VERSIONS[@]}"; do
  "${validate[@]}" -k "$v" "${manifests[@]}" || status=1
done
if [ $status -eq 0 ]; then
  echo "PASS: ${#manifests[@]} manifest files valid for Kubernetes ${KUBERNETES_VERSIONS[*]}"
fi
exit $status
