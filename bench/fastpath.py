#!/usr/bin/env python3
"""fastpath.py - a large berth store without going through HTTP, for bench/run's start-up workload.

The content is deterministic: blob k holds b"berth-bench blob <k>\\n"; manifest m is an OCI image manifest
whose config is blob 10m and whose layers are blobs 10m+1 .. 10m+9 (so BLOBS = 10 x MANIFESTS), pushed to
repository startup/r<m mod REPOS> under tag t<m>. Every blob is linked to the repository of its manifest.

  fastpath.py sql ROOT MANIFESTS REPOS [--no-files]
      writes the rows straight into ROOT/berth.db (a database berth created and is not serving: start
      berth once on ROOT and stop it first) and the blob files under ROOT/blobs/sha256/xx/<hex>,
      exactly as berth's API would (see schema/*.sql and src/store/metastore.c: repo_ensure,
      metastore_blob_link, metastore_manifest_put).
  fastpath.py api URL MANIFESTS REPOS
      pushes the same content through the distribution API (POST+PUT blobs, PUT manifests), keep-alive.
  fastpath.py dump ROOT
      prints the metadata rows without ids or timestamps, sorted: `diff <(dump A) <(dump B)` shows any
      difference between a store made by `sql` and one made by `api`.
  fastpath.py digest M
      prints manifest M's digest.
  fastpath.py dist ROOT KIND NAME COUNT MANIFEST_DIGEST [LAYER_DIGEST...] [--from FIRST]
      docker-registry (distribution 2.x filesystem driver) tree, for the at-scale tags/catalog workloads:
      KIND=tags: COUNT tags t000000.. in repository NAME (tags/<t>/current/link, tags/<t>/index/sha256/<hex>/link);
      KIND=repos: COUNT repositories NAME/r000000.. each with the blob links (_layers), the manifest revision and
      tag "latest", as a cross-repository mount + manifest PUT leaves them. The blobs, the manifest and the first
      tag or repository must already exist (pushed through the API): this writes tags or repositories FIRST..COUNT-1
      as the API wrote the first one, and bench/run compares a fast-path one with an API one, file by file.
  fastpath.py dist-store ROOT MANIFESTS REPOS
      the same content as `sql` (blobs, manifests, tags) as docker-registry's filesystem driver stores it, for the
      gc workload: blobs/sha256/xx/<hex>/data for every blob and manifest; in each repository the _layers links of
      its blobs, the manifest's revision link and tag t<m> (current and index links).
  fastpath.py repo M REPOS
      prints manifest M's repository.
  fastpath.py delete URL FIRST COUNT REPOS [RATE]
      DELETE manifests FIRST .. FIRST+COUNT-1 by digest through the API (keep-alive; 202 expected), at most RATE a
      second when given.
"""
import hashlib, http.client, json, os, sqlite3, sys, time, urllib.parse

MT = "application/vnd.oci.image.manifest.v1+json"
CT = "application/vnd.oci.image.config.v1+json"
LT = "application/vnd.oci.image.layer.v1.tar+gzip"
PER = 10  # blobs per manifest


def blob(k):
    b = b"berth-bench blob %d\n" % k
    return "sha256:" + hashlib.sha256(b).hexdigest(), b


