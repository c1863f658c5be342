#!/usr/bin/env bash
# Builds container images without Docker or a registry: tests/images/build.sh [NAME...], NAME
# one of operator, kamailio, pause (none: all three). Each becomes an OCI image layout in a tar
# (what `ctr -n k8s.io images import` reads) in a cache outside the repository, named by a hash
# of its inputs and built only when that file is missing. Prints "NAME REF TARBALL" per image;
# progress goes to stderr.
#
# A plain `ctr images import TARBALL` names the image REF: index.json carries REF in
# io.containerd.image.name, which containerd's importer takes verbatim and before anything
# else, so --base-name (which only renames or filters the tag-only
# org.opencontainers.image.ref.name) changes nothing.
#
# Kamailio's packages come from the Debian archive apt is set up with (or
# $SIP_OPERATOR_DEBIAN_MIRROR); the operator from `cargo build --release` in this repository.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${SIP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sip-operator}/images
registry=docker.io/sip-operator
suite=bookworm
# netbase: /etc/protocols, without which Kamailio cannot set TCP socket options (TCP_NODELAY).
kamailio_packages=kamailio,netbase
# Every timestamp in the images (file times, created, history): what decides reuse is the
# hash key, so the build time should not show.
created=1970-01-01T00:00:00Z

log() { echo "build.sh: $*" >&2; }
die() { log "$*"; exit 1; }

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(operator kamailio pause)
for n in "${names[@]}"; do
  case $n in operator | kamailio | pause) ;; *) die "unknown image '$n' (operator, kamailio or pause)" ;; esac
done

need=()
command -v umoci >/dev/null || need+=(umoci)
command -v jq >/dev/null || need+=(jq)
command -v flock >/dev/null || need+=(util-linux)
command -v strip >/dev/null || need+=(binutils)
[ -r /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/lib/"$(gcc -print-multiarch 2>/dev/null || echo none)"/libc.a ] || need+=(libc6-dev)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
arch=$(dpkg --print-architecture) # amd64, arm64: Debian's names are OCI's for these

discard() { # DIR
  # debootstrap mounts /proc in its target; should it die before unmounting it, rm must not
  # descend into it (hence also --one-file-system).
  awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$1"
}
mkdir -p "$cache"
# A build holds a lock on its work directory's .lock file, and so does every process it starts
# (they inherit it). A free one, not brand new, is what a build killed before its EXIT trap
# (SIGKILL) left: its directory goes now.
while IFS= read -r -d '' l; do
  exec {fd}>>"$l"
  if flock -n "$fd"; then discard "${l%.lock}"; rm -f "$l"; fi
  exec {fd}>&-
done < <(find "$cache" -maxdepth 1 -name '.tmp.*.lock' -mmin +1 -print0)
work=$(mktemp -d "$cache/.tmp.XXXXXX") # on the cache's filesystem, so that mv is atomic
exec {work_lock}>"$work.lock"
flock "$work_lock"
trap 'discard "$work"; rm -f "$work.lock"' EXIT

# The hash key: the contents (not the names) of the files, then the extra strings.
key_of() {
  local f
  for f in "${files[@]}"; do sha256sum <"$f"; done
  printf '%s\n' "${extra[@]}"
}
hash12() { key_of | sha256sum | cut -c1-12; }

# tar options for reproducible archives: sorted names, fixed times, no per-run pax header names.
tar_opts=(--format=posix '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime'
  --mtime=@0 --numeric-owner)

# layer ROOTFS OUT [tar options]: everything under ROOTFS, with names relative to it.
layer() {
  local root=$1 out=$2; shift 2
  (cd "$root" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z) |
    tar -C "$root" -cf "$out" --null --no-recursion --files-from=- "${tar_opts[@]}" "$@"
}

