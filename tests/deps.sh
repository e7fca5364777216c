#!/usr/bin/env bash
# Installs, from Debian 12's packages, what berth needs to build and what its test suite drives. The README's first
# command runs it (as root, or through sudo); .ci/run runs it with --ci. The one list of berth's packages.
#   tests/deps.sh        compilers, autotools and libraries; the clients and tools `make check` uses
#   tests/deps.sh --ci   also what only CI runs: nginx and prometheus (installed with their services kept stopped:
#                        the README's users need no web server on port 80 nor a Prometheus server), and the container
#                        image's tools for `make check-image`
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y --no-install-recommends "$@"; }

apt-get update
# build: compilers, autotools, the libraries berth links (libcurl's headers: berth opens libcurl at run time)
# tests: the clients (skopeo, podman, containerd's ctr, curl, nghttp), umoci, sqlite3, clang-format (the format
# check), strace, xfsprogs (xfs_io cuts power in powerloss_fs.sh), clang and its sanitizer runtimes (the fuzzers),
# jq, python3-seccomp (sandbox.sh: the systemd unit's system call filter), zstd (backup.sh reads the archives with
# plain zstd and tar)
install build-essential autoconf automake pkg-config \
    libh2o-evloop-dev libssl-dev libsqlite3-dev libjansson-dev libjwt-dev libzstd-dev libyaml-dev libcrypt-dev \
    libcurl4-openssl-dev libpcre2-dev \
    ca-certificates curl openssl python3 skopeo umoci sqlite3 podman containerd clang-format strace nghttp2-client \
    xfsprogs clang libclang-rt-dev jq python3-seccomp zstd
# kubernetes.sh renders deploy/kubernetes/ with kubectl and validates it with node (npm ci of tests/deploy/);
# install.sh checks the systemd unit with systemd-analyze and the man page with man and groff. A machine's own
# kubectl or node, packaged elsewhere, stays: Debian's packages would conflict with it.
command -v kubectl >/dev/null || install kubernetes-client
command -v node >/dev/null && command -v npm >/dev/null || install nodejs npm
command -v systemd-analyze >/dev/null || install systemd
command -v man >/dev/null && command -v groff >/dev/null || install man-db groff-base

[[ ${1:-} == --ci ]] || exit 0
# nginx_front.sh (the front SECURITY.md recommends) and metrics.sh's `promtool check metrics` skip without these
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
install nginx prometheus
rm -f /usr/sbin/policy-rc.d
# make check-image (tests/image/image.sh): mmdebstrap and buildah build the image; podman with crun, its CNI
# plugins and iptables (for the published port) runs it
install mmdebstrap buildah crun containernetworking-plugins iptables
