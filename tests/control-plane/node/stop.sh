#!/usr/bin/env bash
# Removes what start.sh --node made beyond its processes (stop.sh has stopped those and runs
# this): the container processes (everything in the cgroup /sipnode), containerd's shims, every
# mount under STATE_DIR, the pods' network namespaces, kube-proxy's and our iptables rules, the
# bridge, and the cgroups; restores ip_forward. Safe to run twice, and after a failed start.
#   node/stop.sh STATE_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/node.env"
dir=$(cd "${1:?usage: node/stop.sh STATE_DIR}" && pwd)
node_dir=$dir/node
[ -d "$node_dir" ] || exit 0

# A start that failed because another node holds the bridge made nothing global: leave that
# node's network alone.
owns_network=0
grep -qx "bridge $NODE_BRIDGE" "$node_dir/made" 2>/dev/null && owns_network=1

# Container processes: whatever is left in the node's cgroups (runc puts them there). Every
# process is in one cgroup of each hierarchy: one hierarchy tells them all.
cg=/sys/fs/cgroup/pids/sipnode
[ -d "$cg" ] || cg=/sys/fs/cgroup/memory/sipnode
procs() { [ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u; }
deadline=$(( $(date +%s) + 10 ))
while [ -n "$(procs)" ] && [ "$(date +%s)" -lt "$deadline" ]; do
  procs | xargs -r kill -KILL 2>/dev/null
  sleep 0.2
done
[ -z "$(procs)" ] || echo "node/stop.sh: processes survive in /sipnode: $(procs | tr '\n' ' ')" >&2

# The shims' sockets: containerd 1.6 puts them in /run/containerd/s whatever its state
# directory; each task's bundle records its shim's address.
shim_sockets=()
for f in "$node_dir"/containerd/state/io.containerd.runtime.v2.task/*/*/address; do
  [ -r "$f" ] && shim_sockets+=("$(sed 's|^unix://||' "$f")")  # one address, no newline
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

# Mounts under the state directory (container root filesystems, shm, pod volumes), deepest first.
mounts() { awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
for m in $(mounts); do
  m=$(printf '%b' "$m")  # mountinfo escapes spaces as \040
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "node/stop.sh: cannot unmount $m" >&2
done

if [ "$owns_network" = 0 ]; then : > "$node_dir/made"; exit 0; fi

# The pods' network namespaces: the ones holding an address of the pod subnet.
prefix=${POD_CIDR%.*}.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
  if ip -n "$ns" -4 -o addr show 2>/dev/null | grep -q " inet ${prefix//./\\.}"; then
    ip netns delete "$ns" 2>/dev/null || echo "node/stop.sh: cannot delete network namespace $ns" >&2
  fi
done

# kube-proxy's rules (its own cleanup), then ours.
if [ -x "$(cat "$node_dir/bin" 2>/dev/null)/kube-proxy" ]; then
  "$(cat "$node_dir/bin")/kube-proxy" --cleanup >/dev/null 2>&1
fi
# The kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), which
# kube-proxy --cleanup leaves: every KUBE- chain is this node's, as nothing else here makes them.
for cmd in iptables ip6tables; do
  command -v "$cmd" >/dev/null || continue
  for table in filter nat mangle raw; do
    "$cmd" -t "$table" -S 2>/dev/null | awk '/^-A [A-Z]+ .*-j KUBE-/ && $2 !~ /^KUBE-/' | sed 's/^-A/-D/' |
      while read -r rule; do eval "$cmd -t $table $rule" 2>/dev/null; done
    for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      "$cmd" -t "$table" -F "$chain" 2>/dev/null
    done
    for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      "$cmd" -t "$table" -X "$chain" 2>/dev/null
    done
  done
done
while iptables -D FORWARD -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -m comment --comment sip-operator-test-node -j DROP 2>/dev/null; do :; done
while iptables -D FORWARD -o "$NODE_BRIDGE" ! -i "$NODE_BRIDGE" -m comment --comment sip-operator-test-node -j DROP 2>/dev/null; do :; done

ip link delete "$NODE_BRIDGE" 2>/dev/null
if [ -s "$node_dir/ip_forward.orig" ]; then
  cat "$node_dir/ip_forward.orig" > /proc/sys/net/ipv4/ip_forward
  rm -f "$node_dir/ip_forward.orig"
fi

# The cgroups, leaves first (a cgroup with children or tasks cannot be removed).
if grep -qx "cgroup sipnode" "$node_dir/made" 2>/dev/null; then
  for h in /sys/fs/cgroup/*/sipnode; do
    find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
  done
fi
: > "$node_dir/made"
exit 0
