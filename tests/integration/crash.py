#!/usr/bin/env python3
"""SIGKILL berth at random moments while clients push, and check after every restart that nothing acknowledged
was lost. Driven by tests/integration/crash.sh (which documents the environment variables); TAP on stdout.

Clients (threads, one keep-alive connection each) push blobs in every way the API allows (a single POST with
?digest=, POST then PUT, POST then PATCHes then PUT, a cross-repository mount, and resuming after a restart an
upload session a kill interrupted), image manifests by tag and by digest, indexes, and move a tag of their own
again and again. An object counts as acknowledged when its 201 arrived. After each kill berth is started again and
- every acknowledged blob is served with exactly its bytes (its digest and size), every acknowledged manifest with
  its bytes, and every tag points at the manifest last acknowledged for it or at one sent after that (a PUT in
  flight at the kill may or may not have been committed; either is right);
- an upload session whose PATCH was acknowledged still exists, at least at that offset, and can be finished;
- `berth fsck --grace 0` (with --verify as often as CRASH_VERIFY_EVERY says) reports no error. Orphans are
  allowed: blob files, upload sessions and temporary files of pushes that were never acknowledged, each of them
  unreferenced (fsck classes them so); a blob file whose bytes do not match its name is not.
At the end `berth fsck --repair --grace 0` removes those orphans, fsck is clean (exit 0) and every acknowledged
object is still served.
"""
import hashlib
import http.client
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

REPOS = ["crash/a", "crash/b", "crash/c"]
TAG_NUMBERS = itertools.count(1)  # tags pushed once each
OCTET = {"Content-Type": "application/octet-stream"}
MT = {
    "oci": ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.index.v1+json"),
    "docker": ("application/vnd.docker.distribution.manifest.v2+json",
               "application/vnd.docker.container.image.v1+json",
               "application/vnd.docker.image.rootfs.diff.tar.gzip",
               "application/vnd.docker.distribution.manifest.list.v2+json"),
}


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def content(seed, size):
    """The bytes of a blob, made again from its seed and size whenever needed."""
    return random.Random(seed).randbytes(size)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Unexpected(Exception):
    """The server answered, and not as it should have."""


