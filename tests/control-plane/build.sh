#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from the Go module proxy, once, into a
# cache directory outside the repository keyed by the Kubernetes version (and go.sum, so a
# regenerated go.mod rebuilds). Prints the bin directory on stdout; progress goes to stderr.
#   build.sh          the control plane
#   build.sh --node   also kube-scheduler, kubelet and kube-proxy (start.sh --node)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"

command -v go >/dev/null || { echo "build.sh: the Go toolchain is required (go not on PATH)" >&2; exit 1; }

sum=$(sha256sum "$here/go.sum" | cut -c1-12)
cache_root=${SIP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sip-operator}
bin="$cache_root/control-plane/${KUBE_VERSION}-${sum}/bin"
tools=(etcd kube-apiserver kube-controller-manager)
[ "${1:-}" = "--node" ] && tools+=(kube-scheduler kubelet kube-proxy)

missing=0
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || missing=1; done
if [ "$missing" = 0 ]; then echo "$bin"; exit 0; fi

mkdir -p "$bin"
# One build at a time per cache directory (parallel test runs share it).
exec 9>"$bin/.lock"
flock 9
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $v.gitVersion=${KUBE_VERSION} -X $v.gitMajor=1 -X $v.gitMinor=${minor}"
  ldflags+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
done
declare -A pkg=(
  [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
)
for t in "${tools[@]}"; do
  [ -x "$bin/$t" ] && continue
  echo "build.sh: building $t ${KUBE_VERSION} into $bin (first time only; several minutes)" >&2
  start=$(date +%s)
  (cd "$here" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -ldflags "$ldflags" -o "$bin/$t.tmp" "${pkg[$t]}")
  mv "$bin/$t.tmp" "$bin/$t"
  echo "build.sh: $t built in $(( $(date +%s) - start ))s" >&2
done
echo "$bin"
