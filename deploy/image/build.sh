#!/usr/bin/env bash
# berth's container image, built from this tree with no image pulled from anywhere (docs/container.md): in a
# container buildah makes from scratch, mmdebstrap extracts berth's run-time libraries and their dependencies from
# Debian 12's archive (nothing else: no shell, no apt, no dpkg), rootfs.sh prunes that tree and adds the stripped
# binary and a non-root user, and buildah commits it as one layer.
#   deploy/image/build.sh BERTH_BINARY [IMAGE]       (IMAGE: localhost/berth:latest; `make image` runs this)
# Needs root (mmdebstrap's root mode), mmdebstrap, buildah and strip. The image goes to buildah's storage (the
# containers variables, e.g. CONTAINERS_STORAGE_CONF, choose another). DEBIAN_SOURCES: the apt sources mmdebstrap
# uses (default: this machine's /etc/apt/sources.list.d/debian.sources if there is one; empty or none: Debian's own
# mirror, with its updates and security suites).
set -euo pipefail
[[ -x ${1:-} ]] || { echo "usage: build.sh BERTH_BINARY [IMAGE]" >&2; exit 2; }
bin=$(readlink -e "$1")
image=${2:-localhost/berth:latest}
here=$(cd "$(dirname "$0")" && pwd)
uid=65532
# what berth links, and libcurl4, which it dlopens for its pull-through mirrors (src/mirror/upstream.c)
libs=libh2o-evloop0.13,libssl3,libsqlite3-0,libjansson4,libjwt0,libzstd1,libyaml-0-2,libcrypt1,libpcre2-8-0
libs=$libs,libcurl4,ca-certificates
[[ -n ${DEBIAN_SOURCES+set} || ! -f /etc/apt/sources.list.d/debian.sources ]] ||
    DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
mirror=()
[[ -z ${DEBIAN_SOURCES:-} ]] || mirror=("$DEBIAN_SOURCES") # (mmdebstrap takes a sources file as a mirror)
version=$("$bin" version)
version=${version##* }

c=$(buildah from scratch)
trap 'buildah rm "$c" >/dev/null' EXIT
root=$(buildah mount "$c")
mmdebstrap --quiet --variant=extract --include="$libs" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$root" "${mirror[@]}"
"$here/rootfs.sh" "$root" "$bin" "$uid"
size=$(du -sh --apparent-size "$root" | cut -f1)
buildah umount "$c" >/dev/null

buildah config --user "$uid:$uid" --workingdir /var/lib/berth --volume /var/lib/berth --port 5000/tcp \
    --env PATH=/usr/bin --env BERTH_HTTP_ADDR=0.0.0.0:5000 --env BERTH_STORAGE_ROOT=/var/lib/berth \
    --entrypoint '["/usr/bin/berth", "serve"]' --stop-signal SIGTERM \
    --label org.opencontainers.image.title=berth --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.description="berth, an OCI container registry" "$c"
buildah commit --quiet --rm "$c" "$image"
trap - EXIT
echo "$image: berth $version, root file system $size uncompressed"
