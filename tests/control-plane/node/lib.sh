# shellcheck shell=bash disable=SC2154  # sourced: the caller sets the globals named below
# The opt-in node of the test control plane (start.sh --node): sourced by start.sh, which
# provides $dir, $bin, $pki, start_bg, wait_for and free_ports. Everything the node makes is
# under $dir/node (containerd's root and state, runc's state, the kubelet's root, the CNI
# config and its IP allocations, pod logs), but for what is global: the bridge $NODE_BRIDGE,
# the pods' network namespaces (containerd 1.6 puts them in /var/run/netns), the iptables rules
# kube-proxy, the kubelet and node_net_up add, the cgroup /sipnode in each hierarchy, kernel
# settings (node_sysctls), and what the runtime and kubelet write to fixed paths (the shims'
# sockets in /run/containerd/s, libcni's cache in /var/lib/cni, /var/log/containers links).
# node/stop.sh removes or restores all of those.
#
# What these machines are, and what that asks of the configuration:
#  - cgroup v1 in the hybrid layout, no systemd, no swap: the kubelet runs with the cgroupfs
#    driver and failCgroupV1: false; its pods go under the cgroup /sipnode so that stop.sh can
#    find (and kill) every container process there. runc works here; crun refuses the layout.
#  - nothing holds CAP_SYS_RESOURCE, so nothing may lower oom_score_adj: containerd's CRI
#    needs restrict_oom_score_adj = true or every pod sandbox fails.
#  - no registry: the sandbox (pause) image is built locally (tests/images) and imported;
#    pods must use imagePullPolicy Never or IfNotPresent with imported images.
#  - the API server refuses a loopback node IP and the kernel has no dummy links: the node IP
#    is the address of a bridge this script creates, which is also the pods' gateway. The API
#    server listens there (pods reach it through the kubernetes Service), the kubelet and
#    kube-proxy serve there or on 127.0.0.1, and nothing listens anywhere else.
#  - pods get routes to the pod subnet and the Service range only (no default route), and
#    FORWARD drops anything between the bridge and another interface: nothing leaves the machine.

. "$here/node/node.env"

node_dir=$dir/node

# Kernel settings the node changes: ours (forwarding; Service replies between pods on one
# bridge must pass iptables) and the kubelet's (it sets vm.overcommit_memory, kernel.panic,
# kernel.panic_on_oops and the root key quotas at start). node/stop.sh restores them.
node_sysctls=(net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables vm/overcommit_memory
  kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

# Refuses to start beside another node or a cluster of the host's own (node/stop.sh removes
# every KUBE- chain and the cgroup /sipnode), then creates the bridge (the node IP) before
# the API server binds to it.
node_net_up() {
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || [ -d /sys/fs/cgroup/pids/sipnode ] || [ -d /sys/fs/cgroup/memory/sipnode ]; then
    echo "start.sh: the bridge $NODE_BRIDGE or the cgroup /sipnode exists: another test node runs (or was not stopped: tests/control-plane/stop.sh DIR)" >&2
    return 1
  fi
  local cmd
  for cmd in iptables-save ip6tables-save; do
    if command -v "$cmd" >/dev/null && "$cmd" 2>/dev/null | grep -q '^:KUBE-'; then
      echo "start.sh: $cmd shows KUBE- chains: this host runs Kubernetes networking of its own; the test node would remove those chains when it stops, so it does not start here" >&2
      return 1
    fi
  done
  mkdir -p "$node_dir"
  local key
  for key in "${node_sysctls[@]}"; do
    [ -r "/proc/sys/$key" ] && echo "$key $(cat "/proc/sys/$key")" >> "$node_dir/sysctl.orig"
  done
  echo "bridge $NODE_BRIDGE" >> "$node_dir/made"
  ip link add "$NODE_BRIDGE" type bridge
  ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # Routing between pods and to Services needs forwarding (host-wide: this machine has no
  # other interface that routes); the rules keep the bridge's traffic on the bridge.
  echo 1 > /proc/sys/net/ipv4/ip_forward
  forward_drop -I -i -o
  forward_drop -I -o -i
  if [ -w /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
  fi
}

# One cgroup per v1 hierarchy for every pod of this node (kubelet cgroupRoot).
node_cgroups_up() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -e "$h/cgroup.procs" ] || continue
    [ "$(basename "$h")" = unified ] && continue
    mkdir -p "$h/sipnode"
    # A new cpuset starts with no CPUs and no memory nodes: inherit the root's.
    if [ -e "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" > "$h/sipnode/cpuset.cpus"
      cat "$h/cpuset.mems" > "$h/sipnode/cpuset.mems"
    fi
  done
}

node_containerd_config() { # node_containerd_config SANDBOX_IMAGE
  local c=$node_dir/containerd runc
  runc=$(command -v runc)
  mkdir -p "$c" "$node_dir/cni/net.d" "$node_dir/cni/ipam"
  cat > "$c/config.toml" <<TOML
version = 2
root = "$c/root"
state = "$c/state"
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$1"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$runc"
        Root = "$node_dir/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni/net.d"
    max_conf_num = 1
TOML
  cat > "$node_dir/cni/net.d/10-sipnode.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "sipnode",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$node_dir/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "$POD_RANGE_START", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}]
      }
    }
  ]
}
JSON
}

