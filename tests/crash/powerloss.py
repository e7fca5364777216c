#!/usr/bin/env python3
"""Power-loss test for berth: record what berth does to its storage root during pushes, rebuild every state a power
cut could leave, and check that berth opens each one and serves what it had acknowledged, byte for byte.

    powerloss.py --berth PATH --shim trace.so --work DIR [--long] [--seed N] [--max-states N]

Prints TAP. The method is that of ALICE (OSDI '14) and of SQLite's crash-test VFS, on a trace:

1. Record. berth runs under the LD_PRELOAD shim tests/crash/trace.c, which writes one line per file-system operation
   under the storage root (and the bytes written) to a log. The client pushes blobs (monolithic POST+PUT, chunked
   PATCH+PUT, a single POST, a body large enough for h2o's temporary file, a cross-repository mount, a blob already
   stored, six small blobs at once, in pairs that share a shard folder), manifests by tag and by digest, an index,
   and moves a tag; it writes "BEGIN id" to the same log before each push and "ACK id" once it has its 201, so
   acknowledgements are ordered with berth's operations. Phase one
   ends with a SIGTERM (SQLite checkpoints and removes its WAL); in phase two the shim kills berth right after it
   makes a new shard folder (BERTH_TRACE_KILL); phase three restarts berth on the same root, puts a blob in that
   folder first, pushes more and ends with a SIGKILL.

2. Model (what may survive a power cut, as POSIX and Linux file systems allow; stricter than ext4's data=ordered):
   - a write, truncate or fallocate of a file is durable once fsync or fdatasync of that file has begun after it;
   - a directory entry (create, mkdir, unlink, rmdir, link, rename) is durable once fsync of the directory that
     holds it has begun after it; fsync of a file makes its data durable, not its name; a rename is atomic (either
     it happened or not) and is made durable by fsync of either directory;
   - anything not yet durable may or may not have reached the disk, in any combination, independently of the
     order it was done in; a write that did may be torn: its new size there, some of its 4 KiB blocks not;
   - SQLite's -shm file is not kept (SQLite rebuilds it from the WAL); sync_file_range makes nothing durable.
   The identity of files follows their inode across renames, so a rename made durable carries the file's durable
   data with it even if the name it had before never was.

3. States. Crash points: just before each fsync/fdatasync returns, and the end of the trace. At each, the durable
   operations are applied, plus a subset of the others: all of them, none, each one left out alone, each one alone,
   and random subsets (with torn writes); the long variant adds, where the unsynced operations since the previous
   crash point are few enough, every subset of those. Identical states are checked once.

4. Check each state: `berth serve` starts on it (no manual step); every object acknowledged before the crash point
   is served byte-exact (blobs by digest, manifests by digest and by tag; a tag may also show a later push that had
   begun); any other object pushed is either absent (404) or exact; every manifest served matches its
   Docker-Content-Digest; the catalog and tag lists answer 200; the push that was cut off can be done again; berth
   stops cleanly on SIGTERM.

Before all that, the whole trace replayed must give the storage root exactly as it is on disk after the recording
(every file and its bytes, -shm aside): proof that the shim saw every operation that matters.
"""
import argparse
import collections
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

BLOCK = 4096
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = ",".join([MT_OCI_MANIFEST, MT_OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json"])

# ------------------------------------------------------------------------------------------------ TAP


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, good, desc, diag=()):
        self.n += 1
        if good:
            print("ok %d - %s" % (self.n, desc))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc))
            for d in diag:
                for line in str(d).splitlines():
                    print("#   " + line)
        sys.stdout.flush()
        return good

    def diag(self, *lines):
        for d in lines:
            for line in str(d).splitlines():
                print("# " + line)
        sys.stdout.flush()

    def done(self):
        print("1..%d" % self.n)
        sys.exit(1 if self.failed else 0)


tap = Tap()


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

# ------------------------------------------------------------------------------------------------ berth


