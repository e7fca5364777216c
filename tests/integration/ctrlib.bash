# containerd for the tests that pull with ctr (clients.sh, mirror.sh); sourced after lib.sh.
#   start_containerd [PREFIX...] : start containerd with its own config, root, state and socket under $T/ctd;
#       sets K (that folder), CTD_PID, and CT (the ctr command, run through PREFIX, e.g. env HTTPS_PROXY=...);
#       on failure sets CTD_SKIP (why) and returns 1. Needs root.
#   stop_containerd : stop it, and unmount whatever it left mounted under $T.
CTD_PID=
CTD_SKIP=

start_containerd() {
    if ! command -v ctr >/dev/null || ! command -v containerd >/dev/null; then
        CTD_SKIP="containerd/ctr not installed"
        return 1
    elif ((EUID != 0)); then
        CTD_SKIP="containerd needs root"
        return 1
    fi
    K=$T/ctd
    mkdir -p "$K"
    cat >"$K/config.toml" <<EOF2
version = 2
root = "$K/root"
state = "$K/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$K/ctd.sock"
[ttrpc]
  address = "$K/ctd.sock.ttrpc"
[debug]
  address = "$K/debug.sock"
EOF2
    containerd --config "$K/config.toml" >"$K/containerd.log" 2>&1 &
    CTD_PID=$!
    CT=("$@" ctr --address "$K/ctd.sock" --namespace berth-test)
    local i
    for ((i = 0; i < 100; i++)); do
        "${CT[@]}" version >/dev/null 2>&1 && return 0
        _alive "$CTD_PID" || break
        sleep 0.1
    done
    CTD_SKIP="containerd did not start here: $(tail -n 1 "$K/containerd.log")"
    stop_containerd
    return 1
}

stop_containerd() {
    [[ -n $CTD_PID ]] || return 0
    kill -TERM "$CTD_PID" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do
        _alive "$CTD_PID" || break
        sleep 0.1
    done
    kill -KILL "$CTD_PID" 2>/dev/null
    wait "$CTD_PID" 2>/dev/null
    CTD_PID=
    # containerd unmounts what it mounted; make sure nothing under $T stays mounted before it is removed
    awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r mp; do
        umount -l "$mp" 2>/dev/null
    done
}