def manifest(m):
    refs = [blob(PER * m + i) for i in range(PER)]
    doc = {"schemaVersion": 2, "mediaType": MT,
           "config": {"mediaType": CT, "digest": refs[0][0], "size": len(refs[0][1])},
           "layers": [{"mediaType": LT, "digest": d, "size": len(b)} for d, b in refs[1:]]}
    body = json.dumps(doc, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(body).hexdigest(), body, refs


def repo_of(m, repos):
    return "startup/r%05d" % (m % repos)


def cmd_sql(root, nman, nrepo, files=True):
    db = sqlite3.connect(os.path.join(root, "berth.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA foreign_keys=ON")
    now = int(time.time())
    db.execute("BEGIN")
    # artifact_type of an image manifest is its config's media type (src/oci/manifest.c), no subject, no
    # annotations. mode open: new repositories are public (access_new_repo_public); the API creates a repository on its
    # first blob link
    db.executemany("INSERT INTO repository(name, created_at, public) VALUES (?, ?, 1)",
                   ((repo_of(m, nrepo), now) for m in range(min(nman, nrepo))))
    rid = {n: i for i, n in db.execute("SELECT id, name FROM repository")}
    bdir = os.path.join(root, "blobs", "sha256")
    child = os.fork() if files else -1
    if child == 0:  # the blob files, in a second process while the first fills the database
        made = set()
        for m in range(nman):
            for i in range(PER):
                bd, bb = blob(PER * m + i)
                hx = bd[7:]
                sd = os.path.join(bdir, hx[:2])
                if hx[:2] not in made:
                    os.makedirs(sd, exist_ok=True)
                    made.add(hx[:2])
                with open(os.path.join(sd, hx), "wb") as f:
                    f.write(bb)
        os._exit(0)
    for m in range(nman):
        r = rid[repo_of(m, nrepo)]
        d, body, refs = manifest(m)
        db.executemany("INSERT INTO blob(digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT(digest) DO NOTHING",
                       ((bd, len(bb), now) for bd, bb in refs))
        db.executemany("INSERT INTO repository_blob(repository_id, digest, created_at) VALUES (?, ?, ?) "
                       "ON CONFLICT DO NOTHING", ((r, bd, now) for bd, _ in refs))
        cur = db.execute("INSERT INTO manifest(repository_id, digest, media_type, size, content, artifact_type, "
                         "subject, annotations, created_at) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
                         (r, d, MT, len(body), body, CT, now))
        mid = cur.lastrowid
        db.executemany("INSERT INTO manifest_ref(manifest_id, kind, digest, size, media_type, foreign_layer) "
                       "VALUES (?, ?, ?, ?, ?, 0)",
                       ((mid, 0 if i == 0 else 1, bd, len(bb), CT if i == 0 else LT) for i, (bd, bb) in enumerate(refs)))
        db.execute("INSERT INTO tag(repository_id, name, manifest_id, updated_at) VALUES (?, ?, ?, ?)",
                   (r, "t%06d" % m, mid, now))
        if m % 10000 == 9999:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    if child > 0:
        _, st = os.waitpid(child, 0)
        if st != 0:
            sys.exit("fastpath sql: writing the blob files failed")


def cmd_api(url, nman, nrepo):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)

    def req(method, path, body=b"", headers=None, want=(201,)):
        h = {"Content-Length": str(len(body))}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        r.read()
        if r.status not in want:
            sys.exit("fastpath api: %s %s -> %d" % (method, path, r.status))
        return r

    for m in range(nman):
        repo = repo_of(m, nrepo)
        d, body, refs = manifest(m)
        for bd, bb in refs:
            r = req("POST", "/v2/%s/blobs/uploads/" % repo, want=(202,))
            loc = urllib.parse.urlsplit(r.getheader("Location"))
            p = loc.path + ("?" + loc.query + "&" if loc.query else "?") + "digest=" + bd
            req("PUT", p, bb, {"Content-Type": "application/octet-stream"})
        req("PUT", "/v2/%s/manifests/t%06d" % (repo, m), body, {"Content-Type": MT})


def cmd_dump(root):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(root, "berth.db"), uri=True)
    q = [
        "SELECT 'repository', name, public FROM repository WHERE name LIKE 'startup/%'",
        "SELECT 'blob', digest, size FROM blob",
        "SELECT 'repository_blob', r.name, rb.digest FROM repository_blob rb JOIN repository r ON r.id = rb.repository_id",
        "SELECT 'manifest', r.name, m.digest, m.media_type, m.size, m.content, m.artifact_type, m.subject, "
        "m.annotations FROM manifest m JOIN repository r ON r.id = m.repository_id",
        "SELECT 'manifest_ref', m.digest, f.kind, f.digest, f.size, f.media_type, f.foreign_layer FROM manifest_ref f "
        "JOIN manifest m ON m.id = f.manifest_id",
        "SELECT 'tag', r.name, t.name, m.digest FROM tag t JOIN repository r ON r.id = t.repository_id "
        "JOIN manifest m ON m.id = t.manifest_id",
    ]
    rows = []
    for s in q:
        rows += ["|".join("NULL" if v is None else "content-sha256:" + hashlib.sha256(v).hexdigest()
                          if isinstance(v, bytes) else str(v) for v in row) for row in db.execute(s)]
    for r in sorted(rows):
        print(r)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def cmd_dist(root, kind, name, count, mdigest, layers, first=0):
    base = os.path.join(root, "docker", "registry", "v2", "repositories")
    hx = mdigest.split(":", 1)[1]
    if kind == "tags":
        tags = os.path.join(base, name, "_manifests", "tags")
        for i in range(first, count):
            t = os.path.join(tags, "t%06d" % i)
            write(os.path.join(t, "current", "link"), mdigest)
            write(os.path.join(t, "index", "sha256", hx, "link"), mdigest)
    elif kind == "repos":
        for i in range(first, count):
            r = os.path.join(base, name, "r%06d" % i)
            for ld in layers:
                write(os.path.join(r, "_layers", "sha256", ld.split(":", 1)[1], "link"), ld)
            write(os.path.join(r, "_manifests", "revisions", "sha256", hx, "link"), mdigest)
            write(os.path.join(r, "_manifests", "tags", "latest", "current", "link"), mdigest)
            write(os.path.join(r, "_manifests", "tags", "latest", "index", "sha256", hx, "link"), mdigest)
    else:
        sys.exit("fastpath dist: KIND is tags or repos")


