#!/usr/bin/env bash
# Puts the local images into a containerd, where the kubelet's CRI finds them (namespace
# k8s.io): tests/images/import.sh CONTAINERD_ADDRESS [NAME...] (names as for build.sh, none:
# all). Builds what is missing, imports what that containerd lacks, and prints build.sh's
# "NAME REF TARBALL" per image. The chart must then name these REFs with imagePullPolicy
# IfNotPresent or Never: there is no registry to pull from.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: import.sh CONTAINERD_ADDRESS [operator|kamailio|pause...]" >&2; exit 2; }
sock=$1; shift
ctr=(ctr --address "$sock" --namespace k8s.io)

built=$("$here/build.sh" "$@")
present=$("${ctr[@]}" images ls -q)
while read -r name ref tarball; do
  if grep -qxF "$ref" <<<"$present"; then
    echo "import.sh: $ref is already in $sock" >&2
  else
    # The archive names itself (io.containerd.image.name): no --base-name needed. Up to three
    # tries: once, into a containerd whose CRI plugin was still starting, the import said
    # "done" and the image was not listed afterwards.
    for try in 1 2 3; do
      echo "import.sh: importing $tarball (try $try)" >&2
      "${ctr[@]}" images import "$tarball" >&2
      if "${ctr[@]}" images ls -q | grep -qxF "$ref"; then
        break
      fi
      [ "$try" -lt 3 ] || { echo "import.sh: $tarball imported 3 times, but never listed as $ref" >&2; exit 1; }
      echo "import.sh: $tarball imported, but not listed as $ref; again in 2 s" >&2
      sleep 2
    done
  fi
  echo "$name $ref $tarball"
done <<<"$built"