class Journal:
    """What the clients were told, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.blobs = {}      # (repo, digest) -> (seed, size), acknowledged
        self.manifests = {}  # (repo, digest) -> bytes, acknowledged (or seen served under a tag)
        self.tags = {}       # (repo, tag) -> {"acked": digest or None, "sent": {digest: bytes} sent after it}
        self.sessions = []   # upload sessions a kill interrupted, to resume
        self.fresh = set()   # blobs acknowledged since the last full check
        self.failures = []
        self.acked_objects = 0
        self.acked_bytes = 0
        self.requests = 0

    def ack_blob(self, repo, digest, seed, size):
        with self.lock:
            self.blobs[(repo, digest)] = (seed, size)
            self.fresh.add((repo, digest))
            self.acked_objects += 1
            self.acked_bytes += size

    def ack_manifest(self, repo, digest, body):
        with self.lock:
            self.manifests[(repo, digest)] = body
            self.acked_objects += 1
            self.acked_bytes += len(body)

    def tag_sent(self, repo, tag, digest, body):
        with self.lock:
            t = self.tags.setdefault((repo, tag), {"acked": None, "sent": {}})
            t["sent"][digest] = body

    def tag_acked(self, repo, tag, digest):
        with self.lock:
            self.tags[(repo, tag)] = {"acked": digest, "sent": {}}

    def fail(self, msg):
        with self.lock:
            self.failures.append(msg)

    def blob_in(self, rng, repo=None):
        with self.lock:
            keys = [k for k in self.blobs if repo is None or k[0] == repo]
            return rng.choice(keys) if keys else None

    def take_session(self):
        with self.lock:
            return self.sessions.pop(0) if self.sessions else None

    def put_session(self, s):
        with self.lock:
            self.sessions.append(s)


class Client:
    def __init__(self, wid, port, journal, rng):
        self.wid, self.port, self.j, self.rng = wid, port, journal, rng
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def req(self, method, path, body=None, headers=None, expect=None):
        h = dict(headers or {})
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        with self.j.lock:
            self.j.requests += 1
        if expect is not None and r.status not in expect:
            raise Unexpected("%s %s -> %d %s" % (method, path, r.status, data[:200]))
        return r.status, r.headers, data

    # ---- blobs

    def size(self):
        x = self.rng.random()
        if x < 0.65:
            return self.rng.randint(1, 4096)
        if x < 0.995:
            return self.rng.randint(4097, 32 * 1024)
        return self.rng.randint(1024 * 1024 + 1, 2 * 1024 * 1024 + 500000)  # past h2o's 1 MiB memory buffer

    def push_blob(self, repo, seed=None, size=None):
        seed = self.rng.getrandbits(64) if seed is None else seed
        size = self.size() if size is None else size
        data = content(seed, size)
        d = sha256(data)
        how = self.rng.choice(["post", "put", "chunked"])
        if how == "post":
            self.req("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data, OCTET, (201,))
        elif how == "put":
            _, h, _ = self.req("POST", "/v2/%s/blobs/uploads/" % repo, None, None, (202,))
            self.req("PUT", with_query(h["Location"], "digest=" + d), data, OCTET, (201,))
        else:
            _, h, _ = self.req("POST", "/v2/%s/blobs/uploads/" % repo, None, None, (202,))
            s = {"repo": repo, "url": h["Location"], "seed": seed, "size": size, "acked": 0, "finishing": False}
            self.finish_session(s, data, d, self.rng.randint(1, 4))
        self.j.ack_blob(repo, d, seed, size)
        return d, size

    def finish_session(self, s, data, d, nchunks):
        """PATCH the rest of `data` from s["acked"] in chunks, then PUT. On a kill, the session is left to resume."""
        done = False
        try:
            off = s["acked"]
            cuts = sorted(self.rng.sample(range(off + 1, len(data)), min(nchunks - 1, max(0, len(data) - off - 1))))
            for a, b in zip([off] + cuts, cuts + [len(data)]):
                if a == b or (b == len(data) and self.rng.random() < 0.2):
                    break  # the last bytes go with the PUT
                _, h, _ = self.req("PATCH", s["url"], data[a:b], dict(OCTET, **{"Content-Range": "%d-%d" % (a, b - 1)}),
                                   (202,))
                s["url"], s["acked"] = h["Location"], b
            s["finishing"] = True
            self.req("PUT", with_query(s["url"], "digest=" + d), data[s["acked"]:], OCTET, (201,))
            done = True
        finally:
            if not done:
                self.j.put_session(s)

    def resume(self):
        """Finish an upload session a kill interrupted (in an earlier round)."""
        s = self.j.take_session()
        if s is None:
            return False
        data = content(s["seed"], s["size"])
        d = sha256(data)
        try:
            st, h, _ = self.req("GET", s["url"])
        except Exception:
            self.j.put_session(s)
            raise
        if st == 404 and s["finishing"]:
            return True  # its PUT was in flight: stored or not, it was never acknowledged
        if st != 204:
            raise Unexpected("resuming %s: GET -> %d, the acknowledged chunks are gone" % (s["url"], st))
        m = re.fullmatch(r"0-(\d+)", h.get("Range", ""))
        off = int(m.group(1)) + 1 if m else -1
        if off == 1 and s["acked"] == 0:  # "0-0": empty, or one byte of an interrupted PATCH
            st, h2, _ = self.req("PATCH", s["url"], data[0:1], dict(OCTET, **{"Content-Range": "0-0"}), (202, 416))
            if st == 202:  # it was empty, and now holds the first byte
                s["url"] = h2["Location"]
        if off < s["acked"] or off > len(data):
            raise Unexpected("resuming %s: the session is at %d, %d bytes were acknowledged" % (s["url"], off,
                                                                                              s["acked"]))
        s["acked"], s["finishing"] = off, False
        self.finish_session(s, data, d, self.rng.randint(1, 2))
        self.j.ack_blob(s["repo"], d, s["seed"], s["size"])
        return True

    def mount(self):
        k = self.j.blob_in(self.rng)
        if k is None:
            return
        src, d = k
        dst = self.rng.choice([r for r in REPOS if r != src])
        self.req("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src), None, None, (201,))
        seed, size = self.j.blobs[k]
        self.j.ack_blob(dst, d, seed, size)

    # ---- manifests

    def put_manifest(self, repo, body, mt, how):
        d = sha256(body)
        if how == "digest":
            ref = d
        elif how == "moving":
            ref = "w%d-latest" % self.wid
        else:
            ref = "w%d-%d" % (self.wid, next(TAG_NUMBERS))
        if ref != d:
            self.j.tag_sent(repo, ref, d, body)
        self.req("PUT", "/v2/%s/manifests/%s" % (repo, ref), body, {"Content-Type": mt}, (201,))
        self.j.ack_manifest(repo, d, body)
        if ref != d:
            self.j.tag_acked(repo, ref, d)
        return d

    def image(self, repo, how, kind=None):
        kind = kind or self.rng.choice(["oci", "docker"])
        mt, cmt, lmt, _ = MT[kind]
        cd, csize = self.push_blob(repo, size=self.rng.randint(100, 2000))  # berth does not read configs
        layers = []
        for _ in range(self.rng.randint(1, 2)):
            if self.rng.random() < 0.2 and (old := self.j.blob_in(self.rng, repo)) is not None:
                layers.append((old[1], self.j.blobs[old][1]))  # a layer this repository already has
            else:
                layers.append(self.push_blob(repo))
        m = {"schemaVersion": 2, "mediaType": mt, "config": {"mediaType": cmt, "digest": cd, "size": csize},
             "layers": [{"mediaType": lmt, "digest": d, "size": n} for d, n in layers]}
        body = json.dumps(m, indent=self.rng.choice([None, 2])).encode()
        return self.put_manifest(repo, body, mt, how), body, mt

    def index(self, repo, how):
        kind = self.rng.choice(["oci", "docker"])
        items = []
        for arch in ("amd64", "arm64"):
            d, body, mt = self.image(repo, "digest", kind)
            items.append({"mediaType": mt, "digest": d, "size": len(body),
                          "platform": {"architecture": arch, "os": "linux"}})
        imt = MT[kind][3]
        body = json.dumps({"schemaVersion": 2, "mediaType": imt, "manifests": items}).encode()
        self.put_manifest(repo, body, imt, how)

    def run(self, stop):
        try:
            while not stop.is_set():
                repo = self.rng.choice(REPOS)
                x = self.rng.random()
                how = self.rng.choice(["digest", "tag", "moving"])
                if x < 0.10 and self.resume():
                    continue
                if x < 0.45:
                    self.push_blob(repo)
                elif x < 0.75:
                    self.image(repo, how)
                elif x < 0.88:
                    self.index(repo, how)
                else:
                    self.mount()
        except Unexpected as e:
            if not stop.is_set():
                self.j.fail("client %d: %s" % (self.wid, e))
        except (OSError, http.client.HTTPException):
            pass  # the server is gone
        finally:
            self.conn.close()


def with_query(url, q):
    return url + ("&" if "?" in url else "?") + q


class Server:
    def __init__(self, berth, srv, port):
        self.berth, self.srv, self.port = berth, srv, port
        self.data = os.path.join(srv, "data")
        self.logpath = os.path.join(srv, "berth.log")
        self.log_checked = 0
        self.proc = None

    def start(self, wait=True):
        env = dict(os.environ, BERTH_HTTP_ADDR="127.0.0.1:%d" % self.port, BERTH_STORAGE_ROOT=self.data,
                   BERTH_LOG_ACCESS="", BERTH_MODE="open")
        env.pop("BERTH_CONFIG", None)
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen([self.berth, "serve"], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        if wait:
            self.wait_ready()

    def wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("berth exited with status %d at start" % self.proc.returncode)
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("berth did not answer /healthz within 20 s")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return -1

    def sanitizer_report(self):
        with open(self.logpath, "rb") as f:
            f.seek(self.log_checked)
            new = f.read().decode("utf-8", "replace")
        self.log_checked += len(new.encode())
        m = SANITIZER.search(new)
        return new[m.start():m.start() + 3000] if m else None


def verify(port, j, full, nthreads=4):
    """Every acknowledged manifest and tag, and the acknowledged blobs (all of them when `full`, else those
    acknowledged since the last full check). Returns (objects checked, bytes lost, failures)."""
    with j.lock:
        blobs = list(j.blobs.items()) if full else [(k, j.blobs[k]) for k in j.fresh]
        manifests = list(j.manifests.items())
        tags = list(j.tags.items())
    work = [("b", x) for x in blobs] + [("m", x) for x in manifests] + [("t", x) for x in tags]
    random.shuffle(work)
    lost, failures, seen = [0], [], {}
    lock = threading.Lock()

    def check(items):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for kind, ((repo, ref), val) in items:
            c.request("GET", "/v2/%s/%s/%s" % (repo, "blobs" if kind == "b" else "manifests", ref))
            r = c.getresponse()
            body = r.read()
            bad = None
            if kind == "b":
                seed, size = val
                if r.status != 200 or len(body) != size or sha256(body) != ref:
                    bad, n = "blob %s@%s: %d, %d bytes of %d" % (repo, ref, r.status, len(body), size), size
            elif kind == "m":
                if r.status != 200 or body != val:
                    bad, n = "manifest %s@%s: %d, not its bytes" % (repo, ref, r.status), len(val)
            else:
                got = sha256(body) if r.status == 200 else None if r.status == 404 else "status %d" % r.status
                ok = [val["acked"]] + list(val["sent"])
                if got not in ok:
                    bad, n = "tag %s:%s: %s, expected one of %s" % (repo, ref, got or r.status, ok), 0
                with lock:
                    seen[(repo, ref)] = (got, val["sent"].get(got))
            if bad:
                with lock:
                    failures.append(bad)
                    lost[0] += n
        c.close()

    threads = [threading.Thread(target=check, args=(work[i::nthreads],)) for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with j.lock:
        # what the tags point at now is durable: it becomes what they were last acknowledged at
        for (repo, tag), (got, body) in seen.items():
            j.tags[(repo, tag)] = {"acked": got, "sent": {}}
            if body is not None:
                j.manifests[(repo, got)] = body
        if full and not failures:
            j.fresh.clear()
    return len(work), lost[0], failures


SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:")


def fsck(berth, data, *args):
    """berth fsck: (exit status, stdout, stderr); a sanitizer report on stderr makes the status 99."""
    env = dict(os.environ, BERTH_STORAGE_ROOT=data, BERTH_LOG_LEVEL="warn")
    env.pop("BERTH_CONFIG", None)
    p = subprocess.run([berth, "fsck", *args], env=env, capture_output=True, text=True)
    return 99 if SANITIZER.search(p.stderr) else p.returncode, p.stdout, p.stderr


def fsck_clean(out, rc):
    """The rule: no error; orphans only of the kinds an interrupted push leaves, each unreferenced; exit status 1
    only for those. Returns (problems, {kind: count} of orphans)."""
    problems, orphans = [], {}
    for line in out.splitlines():
        w = line.split(" ", 2)
        if w[0] == "error":
            problems.append(line)
        elif w[0] in ("orphan", "pending"):
            orphans[w[1]] = orphans.get(w[1], 0) + 1
            if w[1] not in ("blob", "upload", "temp") or "hash to" in line:
                problems.append(line)
    if rc not in (0, 1) or (rc == 1 and not orphans) or not out.rstrip().rpartition("\n")[2].startswith("fsck: "):
        problems.append("exit status %d" % rc)
    return problems, orphans


def main():
    berth, tmp = sys.argv[1], sys.argv[2]
    kills = env_int("CRASH_KILLS", 20)
    nclients = env_int("CRASH_CLIENTS", 4)
    long_run = kills > 50
    full_every = env_int("CRASH_FULL_EVERY", 25 if long_run else 1)
    verify_every = env_int("CRASH_VERIFY_EVERY", 25 if long_run else 4)
    seed = env_int("CRASH_SEED", random.randrange(1 << 30))
    rng = random.Random(seed)
    random.seed(seed)
    n = 0

    def tap(ok, desc, diag=()):
        nonlocal n
        n += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", n, desc))
        for d in diag if not ok else ():
            for line in str(d).splitlines():
                print("# " + line)
        sys.stdout.flush()
        return ok

    print("# CRASH_KILLS=%d CRASH_CLIENTS=%d CRASH_SEED=%d (full check every %d, fsck --verify every %d)" %
          (kills, nclients, seed, full_every, verify_every))
    srv = os.path.join(tmp, "srv")
    os.makedirs(srv, exist_ok=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = Server(berth, srv, port)
    j = Journal()
    t0 = time.monotonic()
    server.start()
    total_lost, early_kills, failed = 0, 0, 0
    for k in range(1, kills + 1):
        if k > 1 and rng.random() < 0.05:  # now and then, a kill while berth opens its store
            server.kill()
            server.start(wait=False)
            time.sleep(rng.uniform(0, 0.03))
            server.kill()
            early_kills += 1
            server.start()
        stop = threading.Event()
        clients = [Client(i, port, j, random.Random(rng.getrandbits(64))) for i in range(nclients)]
        threads = [threading.Thread(target=c.run, args=(stop,)) for c in clients]
        acked_before = j.acked_objects
        for t in threads:
            t.start()
        delay = rng.uniform(0, 0.05) if rng.random() < 0.1 else rng.uniform(0.05, 1.0)
        time.sleep(delay)
        server.kill()
        stop.set()
        for t in threads:
            t.join(60)
        report = server.sanitizer_report()
        try:
            server.start()
        except RuntimeError as e:
            tap(False, "kill %d: berth starts again" % k, [e, open(server.logpath).read()[-3000:]])
            break
        full = k % full_every == 0 or k == kills
        t1 = time.monotonic()
        checked, lost, failures = verify(port, j, full)
        t2 = time.monotonic()
        total_lost += lost
        rc, out, err = fsck(berth, server.data, "--grace", "0", *(["--verify"] if k % verify_every == 0 or
                                                                  k == kills else []))
        problems, orphans = fsck_clean(out, rc)
        t3 = time.monotonic()
        with j.lock:
            failures = j.failures + failures
            j.failures = []
        desc = ("kill %d after %.0f ms: %d objects acknowledged (%d this round), %d checked%s, all served byte-exact; "
                "fsck%s: no error%s (%.1f s, %.1f s)" % (k, delay * 1000, j.acked_objects, j.acked_objects - acked_before, checked,
                                        " (full)" if full else "", " --verify" if k % verify_every == 0 else "",
                                        ", orphans: " + ", ".join("%d %s" % (c, o) for o, c in sorted(orphans.items()))
                                        if orphans else "", t2 - t1, t3 - t2))
        ok = tap(not failures and not problems and report is None, desc,
                 failures[:20] + problems[:20] + ([report] if report else []) + ([err] if problems else []))
        failed += not ok
        if failed >= 3:
            print("Bail out! three rounds failed")
            break

    # the end: repair while idle, then nothing is left and nothing acknowledged went
    rc, out, err = fsck(berth, server.data, "--repair", "--grace", "0")
    removed = out.count(": removed\n")
    leftovers = {}
    for line in out.splitlines():
        if line.endswith(": removed"):
            leftovers[line.split(" ")[1]] = leftovers.get(line.split(" ")[1], 0) + 1
    tap(rc == 0 and "error " not in out, "fsck --repair --grace 0 removes the %d leftovers (exit 0)" % removed,
        [out[-3000:], err])
    rc, out, err = fsck(berth, server.data, "--verify", "--grace", "0")
    tap(rc == 0 and re.search(r": 0 errors, 0 orphans \(0 removed\), 0 pending$", out.strip()) is not None,
        "then fsck --verify --grace 0 finds nothing (exit 0)", [out[-3000:], err])
    checked, lost, failures = verify(port, j, True)
    total_lost += lost
    tap(not failures, "after the repair every acknowledged object (%d) is still served byte-exact" % checked,
        failures[:20])
    rc = server.stop()
    tap(rc == 0, "berth exits with status 0 after SIGTERM", [] if rc == 0 else ["status %d" % rc])
    report = server.sanitizer_report()
    tap(report is None, "no sanitizer report in berth's log", [report] if report else [])
    tap(total_lost == 0, "bytes lost: %d" % total_lost)
    print("# %d kills (and %d more while berth started), %d requests, %d objects acknowledged (%d bytes), %d bytes "
          "lost; leftovers of unacknowledged pushes removed at the end: %s; %.0f s" %
          (kills, early_kills, j.requests, j.acked_objects, j.acked_bytes, total_lost,
           ", ".join("%d %s" % (c, o) for o, c in sorted(leftovers.items())) or "none", time.monotonic() - t0))
    print("1..%d" % n)
    return 0 if failed == 0 and total_lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
