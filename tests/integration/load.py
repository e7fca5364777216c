# Concurrent registry clients for concurrency.sh (not a test file: tests/run runs *.sh only). Standard library only.
#   load.py push URL ACK [--workers W] [--images N] [--readers R] [--user U:P] [--bearer] [--prefix P]
#       W threads push N images each into P/wI/app and P/shared/app at once: config and layers by every upload
#       method (POST ?digest=, POST+PUT, POST+PATCH..+PUT, POST+PATCH..+PUT with the last chunk), one blob common
#       to all, manifests by tag and by digest, an index, and one tag ("latest") that every worker moves. After
#       each 201 the pusher reads the object back on another connection (read-your-writes, whichever event loop
#       serves it), and R readers keep pulling everything acknowledged so far, listing tags and the catalog
#       (which must already hold every tag and repository acknowledged before the request) and asking for the
#       status of uploads in progress. Every acknowledged object goes to ACK (JSON lines).
#   load.py storm URL ACK [--workers W] [--slow S] [--seconds T]
#       W threads push small images and pull what was acknowledged, S threads upload 1 MiB blobs slowly (about
#       3 s each), over keep-alive connections, until the server refuses connections (it was told to stop) or T
#       seconds. Every request ends one way: answered as expected, answered otherwise (a failure), or closed
#       without an answer (no status line: the server closed an idle or new connection). Writes "started" to
#       ACK.started once every thread got an answer; after the run, reads the time of the SIGTERM from
#       ACK.term (if there) to count the requests that were in flight then.
#   load.py churn URL ACK [--workers W] [--seconds T]
#       For gc.sh, while garbage collection runs in a loop: W threads, each in a repository of its own, push new
#       tags (a config, a layer of their own and layers every worker shares, uploaded every time by a random
#       method), move "latest", delete tags and manifests by digest, and pull a random live tag, byte for byte,
#       until T seconds. Every push, delete and pull of a live tag must succeed. What is live at the end goes to ACK
#       (as push writes it, for verify).
#   load.py verify URL ACK [--user U:P]
#       Every object in ACK is served byte for byte (a tag acknowledged with several manifests: any one of them).
#   load.py throttle PORTFILE HOST:PORT BYTES_PER_S
#       A TCP forwarder on a free port (written to PORTFILE) that sends the upstream's bytes on at most that rate.
# Prints one summary line of key=value pairs; failures (at most 20) on stderr; exit status 1 if there was any.
import base64
import hashlib
import http.client
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
CLOSED = (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError, socket.timeout)


def content(seed, size):
    """Deterministic bytes: what a blob of (seed, size) holds, so that ACK need not keep them."""
    return hashlib.shake_256(seed.encode()).digest(size) if size else b""


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Failures:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, msg):
        with self.lock:
            self.items.append(msg)

    def report(self):
        for m in self.items[:20]:
            print("FAIL: " + m, file=sys.stderr)
        if len(self.items) > 20:
            print("... and %d more" % (len(self.items) - 20), file=sys.stderr)


class Truncated(Exception):
    pass


