#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy, once, into a cache directory outside the
# repository keyed by the Helm version (and go.sum, so a regenerated go.mod rebuilds). Prints the
# binary's path on stdout; progress goes to stderr. Whoever needs helm calls this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"

command -v go >/dev/null || { echo "build.sh: the Go toolchain is required (go not on PATH)" >&2; exit 1; }

sum=$(sha256sum "$here/go.sum" | cut -c1-12)
cache_root=${SIP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sip-operator}
dir="$cache_root/helm/${HELM_VERSION}-${sum}"
helm="$dir/helm"
if [ -x "$helm" ]; then echo "$helm"; exit 0; fi

mkdir -p "$dir"
# One build at a time per cache directory (parallel test runs share it).
exec 9>"$dir/.lock"
flock 9
if [ -x "$helm" ]; then echo "$helm"; exit 0; fi

# What Helm's Makefile sets: the release version, and the Kubernetes version its client-go
# speaks (client-go v0.X.Y is Kubernetes 1.X), which `helm lint` and .Capabilities default to.
client_go=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$here/go.mod")
[ -n "$client_go" ] || { echo "build.sh: go.mod names no k8s.io/client-go" >&2; exit 1; }
kube_minor=${client_go#v0.}; kube_minor=${kube_minor%%.*}
ldflags="-s -w"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=${kube_minor}"
done

echo "build.sh: building helm ${HELM_VERSION} into $dir (first time only; a few minutes)" >&2
start=$(date +%s)
tmp=$(mktemp "$dir/helm.XXXXXX")
trap 'rm -f "$tmp"' EXIT
(cd "$here" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -ldflags "$ldflags" -o "$tmp" helm.sh/helm/v3/cmd/helm)
chmod 755 "$tmp"
mv "$tmp" "$helm"
trap - EXIT
echo "build.sh: helm built in $(( $(date +%s) - start ))s" >&2
echo "$helm"
