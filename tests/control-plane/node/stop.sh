#!/usr/bin/env bash
# Removes what start.sh --node made beyond its processes (stop.sh has stopped those and runs
# this), each only if STATE_DIR/node/made records that this node made it: the container
# processes (everything in the cgroup /sipnode), containerd's shims and their sockets, every
# mount under STATE_DIR, the pods' network namespaces and CNI cache files, the kubelet's log
# links, the iptables rules (every KUBE- chain: start.sh refuses to start where any existed),
# the bridge and the cgroups; restores the kernel settings it changed. Safe to run twice, and
# after a failed start. Exits 1 if something could not be removed (and keeps the record of it,
# so that another run can retry).
#   node/stop.sh STATE_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/node.env"
dir=$(cd "${1:?usage: node/stop.sh STATE_DIR}" && pwd)
node_dir=$dir/node
[ -d "$node_dir" ] || exit 0
made() { grep -qx "$1" "$node_dir/made" 2>/dev/null; }
failed=0
warn() { echo "node/stop.sh: $*" >&2; failed=1; }

# Container processes: whatever is left in the node's cgroups (runc puts them there). Every
# process is in one cgroup of each hierarchy: one hierarchy tells them all.
if made "cgroup sipnode"; then
  cg=/sys/fs/cgroup/pids/sipnode
  [ -d "$cg" ] || cg=/sys/fs/cgroup/memory/sipnode
  procs() { [ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u; }
  deadline=$(( $(date +%s) + 10 ))
  while [ -n "$(procs)" ] && [ "$(date +%s)" -lt "$deadline" ]; do
    procs | xargs -r kill -KILL 2>/dev/null
    sleep 0.2
  done
  [ -z "$(procs)" ] || warn "processes survive in /sipnode: $(procs | tr '\n' ' ')"
fi

# This containerd's tasks (pod sandboxes and containers): their shims' sockets, which
# containerd 1.6 puts in /run/containerd/s whatever its state directory, and their ids, which
# name the CNI cache files.
tasks=$node_dir/containerd/state/io.containerd.runtime.v2.task
shim_sockets=()
task_ids=()
for t in "$tasks"/*/*/; do
  [ -d "$t" ] || continue
  task_ids+=("$(basename "$t")")
  [ -r "$t/address" ] && shim_sockets+=("$(sed 's|^unix://||' "$t/address")")  # no newline
done

# The shims of this node's containerd (they name its socket on their command line).
for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
  case $cmd in *containerd-shim*"$node_dir/containerd/"*) kill -KILL "${p#/proc/}" 2>/dev/null ;; esac
done
for sock in "${shim_sockets[@]}"; do
  case $sock in /run/containerd/s/*) rm -f "$sock" ;; esac
done
# ...and ctr's FIFOs and runc state of the tasks tests/images/check-contract.sh ran: only
# directories left empty (another containerd's are not).
rmdir /run/containerd/s /run/containerd/fifo/* /run/containerd/fifo /run/containerd/runc/* \
  /run/containerd/runc /run/containerd 2>/dev/null

# libcni's cache of each sandbox's results (only a CNI DEL removes it; the pods were killed).
for id in "${task_ids[@]}"; do
  rm -f /var/lib/cni/results/*-"$id"-*
done
# The kubelet's /var/log/containers links into this node's pod logs.
for l in /var/log/containers/*.log; do
  [ -L "$l" ] && case $(readlink "$l") in "$dir"/*) rm -f "$l" ;; esac
done

# Mounts under the state directory (container root filesystems, shm, pod volumes), deepest first.
mounts() { awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
for m in $(mounts); do
  m=$(printf '%b' "$m")  # mountinfo escapes spaces as \040
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "cannot unmount $m"
done

if made "bridge $NODE_BRIDGE"; then
  # The pods' network namespaces: the ones holding an address of the pod subnet.
  prefix=${POD_CIDR%.*}.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    if ip -n "$ns" -4 -o addr show 2>/dev/null | grep -q " inet ${prefix//./\\.}"; then
      ip netns delete "$ns" 2>/dev/null || warn "cannot delete network namespace $ns"
    fi
  done

  # kube-proxy's and the kubelet's chains (KUBE-SERVICES, KUBE-FIREWALL, ...): every KUBE-
  # chain in every table is this node's, as start.sh refuses to start where any existed.
  # (Not `kube-proxy --cleanup`: it also flushes every IPVS rule of the host.)
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle raw; do
      "$cmd" -t "$table" -S 2>/dev/null | awk '/^-A [A-Z]+ .*-j KUBE-/ && $2 !~ /^KUBE-/' | sed 's/^-A/-D/' |
        while read -r rule; do eval "$cmd -t $table $rule" 2>/dev/null; done
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null
      done
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || warn "cannot delete $cmd chain $table/$chain"
      done
    done
  done
  while forward_drop -D -i -o 2>/dev/null; do :; done
  while forward_drop -D -o -i 2>/dev/null; do :; done

  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link delete "$NODE_BRIDGE" 2>/dev/null || warn "cannot delete the bridge $NODE_BRIDGE"
  fi
fi

# The kernel settings start.sh and the kubelet changed (ip_forward, bridge-nf-call-iptables,
# vm.overcommit_memory, kernel.panic, ...), back to what they were.
if [ -s "$node_dir/sysctl.orig" ]; then
  while read -r key value; do
    echo "$value" > "/proc/sys/$key" 2>/dev/null || warn "cannot restore $key to $value"
  done < "$node_dir/sysctl.orig"
fi

# The cgroups, leaves first (a cgroup with children or tasks cannot be removed).
if made "cgroup sipnode"; then
  for h in /sys/fs/cgroup/*/sipnode; do
    [ -d "$h" ] || continue
    find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || warn "cannot remove the cgroup $h"
  done
fi

if [ "$failed" = 0 ]; then
  : > "$node_dir/made"
  rm -f "$node_dir/sysctl.orig"
fi
exit "$failed"