def cmd_dist_store(root, nman, nrepo):
    v2 = os.path.join(root, "docker", "registry", "v2")
    made = set()

    def data(d, b):
        hx = d[7:]
        p = os.path.join(v2, "blobs", "sha256", hx[:2], hx)
        if p not in made:
            os.makedirs(p, exist_ok=True)
            made.add(p)
        with open(os.path.join(p, "data"), "wb") as f:
            f.write(b)

    for m in range(nman):
        r = os.path.join(v2, "repositories", repo_of(m, nrepo))
        d, body, refs = manifest(m)
        for bd, bb in refs:
            data(bd, bb)
            write(os.path.join(r, "_layers", "sha256", bd[7:], "link"), bd)
        data(d, body)
        write(os.path.join(r, "_manifests", "revisions", "sha256", d[7:], "link"), d)
        t = os.path.join(r, "_manifests", "tags", "t%06d" % m)
        write(os.path.join(t, "current", "link"), d)
        write(os.path.join(t, "index", "sha256", d[7:], "link"), d)


def cmd_delete(url, first, count, nrepo, rate=0):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
    t0 = time.time()
    for m in range(first, first + count):
        if rate:
            ahead = t0 + (m - first) / rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
        c.request("DELETE", "/v2/%s/manifests/%s" % (repo_of(m, nrepo), manifest(m)[0]))
        r = c.getresponse()
        r.read()
        if r.status != 202:
            sys.exit("fastpath delete: manifest %d -> %d" % (m, r.status))


def main(a):
    if len(a) >= 4 and a[0] == "sql":
        cmd_sql(a[1], int(a[2]), int(a[3]), "--no-files" not in a)
    elif len(a) == 4 and a[0] == "api":
        cmd_api(a[1], int(a[2]), int(a[3]))
    elif len(a) == 2 and a[0] == "dump":
        cmd_dump(a[1])
    elif len(a) >= 6 and a[0] == "dist":
        first = 0
        if "--from" in a:
            i = a.index("--from")
            first = int(a[i + 1])
            a = a[:i] + a[i + 2:]
        cmd_dist(a[1], a[2], a[3], int(a[4]), a[5], a[6:], first)
    elif len(a) == 4 and a[0] == "dist-store":
        cmd_dist_store(a[1], int(a[2]), int(a[3]))
    elif len(a) in (5, 6) and a[0] == "delete":
        cmd_delete(a[1], int(a[2]), int(a[3]), int(a[4]), float(a[5]) if len(a) == 6 else 0)
    elif len(a) == 3 and a[0] == "repo":
        print(repo_of(int(a[1]), int(a[2])))
    elif len(a) == 2 and a[0] == "digest":
        print(manifest(int(a[1]))[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
