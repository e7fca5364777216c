#!/usr/bin/env bash
# Power cuts on a real file system (tests/crash/shutdown.py): berth on ext4 on a loop device, cut off with
# `xfs_io -x -c shutdown` at random moments while a client pushes, remounted, checked; five rounds here
# (POWERLOSS_FS_ROUNDS). Needs root, a free loop device, mkfs.ext4 and xfs_io (xfsprogs); skipped otherwise.
. "$(dirname "$0")/lib.sh"

((EUID == 0)) || skip_all "needs root (loop device, mount)"
for c in losetup mkfs.ext4 xfs_io mount; do
    command -v "$c" >/dev/null || skip_all "$c is not installed"
done
truncate -s 64M "$T/probe.img" && mkfs.ext4 -q -F "$T/probe.img" >/dev/null 2>&1 && mkdir -p "$T/probe" &&
    dev=$(losetup -f --show "$T/probe.img" 2>/dev/null) || skip_all "no loop device available"
mount "$dev" "$T/probe" 2>/dev/null || {
    losetup -d "$dev"
    skip_all "cannot mount a loop device here"
}
umount "$T/probe"
losetup -d "$dev"
rm -f "$T/probe.img"

"$PYTHON" "$SRCDIR/tests/crash/shutdown.py" --berth "$BERTH" --work "$T/work" \
    --rounds "${POWERLOSS_FS_ROUNDS:-5}" ${POWERLOSS_FS_ARGS:-}