class Client:
    """One keep-alive connection (reopened after a failure), with Basic or Bearer credentials."""

    def __init__(self, url, user=None, bearer=False):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.user, self.bearer, self.token = user, bearer, None
        self.conn = None
        self.requests = 0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _basic(self):
        return {"Authorization": "Basic " + base64.b64encode(self.user.encode()).decode()}

    def _auth(self):
        """Basic; or, like docker, nothing until a challenge names the scope of the token to fetch."""
        if self.user is None:
            return {}
        if self.bearer:
            return {"Authorization": "Bearer " + self.token} if self.token else {}
        return self._basic()

    def _fetch_token(self, challenge):
        params = dict(p.split("=", 1) for p in challenge[len("Bearer "):].split(",") if "=" in p)
        params = {k: v.strip('"') for k, v in params.items()}
        q = {"service": params.get("service", "")}
        if "scope" in params:
            q["scope"] = params["scope"]
        realm = urllib.parse.urlsplit(params["realm"])
        self.token = None
        st, _, body = self.request("GET", realm.path + "?" + urllib.parse.urlencode(q), auth=False,
                                   headers=self._basic())
        if st == 200:
            self.token = json.loads(body).get("token")

    def request(self, method, path, body=None, headers=None, auth=True, body_iter=None):
        """(status, headers with lower-case names, body). Raises CLOSED errors (no answer) or Truncated."""
        for attempt in range(2):
            h = dict(self._auth() if auth else {})
            h.update(headers or {})
            st, rh, data = self._once(method, path, body, h, body_iter)
            if st == 401 and auth and self.bearer and attempt == 0 and rh.get("www-authenticate", "").startswith(
                    "Bearer "):
                self._fetch_token(rh["www-authenticate"])
                if self.token:
                    continue
            return st, rh, data

    def _once(self, method, path, body, headers, body_iter):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.requests += 1
        try:
            if body_iter is None:
                self.conn.request(method, path, body=body, headers=headers)
            else:
                self.conn.putrequest(method, path, skip_accept_encoding=True)
                for k, v in headers.items():
                    self.conn.putheader(k, v)
                self.conn.endheaders()
                for piece in body_iter:
                    self.conn.send(piece)
            r = self.conn.getresponse()
            try:
                data = r.read()
            except http.client.IncompleteRead as e:
                raise Truncated("%s %s: %d of %s bytes" % (method, path, len(e.partial), r.getheader("content-length")))
            rh = {k.lower(): v for k, v in r.getheaders()}
            if r.will_close:
                self.close()
            return r.status, rh, data
        except BaseException:
            self.close()
            raise


def with_query(loc, **kw):
    return loc + ("&" if "?" in loc else "?") + urllib.parse.urlencode(kw)