class Berth:
    """One `berth serve` on a storage root; requests over one keep-alive connection."""

    def __init__(self, binary, root, port, log, env=None):
        self.port = port
        self.log = log
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("BERTH_") or k in ("LD_PRELOAD",):
                del e[k]
        e.update({"BERTH_HTTP_ADDR": "127.0.0.1:%d" % port, "BERTH_STORAGE_ROOT": root, "BERTH_MODE": "open",
                  "BERTH_LOG_ACCESS": ""})
        e.update(env or {})
        self.logf = open(log, "ab")
        self.proc = subprocess.Popen([binary, "serve"], env=e, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        self.conn = None

    def wait_ready(self, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            try:
                st, _, _ = self.request("GET", "/healthz")
                if st == 200:
                    return True
            except OSError:
                self.conn = None
            time.sleep(0.01)
        return False

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            rc = "did not exit within %.0f s of signal %d" % (timeout, sig)
        self.logf.close()
        return rc


class Client:
    """Another keep-alive connection to a running berth (for pushes at once)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    request = Berth.request


def push_blob(b, repo, data, how):
    """Push `data` to `repo` the way `how` says; returns the final status (201 expected)."""
    d = sha256(data)
    octet = {"Content-Type": "application/octet-stream"}
    if how == "post":  # one request
        st, h, _ = b.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data,
                             dict(octet, **{"Content-Length": str(len(data))}))
        return st
    if how.startswith("mount:"):
        st, h, _ = b.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (repo, d, how[6:]), b"",
                             {"Content-Length": "0"})
        return st
    st, h, _ = b.request("POST", "/v2/%s/blobs/uploads/" % repo, b"", {"Content-Length": "0"})
    if st != 202:
        return st
    loc = h.get("location", "")
    if how == "put":  # POST, then PUT with the body
        return b.request("PUT", with_query(loc, "digest=" + d), data, octet)[0]
    # chunked: PATCH pieces, then the last piece with the PUT (how = "chunked:N")
    n = int(how.split(":")[1])
    size = (len(data) + n - 1) // n
    off = 0
    for i in range(n - 1):
        piece = data[off:off + size]
        st, h, _ = b.request("PATCH", loc, piece, dict(octet, **{
            "Content-Range": "%d-%d" % (off, off + len(piece) - 1), "Content-Length": str(len(piece))}))
        if st != 202:
            return st
        loc = h.get("location", loc)
        off += len(piece)
    return b.request("PUT", with_query(loc, "digest=" + d), data[off:], octet)[0]


def with_query(url, q):
    if url.startswith("http://") or url.startswith("https://"):
        url = "/" + url.split("/", 3)[3]
    return url + ("&" if "?" in url else "?") + q


def push_manifest(b, repo, ref, data, mt):
    return b.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), data, {"Content-Type": mt})[0]

# ------------------------------------------------------------------------------------------------ 1. record


def image(cfg, layers):
    def desc(mt, blob):
        return {"mediaType": mt, "digest": sha256(blob), "size": len(blob)}
    m = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST, "config": desc(MT_CONFIG, cfg),
         "layers": [desc(MT_LAYER, x) for x in layers]}
    return json.dumps(m, indent=2).encode() + b"\n"


def index(manifests):
    items = []
    for arch, m in zip(("amd64", "arm64", "s390x"), manifests):
        items.append({"mediaType": MT_OCI_MANIFEST, "digest": sha256(m), "size": len(m),
                      "platform": {"architecture": arch, "os": "linux"}})
    return json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": items}).encode()


def record(args, work, root, tracelog):
    """Run the pushes under the shim. Returns the list of objects (dicts) pushed, or None."""
    rnd = random.Random(args.seed)

    def unique(n):
        return rnd.randbytes(n)

    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                      "nonce": rnd.getrandbits(64)}).encode()
    layer_b, layer_c, layer_d, layer_e = unique(300000), unique(5000), unique(2600000), unique(40000)
    m1 = image(cfg, [layer_b, layer_c])
    m2 = image(cfg, [layer_d])
    ix = index([m1, m2])
    m3 = image(cfg, [layer_e, layer_b])
    one, two = "pl/one", "pl/two"
    # blob X goes to a shard no other blob uses; berth is killed right after it makes that folder (phase 2), and
    # blob Y, pushed after the restart, goes to the same folder, which then already exists
    used = {sha256(x)[7:9] for x in (cfg, layer_b, layer_c, layer_d, layer_e)}
    layer_x = unique(10000)
    while sha256(layer_x)[7:9] in used:
        layer_x = unique(10000)
    shard = sha256(layer_x)[7:9]
    layer_y = unique(10000)
    while sha256(layer_y)[7:9] != shard:
        layer_y = unique(10000)
    # small blobs pushed at once (phase 3, "at once"): pairs share a shard folder, which their database batch
    # fsyncs once for both
    small = []
    while len(small) < 6:
        x = unique(4096)
        if len(small) % 2 == 0 or sha256(x)[7:9] == sha256(small[-1])[7:9]:
            small.append(x)
    # (phase, id, kind, repo, ref, content, how)
    plan = [
        (1, "blob A put", "blob", one, None, cfg, "put"),
        (1, "blob B chunked", "blob", one, None, layer_b, "chunked:3"),
        (1, "blob C post", "blob", one, None, layer_c, "post"),
        (1, "blob D large put", "blob", one, None, layer_d, "put"),
        (1, "manifest M1 tag v1", "tag", one, "v1", m1, MT_OCI_MANIFEST),
        (1, "manifest M2 digest", "manifest", one, None, m2, MT_OCI_MANIFEST),
        (1, "index I tag multi", "tag", one, "multi", ix, MT_OCI_INDEX),
        (1, "manifest M2 moves tag v1", "tag", one, "v1", m2, MT_OCI_MANIFEST),
        (2, "blob X killed", "blob", two, None, layer_x, "put"),
        (3, "blob Y same shard", "blob", two, None, layer_y, "put"),
        (3, "blob E chunked", "blob", two, None, layer_e, "chunked:2"),
        (3, "blob X again", "blob", two, None, layer_x, "put"),
        (3, "blob A again", "blob", two, None, cfg, "put"),
        (3, "blob B mount", "blob", two, None, layer_b, "mount:" + one),
        (3, "manifest M3 tag latest", "tag", two, "latest", m3, MT_OCI_MANIFEST),
    ] + [(3, "blob S%d at once" % i, "blob", two, None, x, "post" if i % 2 else "put") for i, x in enumerate(small)]
    objects = []
    logfd = os.open(tracelog, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def mark(what, oid):
        os.write(logfd, ("%s 0 0 %s\n" % (what, oid.replace(" ", "_"))).encode())

    env = {"BERTH_TRACE": os.path.join(work, "trace"), "BERTH_TRACE_ROOT": root, "LD_PRELOAD": args.shim,
           "ASAN_OPTIONS": "verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", "")}
    port = free_port()
    ok = True
    for phase in (1, 2, 3):
        penv = dict(env)
        if phase == 2:
            penv["BERTH_TRACE_KILL"] = "MKDIR:/blobs/sha256/" + shard
        b = Berth(args.berth, root, port, os.path.join(work, "record.log"), penv)
        if not tap.ok(b.wait_ready(), "phase %d: berth serves under the tracing shim" % phase,
                      [tail(os.path.join(work, "record.log"))]):
            b.stop(signal.SIGKILL)
            return None
        def push(client, oid, kind, repo, ref, content, how):
            mark("BEGIN", oid)
            try:
                if kind == "blob":
                    st = push_blob(client, repo, content, how)
                else:
                    st = push_manifest(client, repo, ref if kind == "tag" else sha256(content), content, how)
            except (OSError, http.client.HTTPException) as e:
                st = "no answer (%s)" % type(e).__name__
            if st == 201:
                mark("ACK", oid)
            return st

        together = []  # the pushes "at once": each on its own connection, in a thread of its own
        for ph, oid, kind, repo, ref, content, how in plan:
            if ph != phase:
                continue
            path = os.path.join(work, "obj-" + oid.replace(" ", "_"))
            with open(path, "wb") as f:
                f.write(content)
            objects.append({"id": oid.replace(" ", "_"), "kind": kind, "repo": repo, "ref": ref,
                            "digest": sha256(content), "file": path, "how": how, "mt": how if kind != "blob" else None})
            if oid.endswith(" at once"):
                together.append((oid, kind, repo, ref, content, how))
                continue
            st = push(b, oid, kind, repo, ref, content, how)
            if phase == 2:
                ok &= tap.ok(st != 201 and b.proc.wait(10) == -signal.SIGKILL,
                             "phase 2: berth is killed right after it makes the folder of blob X's shard",
                             ["push: %s, berth: %s" % (st, b.proc.poll())])
            else:
                ok &= tap.ok(st == 201, "phase %d: push %s -> 201" % (phase, oid), ["got %s" % st])
        if together:
            results = [None] * len(together)
            go = threading.Barrier(len(together))

            def run(i, p):
                c = Client(port)
                go.wait()
                results[i] = push(c, *p)
            threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(together)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok &= tap.ok(all(st == 201 for st in results), "phase %d: %d small blobs pushed at once -> 201" %
                         (phase, len(together)), ["got %s" % results])
        rc = b.stop(signal.SIGTERM if phase == 1 else signal.SIGKILL)
        if phase == 1:
            ok &= tap.ok(rc == 0, "phase 1: berth stops cleanly on SIGTERM", ["exit: %s" % rc])
    os.close(logfd)
    return objects if ok else None


def tail(path, n=20):
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode(errors="replace")
    except OSError:
        return ""

# ------------------------------------------------------------------------------------------------ 2. model


def unescape(s):
    out, i = bytearray(), 0
    b = s.encode()
    while i < len(b):
        if b[i] == 0x25 and i + 2 < len(b):
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode()


class TraceError(Exception):
    pass


class Inode:
    __slots__ = ("id", "kind", "real", "volatile", "mmapped", "path")

    def __init__(self, id, kind, path):
        self.id, self.kind, self.real, self.volatile, self.mmapped, self.path = id, kind, None, False, False, path


class Op:
    """One state-changing operation. kind 'dent': changes [(dir inode, name, inode or None)], in dirs; kind
    'data': on inode `ino`, action ('w', off, len, pid, dataoff) | ('t', size) | ('x', end)."""
    __slots__ = ("idx", "pos", "kind", "ino", "dirs", "changes", "action", "desc", "volatile")

    def __init__(self, idx, pos, kind, desc):
        self.idx, self.pos, self.kind, self.desc = idx, pos, kind, desc
        self.ino, self.dirs, self.changes, self.action, self.volatile = None, (), (), None, False


class Model:
    def __init__(self, root, work):
        self.root = root.rstrip("/")
        self.parent = os.path.dirname(self.root)
        self.work = work
        self.inodes = {0: Inode(0, "d", self.parent)}
        self.ns = {self.parent: 0}
        self.ops = []
        self.syncs = []  # (pos of the line that ended it, inode id or None for all, ops before its start)
        self.begins = {}  # object id -> pos
        self.acks = {}
        self.fds = {}
        self.open_syncs = {}
        self.lines = 0
        self.counts = collections.Counter()
        self._data = {}

    def new_inode(self, kind, path):
        i = Inode(len(self.inodes), kind, path)
        self.inodes[i.id] = i
        if path.endswith("-shm"):
            i.volatile = True
        return i

    def add(self, pos, kind, desc, **kw):
        op = Op(len(self.ops), pos, kind, desc)
        for k, v in kw.items():
            setattr(op, k, v)
        if kind == "data":
            op.volatile = self.inodes[op.ino].volatile
        else:
            op.volatile = all(c[2] is not None and self.inodes[c[2]].volatile or
                              c[2] is None and c[1].endswith("-shm") for c in op.changes)
        self.ops.append(op)
        return op

    def rel(self, path):
        return os.path.relpath(path, self.parent)

    def lookup(self, path, pos):
        if path not in self.ns:
            raise TraceError("line %d: %s is not known (an operation the shim did not see?)" % (pos + 1, path))
        return self.ns[path]

    def dir_of(self, path, pos):
        d = self.lookup(os.path.dirname(path), pos)
        if self.inodes[d].kind != "d":
            raise TraceError("line %d: parent of %s is not a folder" % (pos + 1, path))
        return d

    def drop_path(self, path):
        del self.ns[path]
        for p in [p for p in self.ns if p.startswith(path + "/")]:
            del self.ns[p]

    def parse(self, logpath):
        with open(logpath, "rb") as f:
            lines = f.read().decode().splitlines()
        self.lines = len(lines)
        for pos, line in enumerate(lines):
            w = line.split(" ")
            op, pid, tid = w[0], w[1], w[2]
            a = w[3:]
            self.counts[op] += 1
            if op in ("BEGIN", "ACK"):
                (self.begins if op == "BEGIN" else self.acks)[a[0]] = pos
            elif op == "MKDIR":
                p = unescape(a[0])
                d = self.dir_of(p, pos)
                i = self.new_inode("d", p)
                self.ns[p] = i.id
                self.add(pos, "dent", "mkdir " + self.rel(p), dirs=(d,), changes=((d, os.path.basename(p), i.id),))
            elif op == "OPEN":
                fd, flags, existed, real, p = int(a[0]), int(a[1]), int(a[2]), int(a[3]), unescape(a[4])
                if p in self.ns:
                    if not existed:
                        raise TraceError("line %d: %s was made outside the shim's sight" % (pos + 1, p))
                    i = self.inodes[self.ns[p]]
                    if flags & os.O_TRUNC and i.kind == "f":
                        self.add(pos, "data", "truncate %s to 0 (open)" % self.rel(p), ino=i.id, action=("t", 0))
                else:
                    if existed:
                        raise TraceError("line %d: %s existed, but no operation made it" % (pos + 1, p))
                    if not flags & os.O_CREAT:
                        raise TraceError("line %d: %s opened without O_CREAT did not exist" % (pos + 1, p))
                    d = self.dir_of(p, pos)
                    i = self.new_inode("f", p)
                    self.ns[p] = i.id
                    self.add(pos, "dent", "create " + self.rel(p), dirs=(d,),
                             changes=((d, os.path.basename(p), i.id),))
                if i.real is not None and i.real != real:
                    raise TraceError("line %d: %s has inode %d, the trace says %d" % (pos + 1, p, real, i.real))
                i.real = real
                self.fds[(pid, fd)] = i.id
            elif op == "CLOSE":
                self.fds.pop((pid, int(a[0])), None)
            elif op == "DUP":
                self.fds[(pid, int(a[1]))] = self.fds[(pid, int(a[0]))]
            elif op == "WRITE":
                i = self.fds[(pid, int(a[0]))]
                off, n, at = int(a[1]), int(a[2]), int(a[3])
                if off < 0:
                    raise TraceError("line %d: write at an unknown offset" % (pos + 1))
                self.add(pos, "data", "write %s [%d, +%d)" % (self.rel(self.inodes[i].path), off, n), ino=i,
                         action=("w", off, n, pid, at))
            elif op in ("TRUNC", "TRUNCP"):
                i = self.fds[(pid, int(a[0]))] if op == "TRUNC" else self.lookup(unescape(a[1]), pos)
                size = int(a[1]) if op == "TRUNC" else int(a[0])
                self.add(pos, "data", "truncate %s to %d" % (self.rel(self.inodes[i].path), size), ino=i,
                         action=("t", size))
            elif op == "FALLOC":
                i = self.fds[(pid, int(a[0]))]
                mode, off, n = int(a[1]), int(a[2]), int(a[3])
                if mode == 0:
                    self.add(pos, "data", "fallocate %s to %d" % (self.rel(self.inodes[i].path), off + n), ino=i,
                             action=("x", off + n))
                elif mode & 2:  # FALLOC_FL_PUNCH_HOLE (with KEEP_SIZE): zeros
                    self.add(pos, "data", "punch %s" % self.rel(self.inodes[i].path), ino=i,
                             action=("z", off, n))
            elif op == "SYNCB":
                self.open_syncs[(pid, tid)] = (self.fds[(pid, int(a[0]))], len(self.ops), pos)
            elif op == "SYNCE":
                ino, nops, _ = self.open_syncs.pop((pid, tid))
                if int(a[2]) == 0:
                    self.syncs.append((pos, ino, nops, "%s %s" % (a[1], self.rel(self.inodes[ino].path))))
            elif op == "SYNCALLB":
                self.open_syncs[(pid, tid)] = (None, len(self.ops), pos)
            elif op == "SYNCALLE":
                _, nops, _ = self.open_syncs.pop((pid, tid))
                if int(a[0]) == 0:
                    self.syncs.append((pos, None, nops, "sync"))
            elif op == "SFR":
                pass
            elif op in ("RENAME", "LINK"):
                src, dst = unescape(a[0]), unescape(a[1])
                i = self.lookup(src, pos)
                sd, dd = self.dir_of(src, pos), self.dir_of(dst, pos)
                if op == "RENAME":
                    ch = ((sd, os.path.basename(src), None), (dd, os.path.basename(dst), i))
                    if dst in self.ns:
                        self.drop_path(dst)
                    moved = {p: v for p, v in self.ns.items() if p == src or p.startswith(src + "/")}
                    for p in moved:
                        del self.ns[p]
                    for p, v in moved.items():
                        self.ns[dst + p[len(src):]] = v
                    self.inodes[i].path = dst
                else:
                    ch = ((dd, os.path.basename(dst), i),)
                    self.ns[dst] = i
                self.add(pos, "dent", "%s %s -> %s" % (op.lower(), self.rel(src), self.rel(dst)),
                         dirs=tuple(sorted({sd, dd})), changes=ch)
            elif op in ("UNLINK", "RMDIR"):
                p = unescape(a[0])
                d = self.dir_of(p, pos)
                self.lookup(p, pos)
                self.drop_path(p)
                self.add(pos, "dent", "%s %s" % (op.lower(), self.rel(p)), dirs=(d,),
                         changes=((d, os.path.basename(p), None),))
            elif op == "MMAPW":
                self.inodes[self.fds[(pid, int(a[0]))]].mmapped = True
            else:
                raise TraceError("line %d: operation %s is not modelled" % (pos + 1, op))

    # ---- durability

    def forced_by(self, sync):
        """Indexes of the operations a sync made durable."""
        _, ino, nops, _ = sync
        out = set()
        for op in self.ops[:nops]:
            if ino is None:
                out.add(op.idx)
            elif self.inodes[ino].kind == "f":
                if op.kind == "data" and op.ino == ino:
                    out.add(op.idx)
            elif op.kind == "dent" and ino in op.dirs:
                out.add(op.idx)
        return out

    def crash_points(self):
        """[(pos, description, durable set, not durable list)], one before each sync's end, and the end."""
        points, forced = [], set()
        ends = [(s[0], s) for s in self.syncs] + [(self.lines, None)]
        for pos, sync in ends:
            nops = sum(1 for op in self.ops if op.pos < pos)
            pending = [op.idx for op in self.ops[:nops] if op.idx not in forced and not op.volatile]
            desc = ("before %s returns" % sync[3]) if sync else "at the end of the trace"
            points.append((pos, desc, frozenset(forced), pending))
            if sync:
                forced |= self.forced_by(sync)
        return points

    # ---- building a state

    def data(self, pid, at, n):
        f = self._data.get(pid)
        if f is None:
            f = self._data[pid] = open(os.path.join(self.work, "trace.%s.data" % pid), "rb")
        f.seek(at)
        b = f.read(n)
        if len(b) != n:
            raise TraceError("the data file of process %s is short" % pid)
        return b

    def content(self, ino, ops, torn, cache):
        key = (ino, tuple((o, torn.get(o)) for o in ops))
        c = cache.get(key)
        if c is not None:
            return c
        buf = bytearray()
        for o in ops:
            act = self.ops[o].action
            if act[0] == "w":
                _, off, n, pid, at = act
                new = self.data(pid, at, n)
                t = torn.get(o)
                if t is not None:  # the size is there, only some of the blocks
                    r = random.Random(t)
                    old = bytes(buf[off:off + n]).ljust(n, b"\0")
                    mixed = bytearray(old)
                    first = off // BLOCK
                    for blk in range(first, (off + n - 1) // BLOCK + 1):
                        if r.random() < 0.5:
                            lo, hi = max(blk * BLOCK, off) - off, min((blk + 1) * BLOCK, off + n) - off
                            mixed[lo:hi] = new[lo:hi]
                    new = bytes(mixed)
                if len(buf) < off:
                    buf.extend(b"\0" * (off - len(buf)))
                buf[off:off + n] = new
            elif act[0] == "t":
                if act[1] < len(buf):
                    del buf[act[1]:]
                else:
                    buf.extend(b"\0" * (act[1] - len(buf)))
            elif act[0] == "x":
                if act[1] > len(buf):
                    buf.extend(b"\0" * (act[1] - len(buf)))
            elif act[0] == "z":
                _, off, n = act
                end = min(off + n, len(buf))
                if end > off:
                    buf[off:end] = b"\0" * (end - off)
        c = (bytes(buf), hashlib.sha1(buf).hexdigest())
        if len(cache) > 400:
            cache.clear()
        cache[key] = c
        return c

    def build(self, persisted, torn, cache, skip_volatile=True):
        """The files of a state: {relative path under the root: None (folder) or (bytes, hash)}, or None when the
        root itself is not there."""
        dents = {}
        per_ino = collections.defaultdict(list)
        for idx in sorted(persisted):
            op = self.ops[idx]
            if skip_volatile and op.volatile:
                continue
            if op.kind == "dent":
                for d, name, ino in op.changes:
                    if ino is None:
                        dents.pop((d, name), None)
                    else:
                        dents[(d, name)] = ino
            else:
                per_ino[op.ino].append(idx)
        children = collections.defaultdict(list)
        for (d, name), ino in dents.items():
            children[d].append((name, ino))
        top = dents.get((0, os.path.basename(self.root)))
        if top is None:
            return None
        out = {}

        def walk(ino, rel, depth):
            if depth > 64:
                raise TraceError("folder loop")
            if self.inodes[ino].kind == "d":
                out[rel] = None
                for name, c in children.get(ino, ()):
                    if skip_volatile and self.inodes[c].volatile:
                        continue
                    walk(c, rel + "/" + name if rel else name, depth + 1)
            else:
                out[rel] = self.content(ino, per_ino.get(ino, []), torn, cache)
        walk(top, "", 0)
        return out


def state_key(files):
    if files is None:
        return "no root"
    h = hashlib.sha1()
    for rel in sorted(files):
        v = files[rel]
        h.update(("%s\0%s\0" % (rel, "d" if v is None else v[1])).encode())
    return h.hexdigest()


def write_state(files, root):
    if os.path.exists(root):
        shutil.rmtree(root)
    if files is None:
        return
    os.makedirs(root)
    for rel in sorted(files):
        if rel == "":
            continue
        v = files[rel]
        p = os.path.join(root, rel)
        if v is None:
            os.mkdir(p)
        else:
            with open(p, "wb") as f:
                f.write(v[0])


def read_tree(root, skip):
    out = {}
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        rel = "" if rel == "." else rel
        out[rel] = None
        for f in files:
            r = os.path.join(rel, f) if rel else f
            if skip(r):
                continue
            with open(os.path.join(d, f), "rb") as fh:
                b = fh.read()
            out[r] = (b, hashlib.sha1(b).hexdigest())
    return out

# ------------------------------------------------------------------------------------------------ 3. states


def choose(model, points, args):
    """{state key: (files, [(crash point index, how)...])} and the number of (point, subset) pairs tried."""
    rnd = random.Random(args.seed * 7919 + 1)
    states = collections.OrderedDict()
    cache = {}
    tried = 0
    prev_pos = -1
    for ci, (pos, desc, forced, pending) in enumerate(points):
        recent = [o for o in pending if model.ops[o].pos > prev_pos]
        prev_pos = pos
        writes = [o for o in pending if model.ops[o].kind == "data" and model.ops[o].action[0] == "w"]
        subsets = [("all", pending, {}), ("none", [], {})]
        drop = pending if args.long else recent
        for o in drop:
            subsets.append(("all but: " + model.ops[o].desc, [p for p in pending if p != o], {}))
        if args.long:
            for o in pending:
                subsets.append(("only: " + model.ops[o].desc, [o], {}))
            for o in writes:
                subsets.append(("all, torn: " + model.ops[o].desc, pending, {o: rnd.getrandbits(32)}))
            if 0 < len(recent) <= args.exhaustive:
                old = [p for p in pending if p not in recent]
                for mask in range(1, 2 ** len(recent) - 1):
                    sub = old + [recent[i] for i in range(len(recent)) if mask >> i & 1]
                    subsets.append(("every subset of the recent, #%d" % mask, sub, {}))
        else:
            for o in rnd.sample(writes, min(2, len(writes))):
                subsets.append(("all, torn: " + model.ops[o].desc, pending, {o: rnd.getrandbits(32)}))
        for k in range(args.random):
            sub = [o for o in pending if rnd.random() < 0.5]
            torn = {o: rnd.getrandbits(32) for o in sub if o in writes and rnd.random() < 0.25}
            subsets.append(("random subset #%d" % k, sub, torn))
        for how, sub, torn in subsets:
            tried += 1
            files = model.build(forced | set(sub), torn, cache)
            key = state_key(files)
            if key not in states:
                states[key] = (files, [])
            states[key][1].append((ci, how))
    return states, tried

# ------------------------------------------------------------------------------------------------ 4. check


def expectations(objects, model, pos):
    """For a crash at `pos`: what each probe may answer. {probe: (must, allowed set of sha256 of bodies)}."""
    out = {}
    acked = lambda o: model.acks.get(o["id"], 1 << 60) < pos
    begun = lambda o: model.begins.get(o["id"], 1 << 60) < pos
    for o in objects:
        if o["kind"] == "blob":
            out[("blob", o["repo"], o["digest"])] = (acked(o), {o["digest"]})
        else:
            k = ("manifest", o["repo"], o["digest"])
            must, allowed = out.get(k, (False, set()))
            out[k] = (must or acked(o), allowed | {o["digest"]})
    # a tag: the last push acknowledged, or one begun after it
    tags = collections.defaultdict(list)
    for o in objects:
        if o["kind"] == "tag":
            tags[(o["repo"], o["ref"])].append(o)
    for (repo, tag), pushes in tags.items():
        last = max([i for i, o in enumerate(pushes) if acked(o)], default=-1)
        allowed = {o["digest"] for i, o in enumerate(pushes) if i >= last and begun(o)}
        out[("tag", repo, tag)] = (last >= 0, allowed)
    return out


def probe(b, objects):
    """GET every object once: {probe: (status, sha256 of the body, content digest header)}."""
    got = {}
    for o in objects:
        if o["kind"] == "blob":
            k = ("blob", o["repo"], o["digest"])
            path = "/v2/%s/blobs/%s" % (o["repo"], o["digest"])
        else:
            k = ("manifest", o["repo"], o["digest"])
            path = "/v2/%s/manifests/%s" % (o["repo"], o["digest"])
        if k not in got:
            st, h, body = b.request("GET", path, headers={"Accept": ACCEPT})
            got[k] = (st, sha256(body), h.get("docker-content-digest"))
        if o["kind"] == "tag":
            k = ("tag", o["repo"], o["ref"])
            if k not in got:
                st, h, body = b.request("GET", "/v2/%s/manifests/%s" % (o["repo"], o["ref"]),
                                        headers={"Accept": ACCEPT})
                got[k] = (st, sha256(body), h.get("docker-content-digest"))
    for repo in sorted({o["repo"] for o in objects}):
        st, _, _ = b.request("GET", "/v2/%s/tags/list" % repo)
        got[("list", repo, "")] = (st, None, None)
    st, _, _ = b.request("GET", "/v2/_catalog")
    got[("catalog", "", "")] = (st, None, None)
    return got


def judge(got, exp, known):
    """Problems, as text; the counts of acknowledged objects lost (absent, or a tag showing an older manifest) and
    of corrupt answers (bytes that are no object pushed, or that do not match the digest they are served as)."""
    problems, lost, corrupt = [], 0, 0
    for k, (must, allowed) in exp.items():
        st, h, dcd = got[k]
        name = "%s %s %s" % k
        if st == 200:
            if h not in allowed:
                if h in known and k[0] == "tag":
                    lost += 1
                else:
                    corrupt += 1
                problems.append("%s: served %s, expected %s" % (name, h, " or ".join(sorted(allowed)) or "nothing"))
            elif dcd is not None and dcd != h:
                corrupt += 1
                problems.append("%s: Docker-Content-Digest %s for a body of %s" % (name, dcd, h))
        elif st == 404 and not must:
            pass
        else:
            if must and st == 404:
                lost += 1
            problems.append("%s: %s (%s)" % (name, st, "acknowledged before the crash" if must else "not required"))
    for k, (st, _, _) in got.items():
        if (k[0] == "list" and st not in (200, 404)) or (k[0] == "catalog" and st != 200):
            problems.append("%s %s: %s" % (k[0], k[1], st))
    return problems, lost, corrupt


def redo(b, objects, model, pos):
    """Push again the first object not acknowledged before `pos` (the one a power cut interrupted): it must work."""
    for o in objects:
        if model.acks.get(o["id"], 1 << 60) >= pos:
            with open(o["file"], "rb") as f:
                content = f.read()
            if o["kind"] == "blob":
                how = o["how"] if not o["how"].startswith("chunked") else "put"
                st = push_blob(b, o["repo"], content, how)
                path = "/v2/%s/blobs/%s" % (o["repo"], o["digest"])
            else:
                ref = o["ref"] if o["kind"] == "tag" else o["digest"]
                st = push_manifest(b, o["repo"], ref, content, o["mt"])
                path = "/v2/%s/manifests/%s" % (o["repo"], ref)
            if st != 201:
                return "pushing %s again: %s" % (o["id"], st)
            st, _, body = b.request("GET", path, headers={"Accept": ACCEPT})
            if st != 200 or sha256(body) != o["digest"]:
                return "%s pushed again, then GET: %s %s" % (o["id"], st, sha256(body))
            return None
    return None


def check_state(args, model, objects, points, files, uses, scratch, port, index):
    """Start berth on one state and judge it for each crash point that can leave it. Returns (problems of the state,
    {use: its problems}, lost, corrupt)."""
    root = os.path.join(scratch, "root")
    write_state(files, root)
    log = os.path.join(scratch, "berth.log")
    if os.path.exists(log):
        os.unlink(log)
    b = Berth(args.berth, root, port, log)
    problems, per_use, lost, corrupt = [], {}, 0, 0
    try:
        if not b.wait_ready():
            rc = b.stop(signal.SIGKILL)
            return ["berth does not start (exit %s):\n%s" % (rc, tail(log))], {}, 0, 0
        got = probe(b, objects)
        for use in uses:
            p, l, c = judge(got, expectations(objects, model, points[use[0]][0]), {o["digest"] for o in objects})
            lost, corrupt = max(lost, l), max(corrupt, c)
            if p:
                per_use[use] = p
        first = min(points[ci][0] for ci, _ in uses)
        r = redo(b, objects, model, first)
        if r:
            problems.append(r)
    except (OSError, http.client.HTTPException) as e:
        problems.append("connection: %r\n%s" % (e, tail(log)))
    rc = b.stop(signal.SIGTERM)
    if rc != 0:
        problems.append("berth did not stop cleanly: %s\n%s" % (rc, tail(log)))
    if (problems or per_use) and args.keep:
        keep = os.path.join(args.work, "failed-%d" % index)
        shutil.copytree(root, keep, symlinks=True) if files is not None else os.makedirs(keep, exist_ok=True)
        shutil.copy(log, keep + ".log")
        for p in [problems] + list(per_use.values()):
            if p:
                p.append("state kept in " + keep)
    return problems, per_use, lost, corrupt

# ------------------------------------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--berth", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--work", required=True, help="an empty folder for the trace and the states")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--random", type=int, default=2, help="random subsets per crash point")
    ap.add_argument("--long", action="store_true", help="every single drop and keep, torn writes, subsets")
    ap.add_argument("--exhaustive", type=int, default=10,
                    help="with --long: every subset of the unsynced operations since the previous crash point when "
                         "there are at most this many")
    ap.add_argument("--max-states", type=int, default=0, help="check at most this many states (0: all)")
    ap.add_argument("--budget", type=float, default=0,
                    help="stop checking states after this many seconds (0: no limit); the first checked are every "
                         "'all' and 'none' state, then the others in random order")
    ap.add_argument("--keep", action="store_true", help="keep failing states in the work folder")
    ap.add_argument("--count-only", action="store_true", help="record and build the states, check none")
    args = ap.parse_args()
    if args.long and args.random == 2:
        args.random = 20
    work = os.path.abspath(args.work)
    args.work = work
    os.makedirs(work, exist_ok=True)
    root = os.path.join(work, "rec", "data")
    os.makedirs(os.path.dirname(root), exist_ok=True)
    tracelog = os.path.join(work, "trace.log")

    objects = record(args, work, root, tracelog)
    if objects is None:
        tap.diag("the recording failed; nothing to check")
        tap.done()

    model = Model(root, work)
    try:
        model.parse(tracelog)
        whole = model.build(set(range(len(model.ops))), {}, {})
    except TraceError as e:
        tap.ok(False, "the trace is complete and every operation in it is modelled", [str(e)])
        tap.done()
    disk = read_tree(root, lambda r: r.endswith("-shm"))
    diff = sorted(set(disk) ^ set(whole or {}))
    diff += sorted(r for r in set(disk) & set(whole or {}) if disk[r] != whole[r] and disk[r] is not None and
                   (whole[r] is None or disk[r][1] != whole[r][1]))
    tap.ok(not diff, "replaying the whole trace gives the storage root as it is on disk (%d files and folders)" %
           len(disk), ["differs: %s" % r for r in diff[:20]])
    unseen = [i.path for i in model.inodes.values() if i.mmapped and not i.volatile and
              i.path in model.ns and i.kind == "f"]
    tap.ok(not unseen, "no file kept under the root was written through a shared mapping",
           ["written by mmap: %s" % p for p in unseen])
    c = model.counts
    tap.diag("trace: %d lines, %d operations that change the root, %d fsync/fdatasync; by kind: %s" % (
        model.lines, len(model.ops), len(model.syncs), ", ".join("%s %d" % kv for kv in sorted(c.items()))))

    points = model.crash_points()
    t0 = time.monotonic()
    states, tried = choose(model, points, args)
    tap.diag("%d crash points, %d (crash point, subset) pairs, %d distinct states (%.1f s to build)" % (
        len(points), tried, len(states), time.monotonic() - t0))
    items = list(states.values())
    if args.count_only:
        tap.done()
    # every "all" and "none" state first, then the others in random order
    must = [s for s in items if any(h in ("all", "none") for _, h in s[1])]
    rest = [s for s in items if not any(h in ("all", "none") for _, h in s[1])]
    random.Random(args.seed).shuffle(rest)
    items = must + rest
    if args.max_states and len(items) > args.max_states:
        items = items[:args.max_states]
        tap.diag("checking %d of them (--max-states)" % len(items))

    scratch = os.path.join(work, "state")
    os.makedirs(scratch, exist_ok=True)
    port = free_port()
    per_point = collections.defaultdict(list)
    checked = lost_total = corrupt_total = 0
    t0 = time.monotonic()
    for n, (files, uses) in enumerate(items):
        if args.budget and time.monotonic() - t0 > args.budget:
            tap.diag("time budget (--budget %g s) spent: %d states not checked" % (args.budget, len(items) - n))
            break
        problems, per_use, lost, corrupt = check_state(args, model, objects, points, files, uses, scratch, port, n)
        checked += 1
        lost_total += lost
        corrupt_total += corrupt
        for use in uses:
            per_point[use[0]].append((use[1], per_use.get(use, []) + problems))
    elapsed = time.monotonic() - t0
    for ci, (pos, desc, forced, pending) in enumerate(points):
        res = per_point.get(ci, [])
        bad = [(h, p) for h, p in res if p]
        acked = sum(1 for o in objects if model.acks.get(o["id"], 1 << 60) < pos)
        diag = []
        for h, p in bad[:3]:
            diag.append("subset: %s" % h)
            diag += ["  " + x for x in p[:6]]
        tap.ok(not bad, "crash %s (trace line %d): %d states, %d objects acknowledged, %d operations not durable" % (
            desc, pos + 1, len(res), acked, len(pending)), diag)
    tap.ok(lost_total == 0 and corrupt_total == 0,
           "%d distinct states checked in %.0f s: %d acknowledged objects lost, %d corrupt answers" % (
               checked, elapsed, lost_total, corrupt_total))
    tap.done()


if __name__ == "__main__":
    main()