# pack NAME REPOSITORY TAG ROOTFS OUT [umoci config options]: the OCI archive of one layer.
pack() {
  local name=$1 ref="$registry/$2:$3" tag=$3 root=$4 out=$5; shift 5
  local oci="$work/$name.oci" tmp="$work/$name.tar"
  case $name in
    kamailio) layer "$root" "$work/$name.layer" ;; # owners as Debian's packages set them
    *) layer "$root" "$work/$name.layer" --owner=0 --group=0 ;;
  esac
  umoci init --layout "$oci"
  umoci new --image "$oci:$tag"
  umoci raw add-layer --image "$oci:$tag" --history.created "$created" \
    --history.created_by "tests/images/build.sh $name" "$work/$name.layer"
  umoci config --image "$oci:$tag" --created "$created" --history.created "$created" \
    --history.created_by "tests/images/build.sh $name (config)" \
    --author "sip-operator tests/images/build.sh" --os linux --architecture "$arch" "$@"
  umoci gc --layout "$oci"
  jq -c --arg ref "$ref" '.manifests[0].annotations["io.containerd.image.name"] = $ref' \
    "$oci/index.json" >"$oci/index.json.new"
  mv "$oci/index.json.new" "$oci/index.json"
  # index.json first: ref_of reads only up to it.
  tar -C "$oci" -cf "$tmp" --sort=name "${tar_opts[@]}" --owner=0 --group=0 --mode=a+r \
    index.json oci-layout blobs
  mv "$tmp" "$out"
  log "$name: $ref in $out ($(du -h "$out" | cut -f1))"
}

ref_of() {
  tar -xOf "$1" --occurrence=1 index.json | jq -r '.manifests[0].annotations["io.containerd.image.name"]'
}

etc_files() { # ROOTFS: the users and groups the images run as, numerically and by name
  install -d -m 0755 "$1/etc"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$1/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$1/etc/group"
  chmod 0644 "$1/etc/passwd" "$1/etc/group"
}

# prepare_NAME sets key (and whatever build_NAME needs); build_NAME OUT builds the archive.
prepare_operator() {
  # The release build's target directory is a cache outside the repository (unless
  # CARGO_TARGET_DIR names one): CI builds in a fresh clone every time, and rebuilding every
  # dependency in release mode costs ~12 minutes on two cores; with them cached, ~1.
  local target=${CARGO_TARGET_DIR:-${SIP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sip-operator}/release-target}
  log "operator: cargo build --release --locked --bin sip-operator (target $target)"
  local bin
  bin=$(cd "$repo" && CARGO_TARGET_DIR=$target cargo build --release --locked --bin sip-operator \
    --message-format=json-render-diagnostics |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "sip-operator")
           | .executable // empty' | tail -n 1)
  [ -x "$bin" ] || die "operator: cargo named no sip-operator executable"
  # A copy: a later cargo build must not change what gets hashed and packed.
  cp "$bin" "$work/sip-operator.bin"
  files=("$work/sip-operator.bin" "$here/build.sh"); extra=()
  key=$(hash12)
}
build_operator() {
  local root="$work/operator.rootfs" lib src revision
  install -d -m 0755 "$root" "$root/etc/ssl/certs"
  # Debug info is of no use in the image (the Dockerfile strips it too; symbols stay).
  strip --strip-debug -o "$root/sip-operator" "$work/sip-operator.bin"
  chmod 0755 "$root/sip-operator"
  # The binary links glibc dynamically: ship what ldd resolves, at the paths it resolves
  # them to (the loader's default search path), as regular files.
  for lib in $(ldd "$work/sip-operator.bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
                                                 $1 ~ /^\// { print $1 }
                                                 /not found/ { print "MISSING:" $1 }'); do
    [ "${lib#MISSING:}" = "$lib" ] || die "operator: ldd cannot find ${lib#MISSING:}"
    src=$(readlink -f "$lib")
    install -D -m "$(stat -c %a "$src")" "$src" "$root$lib"
  done
  find "$root" -type d -exec chmod 0755 {} +
  etc_files "$root"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  chmod 0644 "$root/etc/nsswitch.conf"
  # The rootfs must be complete on its own: run the binary in it.
  chroot "$root" /sip-operator --version >&2 || die "operator: the binary does not run in its rootfs"
  revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || true)
  # The Dockerfile's runtime image (distroless static, nonroot): its user, entrypoint,
  # port, environment and labels (check-contract.sh compares them).
  pack operator sip-operator "local-$key" "$root" "$1" \
    --config.user 65532:65532 --config.entrypoint /sip-operator --config.exposedports 8080/tcp \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.label org.opencontainers.image.title=sip-operator \
    --config.label "org.opencontainers.image.description=Kubernetes operator that manages SIP domains, profiles and users as custom resources" \
    --config.label org.opencontainers.image.licenses=Apache-2.0 \
    --config.label org.opencontainers.image.source=https://github.com/sip-operator/sip-operator \
    --config.label "org.opencontainers.image.revision=$revision"
}