def push_blob(c, repo, data, method):
    """Upload `data` into `repo` by `method` (single, put, chunks, chunks_put); the status of the last request."""
    d = sha(data)
    octet = {"Content-Type": "application/octet-stream"}
    if method == "single":
        st, _, _ = c.request("POST", with_query("/v2/%s/blobs/uploads/" % repo, digest=d), data, octet)
        return st
    st, h, _ = c.request("POST", "/v2/%s/blobs/uploads/" % repo, b"")
    if st != 202:
        return st
    loc = h["location"]
    if method == "put":
        st, _, _ = c.request("PUT", with_query(loc, digest=d), data, octet)
        return st
    n = 3 if len(data) >= 3 else 1
    cut = [len(data) * i // n for i in range(n + 1)]
    last = n if method == "chunks" else n - 1
    for i in range(last):
        piece = data[cut[i]:cut[i + 1]]
        hdr = dict(octet)
        if piece:
            hdr["Content-Range"] = "%d-%d" % (cut[i], cut[i + 1] - 1)
        st, h, _ = c.request("PATCH", loc, piece, hdr)
        if st != 202:
            return st
        loc = h["location"]
        Push.in_progress_add(c, loc)
    st, _, _ = c.request("PUT", with_query(loc, digest=d), data[cut[last]:] if last < n else b"", octet)
    return st


class Push:
    """The push mode: writers, readers, read-your-writes checks."""
    uploads = []  # upload locations seen in progress (readers ask for their status)
    lock = threading.Lock()

    @classmethod
    def in_progress_add(cls, c, loc):
        with cls.lock:
            cls.uploads.append(loc)
            del cls.uploads[:-50]

    def __init__(self, args):
        self.url, self.ack_path = args.url, args.ack
        self.args = args
        self.fail = Failures()
        self.acked = []  # records, in the order of their 201s
        self.tags = {}  # repo -> set of acknowledged tags
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.counts = {"blobs": 0, "manifests": 0, "reads": 0, "lists": 0, "status_checks": 0}
        self.shared = content("shared-" + str(os.getpid()), 700 * 1024)

    def client(self):
        return Client(self.url, self.args.user, self.args.bearer)

    def ack(self, rec):
        with self.lock:
            self.acked.append(rec)
            if rec.get("tag"):
                self.tags.setdefault(rec["repo"], set()).add(rec["tag"])
            self.counts["blobs" if rec["kind"] == "blob" else "manifests"] += 1

    def check_read(self, c, rec, who, exact=False):
        """The object of `rec` is served, byte for byte. A tag that moves: the manifest last pushed to it when only
        `who` moves it and `exact`; else any manifest acknowledged for it or being pushed to it."""
        if rec["kind"] == "blob":
            st, h, body = c.request("GET", "/v2/%s/blobs/%s" % (rec["repo"], rec["digest"]))
            want = [content(rec["seed"], rec["size"])]
        else:
            st, h, body = c.request("GET", "/v2/%s/manifests/%s" % (rec["repo"], rec.get("tag") or rec["digest"]),
                                    headers={"Accept": MT_MANIFEST + ", " + MT_INDEX})
            want = [bytes.fromhex(rec["body"])]
            if rec.get("tag") and not exact:
                with self.lock:
                    want = [bytes.fromhex(r["body"]) for r in self.acked if r.get("tag") == rec["tag"]
                            and r["repo"] == rec["repo"]] + [bytes.fromhex(b) for b in self.moving_pending]
        with self.lock:
            self.counts["reads"] += 1
        if st != 200 or body not in want:
            self.fail.add("%s: GET %s %s: status %d, %d bytes, not what was pushed" % (
                who, rec["repo"], rec.get("tag") or rec["digest"], st, len(body)))

    def check_lists(self, c, who):
        with self.lock:
            repos = {r: set(t) for r, t in self.tags.items()}
        st, _, body = c.request("GET", "/v2/_catalog?n=10000")
        got = set(json.loads(body).get("repositories") or []) if st == 200 else set()
        if st != 200 or not set(repos) <= got:
            self.fail.add("%s: catalog (status %d) misses acknowledged repositories %s" % (
                who, st, sorted(set(repos) - got)))
        repo = random.choice(sorted(repos)) if repos else None
        if repo:
            st, _, body = c.request("GET", "/v2/%s/tags/list?n=10000" % repo)
            got = set(json.loads(body).get("tags") or []) if st == 200 else set()
            if st != 200 or not repos[repo] <= got:
                self.fail.add("%s: tags of %s (status %d) miss acknowledged %s" % (
                    who, repo, st, sorted(repos[repo] - got)))
        with self.lock:
            self.counts["lists"] += 1

    def put_manifest(self, c, rc, repo, ref, body, mt, who, writers="one"):
        st, h, _ = c.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body, {"Content-Type": mt})
        if st != 201:
            self.fail.add("%s: PUT manifest %s:%s -> %d" % (who, repo, ref, st))
            return False
        rec = {"kind": "manifest", "repo": repo, "digest": sha(body), "body": body.hex(), "type": mt}
        if not ref.startswith("sha256:"):
            rec["tag"] = ref
            rec["writers"] = writers
        self.ack(rec)
        self.check_read(rc, rec, who + " (read-your-writes)", exact=writers == "one")
        return True

    def writer(self, w):
        who = "writer %d" % w
        c, rc = self.client(), self.client()
        p = self.args.prefix
        repo, shared_repo = "%s/w%d/app" % (p, w), "%s/shared/app" % p
        methods = ["single", "put", "chunks", "chunks_put"]
        sizes = [2048, 200 * 1024, 1536 * 1024, 3 * 1024 * 1024]
        manifests = []
        try:
            for i in range(self.args.images):
                cfg = json.dumps({"architecture": "amd64", "os": "linux", "worker": w, "image": i,
                                  "rootfs": {"type": "layers", "diff_ids": []}}).encode()
                blobs = [("cfg-%d-%d-%d" % (os.getpid(), w, i), None, cfg)]
                for k in range(2):
                    seed, size = "layer-%d-%d-%d-%d" % (os.getpid(), w, i, k), random.choice(sizes)
                    blobs.append((seed, size, content(seed, size)))
                blobs.append(("shared-" + str(os.getpid()), len(self.shared), self.shared))
                for k, (seed, size, data) in enumerate(blobs):
                    for target in (repo, shared_repo) if k != 1 else (repo,):
                        m = methods[(w + i + k) % len(methods)]
                        st = push_blob(c, target, data, m)
                        if st != 201:
                            self.fail.add("%s: push blob %s (%d bytes, %s) to %s -> %d" % (
                                who, sha(data), len(data), m, target, st))
                            return
                        if size is None:  # a config: its bytes are in the manifest's record
                            continue
                        rec = {"kind": "blob", "repo": target, "digest": sha(data), "seed": seed, "size": size}
                        self.ack(rec)
                        self.check_read(rc, rec, who + " (read-your-writes)")
                mf = json.dumps({
                    "schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": {"mediaType": MT_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                    "layers": [{"mediaType": MT_LAYER, "digest": sha(d), "size": len(d)} for _, _, d in blobs[1:]],
                }, indent=1).encode()
                manifests.append(mf)
                if not self.put_manifest(c, rc, repo, "v%d" % i, mf, MT_MANIFEST, who):
                    return
                # the same image without its own layer, by digest, into the shared repository
                shared_mf = json.dumps({
                    "schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": {"mediaType": MT_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                    "layers": [{"mediaType": MT_LAYER, "digest": sha(self.shared), "size": len(self.shared)}],
                }).encode()
                if not self.put_manifest(c, rc, shared_repo, sha(shared_mf), shared_mf, MT_MANIFEST, who):
                    return
                with self.lock:
                    self.moving_pending.append(shared_mf.hex())
                if not self.put_manifest(c, rc, shared_repo, "latest", shared_mf, MT_MANIFEST, who, writers="many"):
                    return
                if not self.put_manifest(c, rc, shared_repo, "w%d" % w, shared_mf, MT_MANIFEST, who):
                    return
                self.check_lists(rc, who)
            idx = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
                {"mediaType": MT_MANIFEST, "digest": sha(m), "size": len(m),
                 "platform": {"architecture": "arch%d" % j, "os": "linux"}} for j, m in enumerate(manifests)]}).encode()
            self.put_manifest(c, rc, repo, "index", idx, MT_INDEX, who)
        except (Truncated,) + CLOSED as e:
            self.fail.add("%s: %s: %s" % (who, type(e).__name__, e))

    def reader(self, r):
        who = "reader %d" % r
        c = self.client()
        n = 0
        try:
            while not self.done.is_set():
                n += 1
                if n % 8 == 0:
                    c.close()  # a new connection: perhaps another event loop
                with self.lock:
                    rec = random.choice(self.acked) if self.acked else None
                if rec is not None:
                    self.check_read(c, rec, who)
                if n % 4 == 0:
                    self.check_lists(c, who)
                with Push.lock:
                    loc = random.choice(Push.uploads) if Push.uploads else None
                if loc is not None:
                    st, h, _ = c.request("GET", loc)
                    rng = h.get("range", "")
                    if not (st == 404 or (st == 204 and rng.startswith("0-"))):
                        self.fail.add("%s: GET upload status %s -> %d, Range '%s'" % (who, loc, st, rng))
                    with self.lock:
                        self.counts["status_checks"] += 1
                if rec is None and loc is None:
                    time.sleep(0.05)
        except (Truncated,) + CLOSED as e:
            self.fail.add("%s: %s: %s" % (who, type(e).__name__, e))

    def run(self):
        self.moving_pending = []
        t0 = time.time()
        writers = [threading.Thread(target=self.writer, args=(w,)) for w in range(self.args.workers)]
        readers = [threading.Thread(target=self.reader, args=(r,)) for r in range(self.args.readers)]
        for t in writers + readers:
            t.start()
        for t in writers:
            t.join()
        self.done.set()
        for t in readers:
            t.join()
        with open(self.ack_path, "a") as f:
            for rec in self.acked:
                f.write(json.dumps(rec) + "\n")
        print("seconds=%.1f blobs=%d manifests=%d reads=%d lists=%d status_checks=%d failures=%d" % (
            time.time() - t0, self.counts["blobs"], self.counts["manifests"], self.counts["reads"],
            self.counts["lists"], self.counts["status_checks"], len(self.fail.items)))
        self.fail.report()
        return 1 if self.fail.items else 0