node_kubelet_config() { # node_kubelet_config PORT HEALTHZ_PORT
  local k=$node_dir/kubelet
  mkdir -p "$k/root" "$k/pki" "$dir/logs/pods"
  cat > "$k/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Serves (logs, exec) on the node IP only; the API server is its only client. A throwaway
# node: anonymous requests are allowed, as nothing but this machine can reach it.
address: $NODE_IP
port: $1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $2
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$node_dir/containerd/containerd.sock
# cgroup v1 (hybrid), no systemd on these machines.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /sipnode
failSwapOn: false
podLogsDir: $dir/logs/pods
# No cluster DNS, and none of the host's resolvers (pods cannot reach them anyway).
resolvConf: ""
# Imported images cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
YAML
}

node_proxy_config() { # node_proxy_config HEALTHZ_PORT METRICS_PORT
  cat > "$node_dir/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$1
metricsBindAddress: 127.0.0.1:$2
mode: iptables
clusterCIDR: $POD_CIDR
# NodePorts answer on the node IP only.
nodePortAddresses: ["$POD_CIDR"]
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}

# Starts containerd (with the sandbox image imported), the kubelet, kube-proxy and
# kube-scheduler, and waits for the node to be Ready.
node_start() {
  local images sandbox_image
  images=$("$here/../images/build.sh" pause)
  sandbox_image=$(awk '$1 == "pause" {print $2}' <<<"$images")
  [ -n "$sandbox_image" ] || { echo "start.sh: tests/images/build.sh built no pause image" >&2; return 1; }
  echo "cgroup sipnode" >> "$node_dir/made"
  node_cgroups_up
  node_containerd_config "$sandbox_image"
  local sock=$node_dir/containerd/containerd.sock
  start_bg containerd containerd --config "$node_dir/containerd/config.toml"
  wait_for containerd 60 ctr --address "$sock" version
  "$here/../images/import.sh" "$sock" pause >&2

  local kubelet_port kubelet_healthz proxy_healthz proxy_metrics scheduler_port
  read -r kubelet_port kubelet_healthz proxy_healthz proxy_metrics scheduler_port < <(free_ports 5)
  node_kubelet_config "$kubelet_port" "$kubelet_healthz"
  start_bg kubelet "$bin/kubelet" --config "$node_dir/kubelet/config.yaml" \
    --kubeconfig "$dir/kubeconfig" --root-dir "$node_dir/kubelet/root" --cert-dir "$node_dir/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 0
  node_proxy_config "$proxy_healthz" "$proxy_metrics"
  start_bg kube-proxy "$bin/kube-proxy" --config "$node_dir/kube-proxy.yaml" --v 0
  start_bg kube-scheduler "$bin/kube-scheduler" --kubeconfig "$dir/kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$scheduler_port" --v 0
  wait_for "the node $NODE_NAME" 180 node_ready
  wait_for kube-proxy 60 curl -fsS "http://127.0.0.1:$proxy_healthz/healthz"
  cat >> "$dir/env" <<ENV
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
CONTAINERD_ADDRESS=$sock
ENV
}

node_ready() {
  [ "$(KUBECONFIG=$dir/kubeconfig kubectl get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
