#!/usr/bin/env python3
"""Power cuts on a real file system: berth on ext4 on a loop device, cut off with `xfs_io -x -c shutdown` while a
client pushes, remounted (the journal is replayed), checked. Needs root, loop devices, mkfs.ext4 and xfs_io.

    shutdown.py --berth PATH --work DIR [--rounds N] [--seed N]

Each round: start berth on the file system (it must start by itself), check every object acknowledged in all
earlier rounds (blobs by digest, manifests by digest and by tag, byte-exact; a tag may also show a later push to
it that had begun; anything else pushed is absent or exact), push blobs (monolithic, chunked, single POST, up to
3 MB) and manifests (tags reused, so they move) from a second thread, and after a random 0.3-2 s cut the file
system off without flushing its journal (EXT4_GOING_FLAGS_NOLOGFLUSH: what had not reached the disk is lost, and
every later write fails). A push counts as acknowledged if its 201 arrived before the cut began. Prints TAP.
"""
import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import powerloss as pl  # noqa: E402


class Client(pl.Berth):
    """A second connection to a running berth."""

    def __init__(self, port):
        self.port = port
        self.conn = None


def sh(*cmd):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode().strip()


def holders(mnt):
    """What keeps a mount busy: processes with a file or folder under it, and other mount namespaces holding it."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/mountinfo" % pid) as f:
                if any((" %s " % mnt) in line for line in f) and os.readlink("/proc/%s/ns/mnt" % pid) != \
                        os.readlink("/proc/self/ns/mnt"):
                    out.append("pid %s (another mount namespace)" % pid)
            for fd in os.listdir("/proc/%s/fd" % pid):
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)).startswith(mnt + "/"):
                    out.append("pid %s (an open file)" % pid)
                    break
        except OSError:
            pass
    return "held by: " + (", ".join(out[:10]) or "nothing found")


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unmount and free the loop device on the way out
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--size", help="size of the file system image (default: 192 MiB a round, 1 GiB at least; each "
                                   "round stores about 40 MB, and the pushes cut mid-body leave their upload sessions "
                                   "with what arrived, berth writing bodies as they arrive)")
    args = ap.parse_args()
    tap = pl.tap
    rnd = random.Random(args.seed)
    tap.diag("seed %d" % args.seed)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    img, mnt = os.path.join(work, "fs.img"), os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    sh("truncate", "-s", args.size or "%dM" % max(1024, 192 * args.rounds), img)
    sh("mkfs.ext4", "-q", "-F", img)
    dev = sh("losetup", "-f", "--show", img)
    sh("mount", dev, mnt)
    root = os.path.join(mnt, "data")
    port = pl.free_port()
    pushes = []  # dicts: kind, repo, ref, digest, content, begin (round, seq), ack (monotonic time or None)
    acked = []
    lost, corrupt = set(), set()
    seq = 0
    try:
        for rnum in range(args.rounds + 1):
            log = os.path.join(work, "berth.log")
            # the file system is small: refusing pushes below storage.min_free (1 GiB) would leave nothing to check
            b = pl.Berth(args.berth, root, port, log, {"BERTH_STORAGE_MIN_FREE": "16MiB"})
            if not tap.ok(b.wait_ready(), "round %d: berth starts on the remounted file system" % rnum,
                          [pl.tail(log)]):
                b.stop(signal.SIGKILL)
                break
            # check everything so far
            exp, got = {}, {}
            for o in pushes:
                k = ("manifest" if o["kind"] == "tag" else o["kind"], o["repo"], o["digest"])
                must, allowed = exp.get(k, (False, set()))
                exp[k] = (must or o["ack"] is not None, allowed | {o["digest"]})
            for (repo, tag) in sorted({(o["repo"], o["ref"]) for o in pushes if o["kind"] == "tag"}):
                ps = [o for o in pushes if o["kind"] == "tag" and (o["repo"], o["ref"]) == (repo, tag)]
                last = max([i for i, o in enumerate(ps) if o["ack"] is not None], default=-1)
                exp[("tag", repo, tag)] = (last >= 0, {o["digest"] for i, o in enumerate(ps) if i >= last})
            for k in exp:
                kind, repo, ref = k
                path = "/v2/%s/%s/%s" % (repo, "blobs" if kind == "blob" else "manifests", ref)
                st, h, body = b.request("GET", path, headers={"Accept": pl.ACCEPT})
                got[k] = (st, pl.sha256(body), h.get("docker-content-digest") if kind != "blob" else None)
            problems, l, c = pl.judge(got, exp, {o["digest"] for o in pushes})
            for p in problems:  # "kind repo ref: ..." -> the object
                (lost if "acknowledged" in p or ("served" in p and p.startswith("tag")) else corrupt).add(
                    p.split(":")[0] + ":" + p.split(":")[1])
            nack = sum(1 for o in pushes if o["ack"] is not None)
            tap.ok(not problems, "round %d: the %d objects acknowledged so far are served byte-exact, %d others "
                   "absent or exact" % (rnum, nack, len(pushes) - nack), problems[:10])
            if rnum == args.rounds:
                tap.ok(b.stop() == 0, "berth stops cleanly")
                break
            # push from a second thread, cut the file system off meanwhile
            stop = threading.Event()
            cut = [None]
            statuses = collections.Counter()

            def pusher():
                nonlocal seq
                c = Client(port)
                repo = "sd/r%d" % rnd.randrange(3)
                blobs = []
                while not stop.is_set():
                    seq += 1
                    try:
                        if len(blobs) < 2 or rnd.random() < 0.6:
                            n = rnd.choice([1000, 30000, 300000, 3000000])
                            data = rnd.randbytes(n)
                            how = rnd.choice(["put", "post", "chunked:3"])
                            o = {"kind": "blob", "repo": repo, "ref": None, "digest": pl.sha256(data), "ack": None}
                            pushes.append(o)
                            st = pl.push_blob(c, repo, data, how)
                            if st == 201:
                                blobs.append(data)
                        else:
                            m = pl.image(blobs[0], blobs[1:][-2:])
                            tag = "t%d" % rnd.randrange(4)
                            o = {"kind": "tag", "repo": repo, "ref": tag, "digest": pl.sha256(m), "ack": None}
                            pushes.append(o)
                            st = pl.push_manifest(c, repo, tag, m, pl.MT_OCI_MANIFEST)
                        t = time.monotonic()
                        statuses[st] += 1
                        if st == 201 and (cut[0] is None or t < cut[0]):
                            o["ack"] = t
                    except OSError:
                        time.sleep(0.01)

            th = threading.Thread(target=pusher)
            th.start()
            delay = rnd.uniform(0.3, 2.0)
            time.sleep(delay)
            cut[0] = time.monotonic()
            sh("xfs_io", "-x", "-c", "shutdown", mnt)
            time.sleep(0.2)
            stop.set()
            b.proc.kill()
            b.stop(signal.SIGKILL)
            th.join()
            before = len(acked)
            acked = [o for o in pushes if o["ack"] is not None]
            tap.ok(len(acked) > before, "round %d: pushes acknowledged before the cut after %.2f s: %d (%d pushes so "
                   "far, %d acknowledged)" % (rnum, delay, len(acked) - before, len(pushes), len(acked)),
                   ["answers: %s" % dict(statuses), pl.tail(log)])
            for _ in range(50):
                if subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                tap.ok(False, "round %d: the file system unmounts after the cut" % rnum, [holders(mnt)])
                break
            sh("mount", dev, mnt)
            # a superblock that outlived its unmount (held by another mount namespace) comes back shut down
            try:
                open(os.path.join(mnt, ".remounted"), "w").close()
            except OSError as e:
                tap.ok(False, "round %d: the remounted file system is writable (%s)" % (rnum, e), [holders(mnt)])
                break
    finally:
        subprocess.run(["umount", mnt])
        subprocess.run(["losetup", "-d", dev])
    tap.ok(not lost and not corrupt, "%d rounds: %d acknowledged objects, %d lost, %d answered wrong" % (
        args.rounds, len(acked), len(lost), len(corrupt)))
    tap.done()


if __name__ == "__main__":
    main()