# The Debian archive apt uses for $suite (a deb822 stanza or a one-line entry), so that
# debootstrap goes through the same mirror or proxy.
apt_mirror() {
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null; echo
  } | awk -v s="$suite" '
    /^[[:space:]]*$/ { if (ok && uri != "") { print uri; exit } uri = ""; ok = 0; next }
    $1 == "URIs:" { uri = $2 }
    $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }'
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v s="$suite" '$1 == "deb" { for (i = 3; i <= NF; i++) if ($i == s && $(i-1) ~ /:\/\//) { print $(i-1); exit } }'
  echo http://deb.debian.org/debian
}
prepare_kamailio() {
  mirror=${SIP_OPERATOR_DEBIAN_MIRROR:-$(apt_mirror)}
  mirror=${mirror%%$'\n'*} # the first found (head would make apt_mirror fail on SIGPIPE)
  files=("$here/build.sh"); extra=("$suite" "$mirror" "$arch" "$kamailio_packages")
  key=$(hash12)
}
build_kamailio() {
  local root="$work/kamailio.rootfs" version start=$SECONDS
  log "kamailio: debootstrap $suite from $mirror (about a minute)"
  debootstrap --variant=minbase --arch="$arch" --include="$kamailio_packages" \
    "$suite" "$root" "$mirror" >&2 || die "kamailio: debootstrap failed"
  # What a container needs not or gets from its runtime (/dev, /proc, resolv.conf, hostname),
  # and what only a package manager or a reader of docs would use.
  rm -rf "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/apt/* "${root:?}"/var/cache/debconf/*-old \
    "${root:?}"/usr/share/doc/* "${root:?}"/usr/share/man/* "${root:?}"/usr/share/info/* \
    "${root:?}"/dev/* "${root:?}"/proc/* "${root:?}"/sys/* "${root:?}"/run/* "${root:?}"/tmp/* \
    "${root:?}"/etc/resolv.conf "${root:?}"/etc/hostname "${root:?}"/var/cache/ldconfig/aux-cache
  find "$root/var/log" -type f -delete
  # No setuid/setgid programs: the pods forbid privilege escalation anyway, and nothing in the
  # image needs to gain a user.
  find "$root" -xdev -type f -perm /6000 -exec chmod ug-s {} +
  chroot "$root" groupadd -g 65532 nonroot
  chroot "$root" useradd -u 65532 -g 65532 -M -d /nonexistent -s /usr/sbin/nologin nonroot
  chroot "$root" kamailio -v >&2 || die "kamailio: kamailio does not run in its rootfs"
  version=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' kamailio)
  log "kamailio: $version, rootfs $(du -sh "$root" | cut -f1) after $((SECONDS - start))s"
  # The tag leads with the upstream version (5.6.3-2 -> 5.6.3), as the chart's default
  # (kamailio-ci:5.6) names the series.
  local upstream=${version#*:}; upstream=${upstream%-*}
  # The chart replaces the command (kamailio -DD -E -f ...); the default is the same foreground
  # Kamailio on Debian's own config.
  pack kamailio kamailio "$upstream-local-$key" "$root" "$1" \
    --config.user 65532:65532 --config.entrypoint kamailio --config.cmd -DD --config.cmd -E \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.label org.opencontainers.image.title=kamailio \
    --config.label "org.opencontainers.image.description=Debian $suite's Kamailio for sip-operator's tests" \
    --config.label "org.opencontainers.image.version=$version"
}

prepare_pause() {
  gcc -static -Os -s -Wall -Wextra -Werror -o "$work/pause.bin" "$here/pause.c"
  files=("$work/pause.bin" "$here/build.sh"); extra=()
  key=$(hash12)
}
build_pause() {
  local root="$work/pause.rootfs"
  install -d -m 0755 "$root"
  install -m 0755 "$work/pause.bin" "$root/pause"
  # Kubernetes' own pause image runs as 65535 (no /etc/passwd needed: numeric).
  pack pause pause "local-$key" "$root" "$1" --config.user 65535:65535 --config.entrypoint /pause
}

for name in "${names[@]}"; do
  "prepare_$name"
  out="$cache/$name-$key.tar"
  if [ ! -s "$out" ]; then
    # One build per image at a time (parallel test runs share the cache); whoever waited
    # finds the archive done.
    exec {lock}>"$cache/.$name.lock"
    flock "$lock"
    if [ ! -s "$out" ]; then
      start=$SECONDS
      "build_$name" "$out"
      log "$name: built in $((SECONDS - start))s"
    fi
    exec {lock}>&-
  fi
  echo "$name $(ref_of "$out") $out"
done
