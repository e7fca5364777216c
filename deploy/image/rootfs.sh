#!/usr/bin/env bash
# build.sh's second step: turns the packages mmdebstrap extracted into ROOT (the variant "extract": files only, no
# maintainer script ran) into berth's root file system, with BERTH_BINARY stripped as /usr/bin/berth and the user
# berth (UID, and a group of the same number).
#   rootfs.sh ROOT BERTH_BINARY UID
set -euo pipefail
root=$1 bin=$2 uid=$3
cd "$root"

# What nothing runs in the image: the packages' programs (openssl, debconf, update-ca-certificates, ...) and their
# data, iconv's gconv modules (8 MiB; berth converts no character set), apt's and dpkg's state, the device nodes
# (the runtime mounts /dev), the build host's resolv.conf and hostname (the runtime provides them).
rm -rf --one-file-system usr/bin/* usr/sbin/* usr/lib/x86_64-linux-gnu/gconv \
    usr/share/bash-completion usr/share/debconf usr/share/lintian usr/share/perl5 usr/share/pixmaps \
    etc/apt etc/dpkg etc/debconf.conf etc/ca-certificates etc/fstab etc/resolv.conf etc/hostname \
    usr/lib/ssl/misc usr/share/locale usr/share/man var/lib/dpkg var/lib/apt var/cache var/log dev/*

# ca-certificates' postinst did not run: the bundle libcurl reads (its default CA file on Debian), made as
# update-ca-certificates makes it, from every certificate the package ships (each ends with a newline)
for crt in usr/share/ca-certificates/*/*.crt; do sed -e '$a\' "$crt"; done >etc/ssl/certs/ca-certificates.crt
rm -rf usr/share/ca-certificates
[[ -s etc/ssl/certs/ca-certificates.crt ]]

# root and the user berth runs as (numeric in the image's config, as Kubernetes' runAsNonRoot wants)
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nberth:x:%d:%d:berth:/var/lib/berth:/usr/sbin/nologin\n' \
    "$uid" "$uid" >etc/passwd
printf 'root:x:0:\nberth:x:%d:\n' "$uid" >etc/group
printf 'hosts: files dns\n' >etc/nsswitch.conf
install -d -m 0700 -o "$uid" -g "$uid" var/lib/berth
install -d -m 1777 tmp

strip -o usr/bin/berth "$bin"
chmod 0755 usr/bin/berth
ldconfig -r "$root"