class Storm:
    """The storm mode: load until the server goes away; every request answered as expected or closed."""

    def __init__(self, args):
        self.args = args
        self.fail = Failures()
        self.lock = threading.Lock()
        self.acked = []
        self.log = []  # (start, end, outcome) of every request
        self.counts = {"answered": 0, "closed": 0, "refused": 0}
        self.gone = threading.Event()
        self.ready = set()

    def call(self, c, who, expect, method, path, body=None, headers=None, body_iter=None):
        """The answer if it was one of `expect`; None if closed without an answer (or a failure, recorded)."""
        t = time.time()
        try:
            st, h, data = c.request(method, path, body, headers, body_iter=body_iter)
        except ConnectionRefusedError:
            with self.lock:
                self.counts["refused"] += 1
            self.gone.set()
            return None
        except CLOSED:
            with self.lock:
                self.counts["closed"] += 1
                self.log.append((t, time.time(), "closed"))
            return None
        except Truncated as e:
            self.fail.add("%s: a truncated answer: %s" % (who, e))
            return None
        with self.lock:
            self.log.append((t, time.time(), "answered"))
            self.counts["answered"] += 1
            self.ready.add(who)
        if st not in expect:
            self.fail.add("%s: %s %s -> %d (expected %s): %s" % (who, method, path, st, expect, data[:200]))
            return None
        return st, h, data

    def blob(self, c, who, repo, seed, size, slow=False):
        """Push a blob of (seed, size): its record once acknowledged, else None."""
        data = content(seed, size)
        d = sha(data)
        a = self.call(c, who, (202,), "POST", "/v2/%s/blobs/uploads/" % repo, b"")
        if a is None:
            return None
        octet = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        if slow:  # about 3 s for 1 MiB
            pieces = (data[i:i + 32768] for i in range(0, len(data), 32768))
            body_iter = (time.sleep(0.09) or p for p in pieces)
            a = self.call(c, who, (201,), "PUT", with_query(a[1]["location"], digest=d), None, octet, body_iter)
        else:
            a = self.call(c, who, (201,), "PUT", with_query(a[1]["location"], digest=d), data, octet)
        if a is None:
            return None
        rec = {"kind": "blob", "repo": repo, "digest": d, "seed": seed, "size": size}
        with self.lock:
            self.acked.append(rec)
        return rec

    def pusher(self, w):
        who = "storm %d" % w
        c = Client(self.args.url)
        repo, n, t_end = "storm/w%d" % w, 0, time.time() + self.args.seconds
        while not self.gone.is_set() and time.time() < t_end:
            n += 1
            layer = self.blob(c, who, repo, "storm-%d-%d-%d" % (os.getpid(), w, n), random.choice([3000, 40000, 300000]))
            if layer is None:
                continue
            cfg = json.dumps({"storm": [w, n], "rootfs": {"type": "layers", "diff_ids": []}}).encode()
            a = self.call(c, who, (201,), "POST", with_query("/v2/%s/blobs/uploads/" % repo, digest=sha(cfg)), cfg,
                          {"Content-Type": "application/octet-stream"})
            if a is None:
                continue
            mf = json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                             "config": {"mediaType": MT_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                             "layers": [{"mediaType": MT_LAYER, "digest": layer["digest"], "size": layer["size"]}]})
            mf = mf.encode()
            a = self.call(c, who, (201,), "PUT", "/v2/%s/manifests/t%d" % (repo, n), mf, {"Content-Type": MT_MANIFEST})
            if a is not None:
                with self.lock:
                    self.acked.append({"kind": "manifest", "repo": repo, "tag": "t%d" % n, "digest": sha(mf),
                                       "body": mf.hex(), "type": MT_MANIFEST})
            with self.lock:
                rec = random.choice(self.acked)
            path = "/v2/%s/%s/%s" % (rec["repo"], "blobs" if rec["kind"] == "blob" else "manifests",
                                     rec.get("tag") or rec["digest"])
            a = self.call(c, who, (200,), "GET", path, None, {"Accept": MT_MANIFEST})
            want = content(rec["seed"], rec["size"]) if rec["kind"] == "blob" else bytes.fromhex(rec["body"])
            if a is not None and a[2] != want:
                self.fail.add("%s: GET %s: %d bytes, not what was pushed" % (who, path, len(a[2])))

    def slow(self, s):
        who = "slow %d" % s
        c = Client(self.args.url)
        n, t_end = 0, time.time() + self.args.seconds
        while not self.gone.is_set() and time.time() < t_end:
            n += 1
            self.blob(c, who, "storm/slow%d" % s, "slow-%d-%d-%d" % (os.getpid(), s, n), 1024 * 1024, slow=True)

    def run(self):
        nthreads = self.args.workers + self.args.slow
        threads = [threading.Thread(target=self.pusher, args=(w,)) for w in range(self.args.workers)]
        threads += [threading.Thread(target=self.slow, args=(s,)) for s in range(self.args.slow)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            with self.lock:
                if len(self.ready) == nthreads and not os.path.exists(self.args.ack + ".started"):
                    open(self.args.ack + ".started", "w").close()
            time.sleep(0.05)
        with open(self.args.ack, "a") as f:
            for rec in self.acked:
                f.write(json.dumps(rec) + "\n")
        term = None
        if os.path.exists(self.args.ack + ".term"):
            term = float(open(self.args.ack + ".term").read())
        inflight = [o for (a, b, o) in self.log if term is not None and a < term < b]
        print("answered=%d closed=%d refused=%d acked=%d in_flight_at_term=%d answered_of_those=%d failures=%d" % (
            self.counts["answered"], self.counts["closed"], self.counts["refused"], len(self.acked), len(inflight),
            inflight.count("answered"), len(self.fail.items)))
        self.fail.report()
        return 1 if self.fail.items else 0


class Churn:
    SHARED = [("shared-%d" % i, 20000 + i) for i in range(4)]

    def __init__(self, args):
        self.url, self.ack, self.workers, self.seconds = args.url, args.ack, args.workers, args.seconds
        self.fail = Failures()
        self.lock = threading.Lock()
        self.counts = {"pushes": 0, "moves": 0, "tag_deletes": 0, "digest_deletes": 0, "pulls": 0}
        self.live = []

    def count(self, k):
        with self.lock:
            self.counts[k] += 1

    def expect(self, who, what, got, want):
        if got != want:
            self.fail.add("%s: %s -> %s, expected %s" % (who, what, got, want))
            return False
        return True

    def worker(self, w):
        c = Client(self.url)
        repo, who = "churn/w%d" % w, "worker %d" % w
        rnd = random.Random(w)
        live = {}  # tag -> (digest, manifest bytes, [(seed, size)])
        n = 0
        deadline = time.time() + self.seconds
        while time.time() < deadline:
            r = rnd.random()
            if r < 0.45 or len(live) < 2:
                n += 1
                blobs = [("cfg-%d-%d" % (w, n), 300), ("own-%d-%d" % (w, n), rnd.randint(2000, 60000))]
                blobs += rnd.sample(self.SHARED, rnd.randint(1, 2))
                ok = True
                for seed, size in blobs:
                    st = push_blob(c, repo, content(seed, size), rnd.choice(["single", "put", "chunks", "chunks_put"]))
                    ok = self.expect(who, "push blob %s" % seed, st, 201) and ok
                if not ok:
                    continue
                mf = json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                                 "config": {"mediaType": MT_CONFIG, "digest": sha(content(*blobs[0])),
                                            "size": blobs[0][1]},
                                 "layers": [{"mediaType": MT_LAYER, "digest": sha(content(*b)), "size": b[1]}
                                            for b in blobs[1:]]}).encode()
                tag = "t%d" % n
                st, _, body = c.request("PUT", "/v2/%s/manifests/%s" % (repo, tag), mf, {"Content-Type": MT_MANIFEST})
                if self.expect(who, "PUT manifest %s (%s)" % (tag, body[:200]), st, 201):
                    live[tag] = (sha(mf), mf, blobs)
                    self.count("pushes")
                if rnd.random() < 0.4:
                    st, _, _ = c.request("PUT", "/v2/%s/manifests/latest" % repo, mf, {"Content-Type": MT_MANIFEST})
                    if self.expect(who, "move latest", st, 201):
                        live["latest"] = (sha(mf), mf, blobs)
                        self.count("moves")
            elif r < 0.6:
                tag = rnd.choice(sorted(t for t in live if t != "latest") or ["latest"])
                d = live[tag][0]
                if rnd.random() < 0.5:
                    st, _, _ = c.request("DELETE", "/v2/%s/manifests/%s" % (repo, tag))
                    if self.expect(who, "DELETE tag %s" % tag, st, 202):
                        del live[tag]
                        self.count("tag_deletes")
                else:
                    st, _, _ = c.request("DELETE", "/v2/%s/manifests/%s" % (repo, d))
                    if self.expect(who, "DELETE manifest %s" % d, st, 202):
                        for t in [t for t, v in live.items() if v[0] == d]:
                            del live[t]
                        self.count("digest_deletes")
            else:
                if not live:
                    continue
                tag = rnd.choice(sorted(live))
                d, mf, blobs = live[tag]
                st, h, body = c.request("GET", "/v2/%s/manifests/%s" % (repo, tag), headers={"Accept": MT_MANIFEST})
                if not self.expect(who, "GET manifest %s" % tag, (st, body == mf), (200, True)):
                    continue
                for seed, size in blobs:
                    st, _, data = c.request("GET", "/v2/%s/blobs/%s" % (repo, sha(content(seed, size))))
                    self.expect(who, "GET blob %s of %s" % (seed, tag), (st, data == content(seed, size)), (200, True))
                self.count("pulls")
        c.close()
        with self.lock:
            for t, (d, mf, blobs) in live.items():
                self.live.append({"kind": "manifest", "repo": repo, "tag": t, "digest": d, "body": mf.hex()})
                self.live += [{"kind": "blob", "repo": repo, "digest": sha(content(*b)), "seed": b[0], "size": b[1]}
                              for b in blobs]

    def run(self):
        threads = [threading.Thread(target=self.worker, args=(w,)) for w in range(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with open(self.ack, "w") as f:
            for rec in self.live:
                f.write(json.dumps(rec) + "\n")
        print(" ".join("%s=%d" % kv for kv in sorted(self.counts.items())) + " failures=%d" % len(self.fail.items))
        self.fail.report()
        return 1 if self.fail.items else 0


def verify(args):
    fail = Failures()
    c = Client(args.url, args.user, args.bearer)
    recs = [json.loads(l) for l in open(args.ack)]
    by_tag = {}  # a tag one client moved: its last manifest; one that several moved at once: any of theirs
    for r in recs:
        if r["kind"] == "manifest" and r.get("tag"):
            k = (r["repo"], r["tag"])
            if r.get("writers", "one") == "one":
                by_tag[k] = set()
            by_tag.setdefault(k, set()).add(bytes.fromhex(r["body"]))
    n = 0
    for r in recs:
        if r["kind"] == "blob":
            paths = [("/v2/%s/blobs/%s" % (r["repo"], r["digest"]), {content(r["seed"], r["size"])})]
        else:
            paths = [("/v2/%s/manifests/%s" % (r["repo"], r["digest"]), {bytes.fromhex(r["body"])})]
            if r.get("tag"):
                paths.append(("/v2/%s/manifests/%s" % (r["repo"], r["tag"]), by_tag[(r["repo"], r["tag"])]))
        for path, want in paths:
            n += 1
            st, h, body = c.request("GET", path, headers={"Accept": MT_MANIFEST + ", " + MT_INDEX})
            if st != 200 or body not in want:
                fail.add("GET %s: status %d, %d bytes, not what was acknowledged" % (path, st, len(body)))
            elif r["kind"] == "blob" and h.get("docker-content-digest") != r["digest"]:
                fail.add("GET %s: Docker-Content-Digest %s" % (path, h.get("docker-content-digest")))
    print("objects=%d requests=%d failures=%d" % (len(recs), n, len(fail.items)))
    fail.report()
    return 1 if fail.items else 0


def throttle(portfile, upstream, rate):
    host, port = upstream.rsplit(":", 1)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)

    def pipe(src, dst, limit):
        try:
            while True:
                data = src.recv(16384 if limit else 65536)
                if not data:
                    break
                dst.sendall(data)
                if limit:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    while True:
        cs, _ = ls.accept()
        us = socket.create_connection((host, int(port)))
        threading.Thread(target=pipe, args=(cs, us, False), daemon=True).start()
        threading.Thread(target=pipe, args=(us, cs, True), daemon=True).start()


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["push", "storm", "churn", "verify", "throttle"])
    ap.add_argument("url")
    ap.add_argument("ack")
    ap.add_argument("rate", nargs="?", type=float)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--readers", type=int, default=3)
    ap.add_argument("--slow", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--user")
    ap.add_argument("--bearer", action="store_true")
    ap.add_argument("--prefix", default="load")
    args = ap.parse_args()
    if args.mode == "throttle":
        throttle(args.url, args.ack, args.rate)
    if args.mode == "push":
        return Push(args).run()
    if args.mode == "storm":
        return Storm(args).run()
    if args.mode == "churn":
        return Churn(args).run()
    return verify(args)


if __name__ == "__main__":
    sys.exit(main())
