#!/usr/bin/env python3
"""OCI distribution-spec conformance tests for berth (and any registry), written as TAP.

Usage:  python3 tests/conformance.py http://127.0.0.1:PORT [--reference] [--sparse]

Walks the distribution spec (https://github.com/opencontainers/distribution-spec, spec.md on main)
section by section: Pull, Push, Content Discovery, Content Management, then digests (sha512,
unknown algorithms, malformed digests) and the error format. Every test point sends real requests
and asserts status, headers and bodies; a failing point is followed by `# ` lines giving the
request, the response status, its headers and (the start of) its body.

--sparse: the registry accepts sparse manifests (berth's storage.sparse_manifests; the spec's conformance data
"sparse"): a manifest or index whose blobs or child manifests are absent is stored and served. Without it, such a
push must be refused with MANIFEST_BLOB_UNKNOWN.

--reference marks a run against the reference registry (docker-registry, CNCF distribution 2.8.2).
Tests of things berth does beyond it (referrers, OCI-Subject, OCI-Tag, tag deletion, sha512
manifests, digest-algorithm, ...) carry a note; when distribution fails one of those, the point
is printed as `not ok N - ... # TODO docker-registry 2.8.2: <note>` (an expected failure) and
does not make the run fail. Any other failure does.

Repositories are named conformance-<random>/..., so runs never collide. Only the standard library
is used. Exit status: 0 if every point passed (or, with --reference, failed only as expected), else 1.
"""

import hashlib
import http.client
import json
import os
import re
import socket
import sys
import traceback
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
ALL_MANIFEST_TYPES = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"

# "The code field MUST be one of the following" (spec.md, Error Codes).
SPEC_ERROR_CODES = {
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN",
    "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
}

MIB = 1024 * 1024

# Why docker-registry 2.8.2 may fail a test (used only with --reference).
EXT_REFERRERS = "referrers API (distribution-spec 1.1) not implemented"
EXT_SUBJECT = "no OCI-Subject header (distribution-spec 1.1)"
EXT_TAGQ = "PUT manifest ?tag= / OCI-Tag (distribution-spec main) not implemented"
EXT_TAGDEL = "tag deletion not supported"
EXT_SHA512M = "manifests by a sha512 digest not supported"
EXT_SHA512B = "a blob pushed with a sha512 digest is answered with its sha256 digest (201 Docker-Content-Digest: sha256:...)"
EXT_DIGALG = "?digest-algorithm= (distribution-spec main) ignored"
EXT_POSTDIGEST = "single-POST monolithic upload not supported (answers 202, which the spec allows)"
EXT_413 = "answers an oversized manifest with 400, not 413"
EXT_TAGPAGE = "tags/list ignores n and last (no pagination, no Link) and is not sorted"
EXT_ERRFORMAT = "some 4xx answers are plain text (\"404 page not found\" for unknown routes, \"invalid range\" for 416)"
EXT_DETAIL = "errors without a detail field"
EXT_ACCEPT = "answers 404 for an OCI manifest unless Accept names its type"
EXT_CONTENTRANGE = "ignores Content-Range on PATCH, so an out-of-order chunk is appended (202), not refused (416)"
EXT_RANGE416 = "its 416 answer declares the blob's Content-Length but sends a 33-byte text body"
EXT_TAGSORT = "tags/list is not sorted (directory order)"
EXT_INVALID = "answers some invalid manifests with 500 UNKNOWN or other codes, not 400 MANIFEST_INVALID"
EXT_URLS = "refuses manifests with layer URLs (500) unless validation.manifests.urls.allow is configured"
EXT_MOUNT = "answers a mount of a malformed digest with 202 (a new upload), not 400"
EXT_500 = "answers 500 UNKNOWN for a malformed or unknown-algorithm digest used as a manifest reference"


# ----------------------------------------------------------------------------------------------
# digests and content


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def sha512(b):
    return "sha512:" + hashlib.sha512(b).hexdigest()


def digest_of(b, algo="sha256"):
    return algo + ":" + hashlib.new(algo, b).hexdigest()


def randbytes(n):
    return os.urandom(n)


def pretty(obj):
    """A manifest as the registry must keep it: indented, with a trailing newline, so that a
    registry that re-serialises it is caught."""
    return json.dumps(obj, indent=3).encode() + b"\n"


def descriptor(mt, data, algo="sha256", **extra):
    d = {"mediaType": mt, "digest": digest_of(data, algo), "size": len(data)}
    d.update(extra)
    return d


def image_manifest(config, layers, mt=OCI_MANIFEST, config_mt=OCI_CONFIG, layer_mt=OCI_LAYER,
                   algo="sha256", extra=None, with_mediatype=True):
    m = {"schemaVersion": 2}
    if with_mediatype:
        m["mediaType"] = mt
    m["config"] = descriptor(config_mt, config, algo)
    m["layers"] = [l if isinstance(l, dict) else descriptor(layer_mt, l, algo) for l in layers]
    if extra:
        m.update(extra)
    return pretty(m)


def index_manifest(manifests, mt=OCI_INDEX, extra=None):
    """manifests: list of (mediaType, bytes, arch)."""
    m = {"schemaVersion": 2, "mediaType": mt, "manifests": []}
    for mmt, body, arch in manifests:
        d = descriptor(mmt, body)
        if arch:
            d["platform"] = {"architecture": arch, "os": "linux"}
        m["manifests"].append(d)
    if extra:
        m.update(extra)
    return pretty(m)


def config_blob(arch="amd64", nonce=None):
    return json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                       "nonce": nonce or os.urandom(8).hex()}).encode()


# ----------------------------------------------------------------------------------------------
# HTTP


class Resp:
    def __init__(self, method, url, status, headers, body, req_headers=None, error=None, req_body_len=None):
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers or []
        self.body = body or b""
        self.req_headers = req_headers or {}
        self.error = error
        self.req_body_len = req_body_len
        self.note = None

    def all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def hdr(self, name):
        v = self.all(name)
        return ", ".join(v) if v else None

    def json(self):
        try:
            return json.loads(self.body)
        except Exception:
            return None

    def describe(self):
        req = "%s %s" % (self.method, self.url)
        extra = []
        for k, v in self.req_headers.items():
            if k.lower() in ("content-type", "content-range", "accept", "range"):
                extra.append("%s: %s" % (k, v))
        if self.req_body_len:
            extra.append("%d-byte body" % self.req_body_len)
        if extra:
            req += "  (" + "; ".join(extra) + ")"
        lines = ["request:  " + req]
        if self.error:
            lines.append("error:    " + self.error)
            return lines
        lines.append("response: %d%s" % (self.status, " (%s)" % self.note if self.note else ""))
        for k, v in self.headers:
            if k.lower() in ("date", "server", "connection", "x-content-type-options"):
                continue
            lines.append("  %s: %s" % (k, v))
        if self.body:
            head = self.body[:600]
            try:
                text = head.decode()
                if any(ord(c) < 32 and c not in "\r\n\t" for c in text):
                    raise ValueError
                lines.append("  body: " + text.replace("\n", "\\n") + (" ..." if len(self.body) > 600 else ""))
            except ValueError:
                lines.append("  body: %d bytes (binary)" % len(self.body))
        return lines


class Client:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http":
            raise SystemExit("only http:// registries are supported: %s" % base)
        self.host = u.hostname
        self.port = u.port or 80
        self.base = "%s://%s:%d" % (u.scheme, self.host, self.port)
        self.responses = []

    def path_of(self, url):
        """The path (and query) of an absolute or relative Location; relative to the registry."""
        if url.startswith("http://") or url.startswith("https://"):
            u = urllib.parse.urlsplit(url)
            return (u.path or "/") + ("?" + u.query if u.query else "")
        if not url.startswith("/"):
            return "/" + url
        return url

    def request(self, method, path, body=None, headers=None):
        path = self.path_of(path)
        hdrs = dict(headers or {})
        # Manifest GETs and HEADs say which types they take (the spec: the client SHOULD send Accept),
        # unless the test asks for no Accept header at all (Accept: None).
        if method in ("GET", "HEAD") and "/manifests/" in path and "Accept" not in hdrs:
            hdrs["Accept"] = ALL_MANIFEST_TYPES
        hdrs = {k: v for k, v in hdrs.items() if v is not None}
        url = self.base + path
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        elif method in ("POST", "PUT", "PATCH"):
            hdrs.setdefault("Content-Length", "0")
        if method == "HEAD":
            r = self._raw(method, path, hdrs, url)
        else:
            r = self._http(method, path, body, hdrs, url)
        r.req_body_len = len(body) if body else 0
        self.responses.append(r)
        return r

    def _http(self, method, path, body, hdrs, url):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders()
            if body:
                try:
                    for i in range(0, len(body), 256 * 1024):
                        conn.send(body[i:i + 256 * 1024])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered early (413, ...): read that answer
            r = conn.getresponse()
            note = None
            try:
                data = r.read()
            except http.client.IncompleteRead as e:
                data = e.partial
                note = "the body (%d bytes) is shorter than its Content-Length (%s)" % (len(data), r.getheader("Content-Length"))
            resp = Resp(method, url, r.status, r.getheaders(), data, hdrs)
            resp.note = note
            return resp
        except Exception as e:
            return Resp(method, url, 0, [], b"", hdrs, error=repr(e))
        finally:
            conn.close()

    def _raw(self, method, path, hdrs, url):
        """HEAD over a bare socket (Connection: close), so that any body the server sends is seen."""
        try:
            s = socket.create_connection((self.host, self.port), timeout=15)
        except Exception as e:
            return Resp(method, url, 0, [], b"", hdrs, error=repr(e))
        try:
            lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.host, self.port), "Connection: close"]
            lines += ["%s: %s" % kv for kv in hdrs.items() if kv[0].lower() != "content-length"]
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            timed_out = False
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    timed_out = True
                    break
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            hl = head.decode("latin-1").split("\r\n")
            m = re.match(r"HTTP/\d\.\d (\d{3})", hl[0] if hl else "")
            if not m:
                return Resp(method, url, 0, [], rest, hdrs, error="unparsable response: %r" % data[:200])
            headers = []
            for line in hl[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers.append((k.strip(), v.strip()))
            r = Resp(method, url, int(m.group(1)), headers, rest, hdrs)
            if timed_out:
                r.error = None
                headers.append(("X-Conformance-Note", "connection not closed by the server within 15 s"))
            return r
        except Exception as e:
            return Resp(method, url, 0, [], b"", hdrs, error=repr(e))
        finally:
            s.close()


# ----------------------------------------------------------------------------------------------
# TAP


class Tap:
    def __init__(self, reference):
        self.reference = reference
        self.n = 0
        self.failed = []
        self.expected_failures = []
        self.ext_passed = []

    def result(self, ok, desc, diag, ext=None):
        self.n += 1
        desc = desc.replace("#", "\\#")
        if ok:
            print("ok %d - %s" % (self.n, desc))
            if ext:
                self.ext_passed.append((self.n, desc))
        elif self.reference and ext:
            print("not ok %d - %s # TODO docker-registry 2.8.2: %s" % (self.n, desc, ext))
            self.expected_failures.append((self.n, desc, ext))
        else:
            print("not ok %d - %s" % (self.n, desc))
            self.failed.append((self.n, desc))
        if not ok:
            for line in diag:
                for l in str(line).split("\n"):
                    print("# " + l)
        sys.stdout.flush()
        return ok


T = None  # the Tap
C = None  # the Client


def _status_ok(got, want):
    if isinstance(want, (set, tuple, list, frozenset)):
        return got in want
    return got == want


def error_problems(r, codes):
    """The body must be the spec's error JSON with one of `codes` (a str or a collection)."""
    if isinstance(codes, str):
        codes = (codes,)
    p = []
    j = r.json()
    if not isinstance(j, dict) or not isinstance(j.get("errors"), list) or not j["errors"]:
        return ["body is not {\"errors\": [...]} JSON (want code %s)" % "/".join(codes)]
    got = []
    for e in j["errors"]:
        if not isinstance(e, dict) or not isinstance(e.get("code"), str):
            p.append("error entry without a string code: %r" % (e,))
            continue
        got.append(e["code"])
        if "message" in e and not isinstance(e["message"], str):
            p.append("error message is not a string: %r" % (e["message"],))
    if not any(c in codes for c in got):
        p.append("error code %s, expected %s" % ("/".join(got) or "(none)", " or ".join(codes)))
    return p


def expect(desc, r, status=None, headers=None, absent=(), body=None, error=None, check=None, ext=None,
           no_body=False):
    """One test point about response r. headers: name -> exact string, or a function returning
    None when the value is right and a complaint otherwise."""
    p = []
    if r.error:
        p.append("request failed: " + r.error)
    if r.note:
        p.append(r.note)
    if status is not None and not _status_ok(r.status, status):
        p.append("status %d, expected %s" % (r.status, status if not isinstance(status, (set, tuple, list, frozenset))
                                             else " or ".join(str(s) for s in sorted(status))))
    for name, want in (headers or {}).items():
        got = r.hdr(name)
        if got is None:
            p.append("no %s header%s" % (name, "" if callable(want) else " (expected %r)" % want))
        elif callable(want):
            complaint = want(got)
            if complaint:
                p.append("%s: %r %s" % (name, got, complaint))
        elif got != want:
            p.append("%s: %r, expected %r" % (name, got, want))
    for name in absent:
        if r.hdr(name) is not None:
            p.append("unexpected %s header: %r" % (name, r.hdr(name)))
    if body is not None and r.body != body and not r.error:
        p.append("body differs: got %d bytes (%s), expected %d bytes (%s)"
                 % (len(r.body), sha256(r.body)[:19], len(body), sha256(body)[:19]))
    if no_body and r.body:
        p.append("a HEAD response must not have a body; got %d bytes" % len(r.body))
    if error is not None and not r.error:
        p += error_problems(r, error)
    if check is not None and not r.error:
        try:
            more = check(r)
        except Exception as e:
            more = ["check raised " + repr(e)]
        p += more or []
    return T.result(not p, desc, p + (r.describe() if p else []), ext)


def ok(desc, cond, diag=(), ext=None):
    return T.result(bool(cond), desc, list(diag), ext)


# header checks -------------------------------------------------------------------------------


def matches_content(content):
    """Docker-Content-Digest: a digest (sha256, sha384 or sha512) of exactly `content`."""
    def f(v):
        m = re.fullmatch(r"(sha256|sha384|sha512):([0-9a-f]+)", v.strip())
        if not m:
            return "is not a sha256/sha384/sha512 digest"
        if digest_of(content, m.group(1)) != v.strip():
            return "is not the %s of the content (%s)" % (m.group(1), digest_of(content, m.group(1))[:23] + "...")
        return None
    return f


def equals(want):
    return lambda v: None if v.strip() == want else "expected %r" % want


def present(v):
    return None if v.strip() else "is empty"


def media_type(want):
    """Content-Type equal to want, parameters ignored (the spec: clients SHOULD ignore them)."""
    return lambda v: None if v.split(";")[0].strip() == want else "expected %r" % want


def json_type(v):
    return None if v.split(";")[0].strip() == "application/json" else "expected application/json"


def json_error_if_any(r):
    """For answers the spec lets be 404 with any body: if the body is JSON, it must be the error format."""
    if r.body and r.body.lstrip().startswith(b"{"):
        j = r.json()
        if not isinstance(j, dict) or not isinstance(j.get("errors"), list):
            return ["JSON body that is not the spec's error format"]
    return []


def error_or_404(codes):
    """400 with one of codes, or (for GET/HEAD) 404 whose JSON body, if any, is well-formed."""
    def f(r):
        if r.method == "HEAD":
            return []
        if r.status == 400:
            return error_problems(r, codes)
        if r.status == 404:
            return json_error_if_any(r)
        return []
    return f


def oci_tags(r):
    vals = []
    for v in r.all("OCI-Tag"):
        vals += [x.strip() for x in v.split(",") if x.strip()]
    return vals


# ----------------------------------------------------------------------------------------------
# helpers that push content


def start_upload(repo, query=""):
    r = C.request("POST", "/v2/%s/blobs/uploads/%s" % (repo, query), headers={"Content-Length": "0"})
    loc = r.hdr("Location") if r.status == 202 else None
    return r, loc


def with_query(url, q):
    return url + ("&" if "?" in url else "?") + q


def push_blob(repo, data, digest=None):
    """Monolithic POST + PUT; returns the PUT response (or the failed POST's)."""
    digest = digest or sha256(data)
    r, loc = start_upload(repo)
    if not loc:
        return r
    return C.request("PUT", with_query(loc, "digest=" + urllib.parse.quote(digest, safe=":")), body=data,
                     headers={"Content-Type": "application/octet-stream"})


def push_manifest(repo, ref, body, mt=None):
    if mt is None:
        mt = json.loads(body).get("mediaType", OCI_MANIFEST)
    return C.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body, headers={"Content-Type": mt})


def setup(desc, pairs):
    """One test point for a batch of set-up requests: pairs of (what, response, expected status)."""
    bad = []
    for what, r, want in pairs:
        if r.status != want:
            bad.append("%s: status %d, expected %d" % (what, r.status, want))
            bad += ["  " + l for l in r.describe()]
    return ok(desc, not bad, bad)


def push_image(repo, tag, arch="amd64", nlayers=2, mt=OCI_MANIFEST):
    """Config + layers + manifest. Returns (manifest bytes, list of (what, response, want), blobs)."""
    docker = mt == DOCKER_MANIFEST
    cfg = config_blob(arch)
    layers = [randbytes(2000 + 1000 * i) for i in range(nlayers)]
    steps = [("push config", push_blob(repo, cfg), 201)]
    for i, l in enumerate(layers):
        steps.append(("push layer %d" % i, push_blob(repo, l), 201))
    m = image_manifest(cfg, layers, mt=mt, config_mt=DOCKER_CONFIG if docker else OCI_CONFIG,
                       layer_mt=DOCKER_LAYER if docker else OCI_LAYER)
    if tag is not None:
        steps.append(("PUT manifest %s" % tag, push_manifest(repo, tag, m), 201))
    return m, steps, [cfg] + layers


# ----------------------------------------------------------------------------------------------
# the sections


def base_section(P):
    S = "Base"
    r = C.request("GET", "/v2/")
    expect(S + ": GET /v2/ -> 200 with Docker-Distribution-Api-Version: registry/2.0", r, 200,
           headers={"Docker-Distribution-Api-Version": "registry/2.0"})


def pull_section(P):
    S = "Pull"
    repo = P + "/pull"
    other = P + "/pull-other"
    m, steps, blobs = push_image(repo, "v1")
    cfg, l1, l2 = blobs
    big = randbytes(100000)
    steps.append(("push 100000-byte blob", push_blob(repo, big), 201))
    m2, steps2, _ = push_image(repo, "arm", arch="arm64")
    idx = index_manifest([(OCI_MANIFEST, m, "amd64"), (OCI_MANIFEST, m2, "arm64")])
    steps += steps2 + [("PUT index", push_manifest(repo, "multi", idx), 201)]
    dm, dsteps, _ = push_image(repo, "docker", mt=DOCKER_MANIFEST)
    dl = index_manifest([(DOCKER_MANIFEST, dm, "amd64")], mt=DOCKER_LIST)
    steps += dsteps + [("PUT docker manifest list", push_manifest(repo, "dockerlist", dl), 201)]
    steps.append(("push a blob to " + other, push_blob(other, randbytes(100)), 201))
    setup(S + ": set-up: push an OCI image, an index, a Docker image and manifest list (201 each)", steps)

    md = sha256(m)
    mhdrs = {"Content-Type": media_type(OCI_MANIFEST), "Docker-Content-Digest": matches_content(m),
             "Content-Length": str(len(m))}
    for ref, what in (("v1", "tag"), (md, "digest")):
        r = C.request("GET", "/v2/%s/manifests/%s" % (repo, ref))
        expect(S + ": GET manifest by %s -> 200, the bytes as pushed, Content-Type, Content-Length, "
               "Docker-Content-Digest" % what, r, 200, headers=mhdrs, body=m)
        r = C.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref))
        expect(S + ": HEAD manifest by %s -> 200, same Content-Type, Content-Length, Docker-Content-Digest as GET, "
               "no body" % what, r, 200, headers=mhdrs, no_body=True)

    r = C.request("GET", "/v2/%s/manifests/multi" % repo)
    expect(S + ": GET OCI index by tag -> 200, Content-Type " + OCI_INDEX, r, 200, body=idx,
           headers={"Content-Type": media_type(OCI_INDEX), "Docker-Content-Digest": matches_content(idx),
                    "Content-Length": str(len(idx))})
    r = C.request("HEAD", "/v2/%s/manifests/%s" % (repo, sha256(idx)))
    expect(S + ": HEAD OCI index by digest -> 200, headers as GET, no body", r, 200, no_body=True,
           headers={"Content-Type": media_type(OCI_INDEX), "Docker-Content-Digest": matches_content(idx),
                    "Content-Length": str(len(idx))})
    r = C.request("GET", "/v2/%s/manifests/docker" % repo, headers={"Accept": ALL_MANIFEST_TYPES})
    expect(S + ": GET Docker schema 2 manifest -> 200, Content-Type " + DOCKER_MANIFEST, r, 200, body=dm,
           headers={"Content-Type": media_type(DOCKER_MANIFEST), "Docker-Content-Digest": matches_content(dm)})
    r = C.request("GET", "/v2/%s/manifests/dockerlist" % repo, headers={"Accept": ALL_MANIFEST_TYPES})
    expect(S + ": GET Docker manifest list -> 200, Content-Type " + DOCKER_LIST, r, 200, body=dl,
           headers={"Content-Type": media_type(DOCKER_LIST), "Docker-Content-Digest": matches_content(dl)})

    r = C.request("GET", "/v2/%s/manifests/nosuchtag" % repo)
    expect(S + ": GET manifest of an unknown tag -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN")
    r = C.request("HEAD", "/v2/%s/manifests/nosuchtag" % repo)
    expect(S + ": HEAD manifest of an unknown tag -> 404, no body", r, 404, no_body=True)
    unknown = sha256(b"no such manifest " + os.urandom(8))
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, unknown))
    expect(S + ": GET manifest of an unknown digest -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN")
    r = C.request("GET", "/v2/%s/manifests/%s" % (other, md))
    expect(S + ": GET manifest by digest from a repository that does not have it -> 404 MANIFEST_UNKNOWN", r, 404,
           error="MANIFEST_UNKNOWN")
    r = C.request("GET", "/v2/%s/nosuchrepo/manifests/v1" % P)
    expect(S + ": GET manifest in an unknown repository -> 404 (NAME_UNKNOWN or MANIFEST_UNKNOWN)", r, 404,
           error=("NAME_UNKNOWN", "MANIFEST_UNKNOWN"))

    # blobs
    bh = {"Docker-Content-Digest": matches_content(l1), "Content-Length": str(len(l1))}
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(l1)))
    expect(S + ": GET blob -> 200, the bytes, Content-Length, Docker-Content-Digest", r, 200, headers=bh, body=l1)
    get_ct = r.hdr("Content-Type")
    r = C.request("HEAD", "/v2/%s/blobs/%s" % (repo, sha256(l1)))
    h = dict(bh)
    if get_ct is not None:
        h["Content-Type"] = get_ct
    expect(S + ": HEAD blob -> 200, same Content-Length, Content-Type, Docker-Content-Digest as GET, no body", r, 200,
           headers=h, no_body=True)
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(cfg)))
    expect(S + ": GET config blob -> 200, the bytes", r, 200, body=cfg,
           headers={"Docker-Content-Digest": matches_content(cfg)})
    unknown = sha256(b"no such blob " + os.urandom(8))
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, unknown))
    expect(S + ": GET unknown blob -> 404 BLOB_UNKNOWN", r, 404, error="BLOB_UNKNOWN")
    r = C.request("HEAD", "/v2/%s/blobs/%s" % (repo, unknown))
    expect(S + ": HEAD unknown blob -> 404, no body", r, 404, no_body=True)
    r = C.request("GET", "/v2/%s/blobs/%s" % (other, sha256(l1)))
    expect(S + ": GET blob from a repository it was not pushed to -> 404 BLOB_UNKNOWN", r, 404,
           error="BLOB_UNKNOWN")
    r = C.request("HEAD", "/v2/%s/blobs/%s" % (other, sha256(l1)))
    expect(S + ": HEAD blob in a repository it was not pushed to -> 404", r, 404, no_body=True)

    # Range (RFC 9110 section 14)
    n = len(big)
    bp = "/v2/%s/blobs/%s" % (repo, sha256(big))
    for rng, lo, hi in (("bytes=0-99", 0, 99), ("bytes=99000-", 99000, n - 1), ("bytes=-500", n - 500, n - 1),
                        ("bytes=99990-200000", 99990, n - 1), ("bytes=5000-5000", 5000, 5000)):
        r = C.request("GET", bp, headers={"Range": rng})
        expect(S + ": GET blob with Range: %s -> 206, Content-Range: bytes %d-%d/%d, those bytes"
               % (rng, lo, hi, n), r, 206, body=big[lo:hi + 1],
               headers={"Content-Range": "bytes %d-%d/%d" % (lo, hi, n), "Content-Length": str(hi - lo + 1)})
    for rng in ("bytes=%d-" % n, "bytes=200000-300000"):
        r = C.request("GET", bp, headers={"Range": rng})
        expect(S + ": GET blob with unsatisfiable Range: %s -> 416, Content-Range: bytes */%d" % (rng, n), r, 416,
               headers={"Content-Range": "bytes */%d" % n}, ext=EXT_RANGE416)

    # Accept negotiation
    r = C.request("GET", "/v2/%s/manifests/v1" % repo, headers={"Accept": DOCKER_MANIFEST})
    expect(S + ": GET OCI manifest with only Accept: %s -> 404 MANIFEST_UNKNOWN (as distribution)" % DOCKER_MANIFEST,
           r, 404, error="MANIFEST_UNKNOWN")
    r = C.request("GET", "/v2/%s/manifests/v1" % repo, headers={"Accept": None})
    expect(S + ": GET OCI manifest with no Accept header -> 200, served as pushed", r, 200, body=m,
           headers={"Content-Type": media_type(OCI_MANIFEST)}, ext=EXT_ACCEPT)
    r = C.request("GET", "/v2/%s/manifests/v1" % repo, headers={"Accept": "*/*"})
    expect(S + ": GET OCI manifest with Accept: */* -> 200", r, 200, body=m,
           headers={"Content-Type": media_type(OCI_MANIFEST)}, ext=EXT_ACCEPT)
    r = C.request("GET", "/v2/%s/manifests/v1" % repo,
                  headers={"Accept": "%s, %s;q=0.9" % (DOCKER_MANIFEST, OCI_MANIFEST)})
    expect(S + ": GET OCI manifest with an Accept list naming it (with a q parameter) -> 200", r, 200, body=m)
    r = C.request("GET", "/v2/%s/manifests/multi" % repo, headers={"Accept": DOCKER_LIST})
    expect(S + ": GET OCI index with only Accept: %s -> 404 MANIFEST_UNKNOWN (as distribution)" % DOCKER_LIST,
           r, 404, error="MANIFEST_UNKNOWN")
    r = C.request("GET", "/v2/%s/manifests/multi" % repo, headers={"Accept": OCI_INDEX})
    expect(S + ": GET OCI index with Accept: %s -> 200" % OCI_INDEX, r, 200, body=idx)


def push_blobs_section(P):
    S = "Push"
    repo = P + "/push"
    # POST then PUT
    r1, loc1 = start_upload(repo)
    expect(S + ": POST /blobs/uploads/ -> 202 with a Location", r1, 202, headers={"Location": present})
    r2, loc2 = start_upload(repo)
    ok(S + ": two POSTs get two distinct upload locations", loc1 and loc2 and loc1 != loc2,
       ["locations: %r and %r" % (loc1, loc2)])
    data = randbytes(12345)
    d = sha256(data)
    if loc1:
        r = C.request("PUT", with_query(loc1, "digest=" + d), body=data,
                      headers={"Content-Type": "application/octet-stream"})
        expect(S + ": PUT <location>?digest= with the whole blob -> 201, Location, Docker-Content-Digest", r, 201,
               headers={"Location": present, "Docker-Content-Digest": equals(d)})
        loc = r.hdr("Location")
        if loc:
            r = C.request("GET", loc)
            expect(S + ": the Location of a pushed blob is pullable (200, the bytes)", r, 200, body=data)
        r = C.request("PATCH", loc1, body=b"more", headers={"Content-Type": "application/octet-stream"})
        expect(S + ": PATCH to a completed upload -> 404 BLOB_UPLOAD_UNKNOWN", r, 404, error="BLOB_UPLOAD_UNKNOWN")
        r = C.request("GET", loc1)
        expect(S + ": GET status of a completed upload -> 404 BLOB_UPLOAD_UNKNOWN", r, 404,
               error="BLOB_UPLOAD_UNKNOWN")
    else:
        ok(S + ": PUT <location>?digest= with the whole blob -> 201", False, ["no upload location"])
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, d))
    expect(S + ": the blob pushed by POST+PUT is served (200, the bytes)", r, 200, body=data,
           headers={"Docker-Content-Digest": matches_content(data)})

    # the empty blob
    r = push_blob(repo, b"")
    expect(S + ": push the empty (0-byte) blob -> 201", r, 201, headers={"Docker-Content-Digest": equals(sha256(b""))})
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(b"")))
    expect(S + ": GET the empty blob -> 200, Content-Length: 0", r, 200, body=b"",
           headers={"Content-Length": "0", "Docker-Content-Digest": equals(sha256(b""))})
    r = C.request("HEAD", "/v2/%s/blobs/%s" % (repo, sha256(b"")))
    expect(S + ": HEAD the empty blob -> 200, Content-Length: 0", r, 200, no_body=True,
           headers={"Content-Length": "0", "Docker-Content-Digest": equals(sha256(b""))})
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(b"")), headers={"Range": "bytes=0-"})
    expect(S + ": GET the empty blob with Range: bytes=0- -> 416, Content-Range: bytes */0", r, 416,
           headers={"Content-Range": "bytes */0"})

    # a wrong digest
    if loc2:
        bad = sha256(b"something else")
        r = C.request("PUT", with_query(loc2, "digest=" + bad), body=data,
                      headers={"Content-Type": "application/octet-stream"})
        expect(S + ": PUT with a digest that does not match the content -> 400 DIGEST_INVALID", r, 400,
               error="DIGEST_INVALID")
        r = C.request("HEAD", "/v2/%s/blobs/%s" % (repo, bad))
        expect(S + ": ... and no blob appears under that digest (HEAD -> 404)", r, 404, no_body=True)

    # single POST
    data = randbytes(5000)
    d = sha256(data)
    r = C.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), body=data,
                  headers={"Content-Type": "application/octet-stream"})
    expect(S + ": POST /blobs/uploads/?digest= with the blob (single request) -> 201 with Location", r, 201,
           headers={"Location": present, "Docker-Content-Digest": equals(d)}, ext=EXT_POSTDIGEST)
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, d))
    expect(S + ": ... the blob is served (200, the bytes)", r, 200, body=data, ext=EXT_POSTDIGEST)
    r = C.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, sha256(b"not it")), body=data,
                  headers={"Content-Type": "application/octet-stream"})
    expect(S + ": single POST with a digest that does not match -> 400 DIGEST_INVALID", r, 400,
           error="DIGEST_INVALID", ext=EXT_POSTDIGEST)

    # chunked
    data = randbytes(3000)
    d = sha256(data)
    r, loc = start_upload(repo)
    expect(S + ": chunked: POST with Content-Length: 0 -> 202 with Location", r, 202, headers={"Location": present})
    if loc:
        r = C.request("PATCH", loc, body=data[:1024],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "0-1023"})
        expect(S + ": chunked: PATCH first chunk (Content-Range: 0-1023) -> 202, Location, Range: 0-1023", r, 202,
               headers={"Location": present, "Range": "0-1023"})
        loc = r.hdr("Location") or loc
        r = C.request("GET", loc)
        expect(S + ": chunked: GET upload status -> 204, Location, Range: 0-1023", r, 204,
               headers={"Location": present, "Range": "0-1023"})
        loc = r.hdr("Location") or loc
        r = C.request("PATCH", loc, body=data[2048:],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "2048-2999"})
        expect(S + ": chunked: PATCH out of order (Content-Range: 2048-2999 after 0-1023) -> 416", r, 416,
               ext=EXT_CONTENTRANGE)
        r = C.request("PATCH", loc, body=data[:1024],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "0-1023"})
        expect(S + ": chunked: PATCH retrying the accepted chunk (Content-Range: 0-1023 again) -> 416", r, 416,
               ext=EXT_CONTENTRANGE)
        r = C.request("GET", loc)
        expect(S + ": chunked: after the refused chunks the upload is still at Range: 0-1023 (204)", r, 204,
               headers={"Range": "0-1023"}, ext=EXT_CONTENTRANGE)
        loc = r.hdr("Location") or loc
        r = C.request("PATCH", loc, body=data[1024:2048], headers={"Content-Type": "application/octet-stream"})
        expect(S + ": chunked: PATCH without Content-Range (streamed) appends -> 202, Range: 0-2047", r, 202,
               headers={"Location": present, "Range": "0-2047"}, ext=EXT_CONTENTRANGE)
        loc = r.hdr("Location") or loc
        r = C.request("PUT", with_query(loc, "digest=" + d), body=data[2048:],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "2048-2999"})
        expect(S + ": chunked: closing PUT ?digest= with the final chunk -> 201, Location, Docker-Content-Digest",
               r, 201, headers={"Location": present, "Docker-Content-Digest": equals(d)}, ext=EXT_CONTENTRANGE)
        r = C.request("GET", "/v2/%s/blobs/%s" % (repo, d))
        expect(S + ": chunked: the assembled blob is served (200, the bytes)", r, 200, body=data, ext=EXT_CONTENTRANGE)

    # chunked, every chunk by PATCH, empty closing PUT
    data = randbytes(2500)
    d = sha256(data)
    r, loc = start_upload(repo)
    if loc:
        r = C.request("PATCH", loc, body=data[:1500],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "0-1499"})
        loc = r.hdr("Location") or loc
        r = C.request("PATCH", loc, body=data[1500:],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "1500-2499"})
        expect(S + ": chunked: second PATCH (Content-Range: 1500-2499) -> 202, Range: 0-2499", r, 202,
               headers={"Range": "0-2499"})
        loc = r.hdr("Location") or loc
        r = C.request("PUT", with_query(loc, "digest=" + d))
        expect(S + ": chunked: closing PUT with no body -> 201", r, 201, headers={"Docker-Content-Digest": equals(d)})
        r = C.request("GET", "/v2/%s/blobs/%s" % (repo, d))
        expect(S + ": chunked: that blob is served (200, the bytes)", r, 200, body=data)
    else:
        ok(S + ": chunked: POST -> 202", False, r.describe())

    # cancel an upload
    r, loc = start_upload(repo)
    if loc:
        r = C.request("PATCH", loc, body=b"x" * 100, headers={"Content-Type": "application/octet-stream"})
        loc = r.hdr("Location") or loc
        r = C.request("DELETE", loc)
        expect(S + ": DELETE an upload in progress -> 204", r, 204)
        r = C.request("GET", loc)
        expect(S + ": GET status of a deleted upload -> 404 BLOB_UPLOAD_UNKNOWN", r, 404, error="BLOB_UPLOAD_UNKNOWN")
        r = C.request("DELETE", loc)
        expect(S + ": DELETE a deleted upload -> 404 BLOB_UPLOAD_UNKNOWN", r, 404, error="BLOB_UPLOAD_UNKNOWN")
    else:
        ok(S + ": DELETE an upload in progress -> 204", False, r.describe())

    # mount
    src, dst, third = P + "/mount-src", P + "/mount-dst", P + "/mount-third"
    blob = randbytes(4000)
    only_elsewhere = randbytes(4100)
    setup(S + ": mount set-up: push a blob to %s and another to %s" % (src, third),
          [("push to src", push_blob(src, blob), 201), ("push to third", push_blob(third, only_elsewhere), 201)])
    d = sha256(blob)
    r = C.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src),
                  headers={"Content-Length": "0"})
    expect(S + ": POST ?mount=<digest>&from=<repo that has it> -> 201, Location, Docker-Content-Digest", r, 201,
           headers={"Location": present, "Docker-Content-Digest": equals(d)})
    r = C.request("GET", "/v2/%s/blobs/%s" % (dst, d))
    expect(S + ": the mounted blob is served from the target repository (200, the bytes)", r, 200, body=blob)
    d2 = sha256(only_elsewhere)
    r = C.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d2, src),
                  headers={"Content-Length": "0"})
    expect(S + ": POST ?mount=&from=<repo that lacks the blob> -> 202 with a Location (an upload session)", r, 202,
           headers={"Location": present})
    sess = r.hdr("Location")
    r = C.request("HEAD", "/v2/%s/blobs/%s" % (dst, d2))
    expect(S + ": ... and the blob did not appear in the target (HEAD -> 404)", r, 404, no_body=True)
    if sess:
        r = C.request("GET", sess)
        expect(S + ": ... that Location is a live upload session (GET -> 204)", r, 204)
        C.request("DELETE", sess)
    r = C.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d2, P + "/no-such-repo"),
                  headers={"Content-Length": "0"})
    expect(S + ": POST ?mount=&from=<a repository that does not exist> -> 202 with a Location", r, 202,
           headers={"Location": present})
    r = C.request("POST", "/v2/%s/blobs/uploads/?mount=%s" % (P + "/mount-nofrom", d),
                  headers={"Content-Length": "0"})

    def nofrom(r):
        if r.status == 201:
            h = C.request("HEAD", "/v2/%s/blobs/%s" % (P + "/mount-nofrom", d))
            return [] if h.status == 200 else ["answered 201 but HEAD of the blob there gives %d" % h.status]
        if r.status == 202:
            return [] if r.hdr("Location") else ["202 without a Location"]
        return []
    expect(S + ": POST ?mount= without from -> 201 (mounted, then served) or 202 (an upload session)", r, (201, 202),
           check=nofrom)


def push_manifests_section(P):
    S = "Push"
    repo = P + "/manifests"
    cfg = config_blob()
    layers = [randbytes(1500), randbytes(2500)]
    steps = [("config", push_blob(repo, cfg), 201)] + [("layer", push_blob(repo, l), 201) for l in layers]
    dcfg = config_blob("amd64")
    steps.append(("docker config", push_blob(repo, dcfg), 201))
    setup(S + ": manifest set-up: push config and layers", steps)

    m = image_manifest(cfg, layers)
    md = sha256(m)
    r = push_manifest(repo, "v1", m)
    expect(S + ": PUT OCI image manifest by tag -> 201, Location, Docker-Content-Digest", r, 201,
           headers={"Location": present, "Docker-Content-Digest": equals(md)})
    if r.hdr("Location"):
        g = C.request("GET", r.hdr("Location"))
        expect(S + ": the Location of a pushed manifest is pullable (200, the bytes)", g, 200, body=m)
    m2 = image_manifest(cfg, layers[:1], extra={"annotations": {"n": "2"}})
    r = push_manifest(repo, sha256(m2), m2)
    expect(S + ": PUT OCI image manifest by digest -> 201, Location, Docker-Content-Digest equal to it", r, 201,
           headers={"Location": present, "Docker-Content-Digest": equals(sha256(m2))})
    m3 = image_manifest(cfg, layers[1:], extra={"annotations": {"n": "3"}})
    r = push_manifest(repo, sha256(m), m3)
    expect(S + ": PUT manifest by a digest that is not its own -> 400 DIGEST_INVALID", r, 400, error="DIGEST_INVALID")
    r = push_manifest(repo, "v1", m2)
    expect(S + ": PUT another manifest to an existing tag -> 201", r, 201)
    r = C.request("GET", "/v2/%s/manifests/v1" % repo)
    expect(S + ": ... the tag now names the new manifest", r, 200, body=m2)
    r = push_manifest(repo, "v1", m)
    expect(S + ": PUT the first manifest back to that tag -> 201", r, 201)
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, sha256(m2)))
    expect(S + ": ... the manifest the tag moved away from is still there by digest", r, 200, body=m2)
    r = push_manifest(repo, "v1-again", m)
    expect(S + ": PUT the same manifest under a second tag -> 201, same Docker-Content-Digest", r, 201,
           headers={"Docker-Content-Digest": equals(md)})

    long_tag = "T" + "a1._-" * 25 + "xy"
    r = push_manifest(repo, long_tag, m)
    expect(S + ": PUT manifest under a 128-character tag (the longest allowed) -> 201", r, 201)
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, long_tag))
    expect(S + ": ... GET it by that tag -> 200", r, 200, body=m)

    # an index of two manifests, a Docker image and manifest list
    idx = index_manifest([(OCI_MANIFEST, m, "amd64"), (OCI_MANIFEST, m2, "arm64")])
    r = push_manifest(repo, "index", idx)
    expect(S + ": PUT OCI image index of two manifests -> 201", r, 201,
           headers={"Docker-Content-Digest": equals(sha256(idx))})
    dm = image_manifest(dcfg, layers, mt=DOCKER_MANIFEST, config_mt=DOCKER_CONFIG, layer_mt=DOCKER_LAYER)
    r = push_manifest(repo, "docker", dm)
    expect(S + ": PUT Docker schema 2 manifest -> 201", r, 201, headers={"Docker-Content-Digest": equals(sha256(dm))})
    dl = index_manifest([(DOCKER_MANIFEST, dm, "amd64")], mt=DOCKER_LIST)
    r = push_manifest(repo, "dockerlist", dl)
    expect(S + ": PUT Docker manifest list -> 201", r, 201, headers={"Docker-Content-Digest": equals(sha256(dl))})

    # ?tag= (several tags in one PUT by digest)
    m4 = image_manifest(cfg, layers, extra={"annotations": {"n": "4"}})
    d4 = sha256(m4)
    want = ["1.2.3", "1.2", "1", "latest"]
    r = C.request("PUT", "/v2/%s/manifests/%s?%s" % (repo, d4, "&".join("tag=" + t for t in want)), body=m4,
                  headers={"Content-Type": OCI_MANIFEST})
    expect(S + ": PUT manifest by digest with ?tag=1.2.3&tag=1.2&tag=1&tag=latest -> 201 with an OCI-Tag for "
           "each tag", r, 201, headers={"Docker-Content-Digest": equals(d4)},
           check=lambda r: [] if sorted(oci_tags(r)) == sorted(want)
           else ["OCI-Tag values %r, expected %r" % (oci_tags(r), want)], ext=EXT_TAGQ)
    bad = []
    for t in want:
        g = C.request("GET", "/v2/%s/manifests/%s" % (repo, t))
        if g.status != 200 or g.body != m4:
            bad += ["tag %s:" % t] + g.describe()
    ok(S + ": ... each of those tags names the manifest", not bad, bad, ext=EXT_TAGQ)

    # subject
    subj = image_manifest(cfg, layers, extra={"annotations": {"n": "subject"}})
    push_manifest(repo, "subject", subj)
    art = image_manifest(b"{}", [layers[0]], config_mt=OCI_EMPTY, layer_mt="application/vnd.example.thing",
                         extra={"artifactType": "application/vnd.example.thing",
                                "subject": descriptor(OCI_MANIFEST, subj)})
    push_blob(repo, b"{}")
    r = push_manifest(repo, sha256(art), art)
    expect(S + ": PUT manifest with a subject -> 201 with OCI-Subject: <subject digest>", r, 201,
           headers={"OCI-Subject": equals(sha256(subj)), "Docker-Content-Digest": equals(sha256(art))}, ext=EXT_SUBJECT)
    ghost = pretty({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [], "config": {}})
    art2 = image_manifest(b"{}", [layers[0]], config_mt=OCI_EMPTY, layer_mt="application/vnd.example.thing",
                          extra={"artifactType": "application/vnd.example.thing",
                                 "subject": descriptor(OCI_MANIFEST, ghost)})
    r = push_manifest(repo, sha256(art2), art2)
    expect(S + ": PUT manifest whose subject does not exist (yet) -> 201 (MUST be accepted) with OCI-Subject", r, 201,
           headers={"OCI-Subject": equals(sha256(ghost))}, ext=EXT_SUBJECT)
    r = push_manifest(repo, sha256(art2), art2)
    expect(S + ": ... whatever OCI-Subject says, that push itself is accepted (again, 201)", r, 201)

    # missing references (a registry accepting sparse manifests stores them: sparse_section tests that)
    if not SPARSE:
        missing = randbytes(777)
        mm = image_manifest(cfg, [layers[0], missing])
        r = push_manifest(repo, "missing-layer", mm)
        expect(S + ": PUT manifest whose layer blob was never pushed -> 400 MANIFEST_BLOB_UNKNOWN", r, 400,
               error="MANIFEST_BLOB_UNKNOWN")
        mm = image_manifest(config_blob("s390x"), layers)
        r = push_manifest(repo, "missing-config", mm)
        expect(S + ": PUT manifest whose config blob was never pushed -> 400 MANIFEST_BLOB_UNKNOWN", r, 400,
               error="MANIFEST_BLOB_UNKNOWN")
        r = C.request("GET", "/v2/%s/manifests/missing-layer" % repo)
        expect(S + ": ... the refused manifest's tag does not exist (404 MANIFEST_UNKNOWN)", r, 404,
               error="MANIFEST_UNKNOWN")
        nowhere = image_manifest(cfg, layers, extra={"annotations": {"n": "never pushed"}})
        ix = index_manifest([(OCI_MANIFEST, m, "amd64"), (OCI_MANIFEST, nowhere, "arm64")])
        r = push_manifest(repo, "missing-child", ix)
        expect(S + ": PUT index referencing a manifest that was never pushed -> 400 MANIFEST_BLOB_UNKNOWN", r, 400,
               error="MANIFEST_BLOB_UNKNOWN")

    # invalid manifests
    for what, ext, body, mt in (
        ("a body that is not JSON", None, b"this is not json {", OCI_MANIFEST),
        ("a JSON array", None, b"[1, 2, 3]", OCI_MANIFEST),
        ("schemaVersion 3", EXT_INVALID, pretty({"schemaVersion": 3, "mediaType": OCI_MANIFEST,
                                    "config": descriptor(OCI_CONFIG, cfg), "layers": []}), OCI_MANIFEST),
        ("no config", EXT_INVALID, pretty({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "layers": [descriptor(OCI_LAYER, layers[0])]}), OCI_MANIFEST),
        ("layers that is not an array", None, pretty({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                                "config": descriptor(OCI_CONFIG, cfg), "layers": "none"}),
         OCI_MANIFEST),
        ("a config digest that is not a digest", EXT_INVALID, pretty({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                                         "config": {"mediaType": OCI_CONFIG, "digest": "sha256:zzz",
                                                                    "size": 3}, "layers": []}), OCI_MANIFEST),
        ("an index whose manifests is not an array", None, pretty({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                             "manifests": {"a": 1}}), OCI_INDEX),
    ):
        r = push_manifest(repo, "invalid", body, mt)
        expect(S + ": PUT manifest with %s -> 400 MANIFEST_INVALID" % what, r, 400, error="MANIFEST_INVALID", ext=ext)

    # Content-Type against mediaType
    r = push_manifest(repo, "mismatch", m, DOCKER_MANIFEST)
    expect(S + ": PUT OCI manifest (mediaType %s) as Content-Type: %s -> 400 MANIFEST_INVALID"
           % (OCI_MANIFEST, DOCKER_MANIFEST), r, 400, error="MANIFEST_INVALID")
    r = push_manifest(repo, "mismatch", idx, OCI_MANIFEST)
    expect(S + ": PUT OCI index (mediaType %s) as Content-Type: %s -> 400 MANIFEST_INVALID" % (OCI_INDEX, OCI_MANIFEST),
           r, 400, error="MANIFEST_INVALID")
    r = C.request("GET", "/v2/%s/manifests/mismatch" % repo)
    expect(S + ": ... neither mismatched manifest was stored (GET tag -> 404)", r, 404, error="MANIFEST_UNKNOWN")
    nomt = image_manifest(cfg, layers, with_mediatype=False, extra={"annotations": {"n": "no mediaType"}})
    r = push_manifest(repo, "nomediatype", nomt, OCI_MANIFEST)
    expect(S + ": PUT OCI manifest without a mediaType field, Content-Type: %s -> 201" % OCI_MANIFEST, r, 201)
    r = C.request("GET", "/v2/%s/manifests/nomediatype" % repo)
    expect(S + ": ... served with the Content-Type it was pushed with", r, 200, body=nomt,
           headers={"Content-Type": media_type(OCI_MANIFEST)})

    # Docker schema 1
    s1 = pretty({"schemaVersion": 1, "name": repo, "tag": "s1", "architecture": "amd64",
                 "fsLayers": [{"blobSum": sha256(layers[0])}],
                 "history": [{"v1Compatibility": json.dumps({"id": "a" * 64})}],
                 "signatures": [{"header": {"alg": "ES256"}, "signature": "c2ln", "protected": "cHJvdA"}]})
    r = push_manifest(repo, "schema1", s1, DOCKER_SCHEMA1_SIGNED)
    expect(S + ": PUT Docker schema 1 signed manifest (%s) -> 400 MANIFEST_INVALID" % DOCKER_SCHEMA1_SIGNED, r, 400,
           error="MANIFEST_INVALID")
    r = push_manifest(repo, "schema1", s1, DOCKER_SCHEMA1)
    expect(S + ": PUT Docker schema 1 manifest (%s) -> 400 MANIFEST_INVALID" % DOCKER_SCHEMA1, r, 400,
           error="MANIFEST_INVALID")

    # non-distributable (foreign) layers: accepted without the blob
    fb = randbytes(999)
    nd = image_manifest(cfg, [layers[0], descriptor(OCI_NONDIST, fb, urls=["https://example.com/layers/" + sha256(fb)])])
    r = push_manifest(repo, "nondist", nd)
    expect(S + ": PUT OCI manifest with a non-distributable layer whose blob is absent -> 201", r, 201, ext=EXT_URLS)
    r = C.request("GET", "/v2/%s/manifests/nondist" % repo)
    expect(S + ": ... and it is served", r, 200, body=nd, ext=EXT_URLS)
    fd = image_manifest(dcfg, [descriptor(DOCKER_FOREIGN, fb, urls=["https://example.com/layers/foreign.tgz"]),
                               layers[1]], mt=DOCKER_MANIFEST, config_mt=DOCKER_CONFIG, layer_mt=DOCKER_LAYER)
    r = push_manifest(repo, "foreign", fd)
    expect(S + ": PUT Docker manifest with a foreign layer whose blob is absent -> 201", r, 201, ext=EXT_URLS)

    # size limit: at least 4 MiB accepted, 413 above
    def sized(size):
        mm = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, cfg),
              "layers": [descriptor(OCI_LAYER, layers[0])], "annotations": {"pad": ""}}
        base = len(json.dumps(mm, separators=(",", ":")).encode())
        mm["annotations"]["pad"] = "x" * (size - base)
        b = json.dumps(mm, separators=(",", ":")).encode()
        assert len(b) == size
        return b
    b4 = sized(4 * MIB)
    r = push_manifest(repo, "four-mib", b4)
    expect(S + ": PUT manifest of exactly 4 MiB -> 201", r, 201, headers={"Docker-Content-Digest": equals(sha256(b4))})
    r = C.request("GET", "/v2/%s/manifests/four-mib" % repo)
    expect(S + ": ... and it is served whole", r, 200, body=b4)
    r = push_manifest(repo, "too-big", sized(4 * MIB + 1))
    expect(S + ": PUT manifest of 4 MiB + 1 byte -> 413", r, 413, ext=EXT_413)


def discovery_section(P):
    S = "Content Discovery"
    repo = P + "/tags"
    m, steps, _ = push_image(repo, None)
    tags = ["latest", "v1", "v10", "v2", "1.0", "1.0.1", "a-b", "a.b", "a_b", "alpha", "beta", "zeta"]
    for t in tags:
        steps.append(("PUT tag " + t, push_manifest(repo, t, m), 201))
    setup(S + ": set-up: one manifest under 12 tags", steps)
    want = sorted(tags)  # byte order; for these lower-case tags also case-insensitive order

    def tag_list(expected, name=repo):
        def f(r):
            j = r.json()
            if not isinstance(j, dict):
                return ["body is not a JSON object"]
            p = []
            if j.get("name") != name:
                p.append("name %r, expected %r" % (j.get("name"), name))
            got = j.get("tags")
            if got is None and expected == []:
                p.append("tags is null; an empty list is []")
            elif got != expected:
                p.append("tags %r, expected %r" % (got, expected))
            return p
        return f

    r = C.request("GET", "/v2/%s/tags/list" % repo)
    expect(S + ": GET tags/list -> 200, {name, tags} with every tag in order", r, 200, check=tag_list(want),
           headers={"Content-Type": json_type}, ext=EXT_TAGSORT)
    r = C.request("GET", "/v2/%s/tags/list?n=5" % repo)
    expect(S + ": GET tags/list?n=5 -> the first 5 tags and a Link: <...>; rel=\"next\"", r, 200,
           check=tag_list(want[:5]), headers={"Link": lambda v: None if re.fullmatch(r'\s*<[^>]+>\s*;\s*rel="?next"?\s*', v)
                                              else "is not <url>; rel=\"next\""}, ext=EXT_TAGPAGE)
    # follow the Link header to the end
    pages, seen, link, guard = [], [], "/v2/%s/tags/list?n=5" % repo, 0
    bad = []
    while link and guard < 10:
        guard += 1
        r = C.request("GET", link)
        if r.status != 200 or not isinstance(r.json(), dict):
            bad += r.describe()
            break
        seen += r.json().get("tags") or []
        pages.append(len(r.json().get("tags") or []))
        lh = r.hdr("Link")
        mm = re.match(r"\s*<([^>]+)>", lh or "")
        link = mm.group(1) if mm else None
    ok(S + ": following Link headers from ?n=5 yields every tag once, in order, in pages of 5, 5, 2",
       seen == want and pages == [5, 5, 2], ["pages %r, tags %r" % (pages, seen)] + bad, ext=EXT_TAGPAGE)
    r = C.request("GET", "/v2/%s/tags/list?n=12" % repo)
    expect(S + ": GET tags/list?n=<number of tags> -> all of them and no Link", r, 200, check=tag_list(want),
           absent=("Link",), ext=EXT_TAGPAGE)
    r = C.request("GET", "/v2/%s/tags/list?n=100" % repo)
    expect(S + ": GET tags/list?n=100 -> all 12 tags and no Link", r, 200, check=tag_list(want), absent=("Link",),
           ext=EXT_TAGSORT)
    r = C.request("GET", "/v2/%s/tags/list?last=a_b" % repo)
    expect(S + ": GET tags/list?last=a_b -> the tags after a_b, a_b excluded", r, 200,
           check=tag_list([t for t in want if t > "a_b"]), ext=EXT_TAGPAGE)
    r = C.request("GET", "/v2/%s/tags/list?n=3&last=alpha" % repo)
    expect(S + ": GET tags/list?n=3&last=alpha -> beta, latest, v1", r, 200, check=tag_list(["beta", "latest", "v1"]),
           ext=EXT_TAGPAGE)
    r = C.request("GET", "/v2/%s/tags/list?n=3&last=b" % repo)
    expect(S + ": GET tags/list?n=3&last=b (not itself a tag) -> beta, latest, v1", r, 200,
           check=tag_list(["beta", "latest", "v1"]), ext=EXT_TAGPAGE)
    r = C.request("GET", "/v2/%s/tags/list?last=zeta" % repo)
    expect(S + ": GET tags/list?last=<the last tag> -> an empty list", r, 200, check=tag_list([]), ext=EXT_TAGPAGE)
    r = C.request("GET", "/v2/%s/tags/list?n=0" % repo)
    expect(S + ": GET tags/list?n=0 -> an empty list and no Link", r, 200, check=tag_list([]), absent=("Link",),
           ext=EXT_TAGPAGE)
    r = C.request("GET", "/v2/%s/nosuchrepo/tags/list" % P)
    expect(S + ": GET tags/list of an unknown repository -> 404 NAME_UNKNOWN", r, 404, error="NAME_UNKNOWN")

    repo2 = P + "/tags-case"
    m2, steps, _ = push_image(repo2, None)
    mixed = ["b", "B", "a", "C", "A1", "_x", "Z9", "9z"]
    for t in mixed:
        steps.append(("PUT tag " + t, push_manifest(repo2, t, m2), 201))
    setup(S + ": set-up: one manifest under mixed-case tags", steps)
    r = C.request("GET", "/v2/%s/tags/list" % repo2)
    expect(S + ": tags/list of mixed-case tags is in ASCIIbetical (byte) order: %s" % " ".join(sorted(mixed)), r, 200,
           check=tag_list(sorted(mixed), repo2), ext=EXT_TAGSORT)


def referrers_section(P):
    S = "Content Discovery"
    repo = P + "/referrers"
    elsewhere = P + "/referrers-other"
    subj, steps, blobs = push_image(repo, "subject")
    sd = sha256(subj)
    sdesc = descriptor(OCI_MANIFEST, subj)
    empty = b"{}"
    steps.append(("push empty config", push_blob(repo, empty), 201))
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    sig = randbytes(300)
    sigcfg = b'{"signer": "conformance"}'
    jws = b'{"payload": "e30", "protected": "e30", "signature": "c2ln"}'
    for what, b in (("sbom", sbom), ("sig", sig), ("sig config", sigcfg), ("jws", jws)):
        steps.append(("push " + what, push_blob(repo, b), 201))
    setup(S + ": referrers set-up: a subject image and the blobs of its referrers", steps)

    a1 = image_manifest(empty, [descriptor("application/spdx+json", sbom)], config_mt=OCI_EMPTY,
                        extra={"artifactType": "application/vnd.example.sbom.v1", "subject": sdesc,
                               "annotations": {"org.example.sbom.format": "json",
                                               "org.opencontainers.image.created": "2024-01-01T00:00:00Z"}})
    a2 = image_manifest(sigcfg, [descriptor("application/vnd.example.sig.v1", sig)],
                        config_mt="application/vnd.example.sig.config.v1+json",
                        extra={"subject": sdesc, "annotations": {"org.example.sig": "yes"}})
    i1 = index_manifest([],
                        extra={"artifactType": "application/vnd.example.index.v1", "subject": sdesc,
                               "annotations": {"org.example.index": "typed"}})
    i2 = index_manifest([], extra={"subject": sdesc, "annotations": {"org.example.index": "untyped"}})
    notation = image_manifest(empty, [descriptor("application/jose+json", jws)], config_mt=OCI_EMPTY,
                              extra={"artifactType": NOTARY_SIGNATURE, "subject": sdesc,
                                     "annotations": {"io.cncf.notary.x509chain.thumbprint#S256":
                                                     '["' + "ab" * 32 + '"]'}})
    unrelated = image_manifest(empty, [descriptor("application/spdx+json", sbom)], config_mt=OCI_EMPTY,
                               extra={"artifactType": "application/vnd.example.sbom.v1",
                                      "annotations": {"org.example.note": "no subject"}})
    pushes = [("an image manifest with artifactType and annotations", a1),
              ("an image manifest without artifactType (config mediaType names it)", a2),
              ("an index with artifactType", i1),
              ("an index without artifactType", i2),
              ("a notation-style signature (artifactType %s)" % NOTARY_SIGNATURE, notation)]
    for what, body in pushes:
        r = push_manifest(repo, sha256(body), body)
        expect(S + ": referrers: PUT %s with subject, by digest -> 201 with OCI-Subject" % what, r, 201,
               headers={"OCI-Subject": equals(sd), "Docker-Content-Digest": equals(sha256(body))}, ext=EXT_SUBJECT)
    r = push_manifest(repo, "unrelated", unrelated)
    expect(S + ": referrers: PUT an artifact without subject -> 201 and no OCI-Subject", r, 201,
           absent=("OCI-Subject",))
    # the same referrer in another repository must not show up here
    other_steps = [("empty config", push_blob(elsewhere, empty), 201), ("sbom", push_blob(elsewhere, sbom), 201)]
    a_other = image_manifest(empty, [descriptor("application/spdx+json", sbom)], config_mt=OCI_EMPTY,
                             extra={"artifactType": "application/vnd.example.sbom.v1", "subject": sdesc,
                                    "annotations": {"org.example.repo": "other"}})
    other_steps.append(("referrer in the other repository", push_manifest(elsewhere, sha256(a_other), a_other), 201))
    setup(S + ": referrers: set-up: a referrer to the same digest in another repository", other_steps)

    def want_desc(body, artifact_type):
        j = json.loads(body)
        d = {"mediaType": j["mediaType"], "digest": sha256(body), "size": len(body)}
        if artifact_type:
            d["artifactType"] = artifact_type
        if j.get("annotations"):
            d["annotations"] = j["annotations"]
        return d
    expected = {
        "a1": want_desc(a1, "application/vnd.example.sbom.v1"),
        "a2": want_desc(a2, "application/vnd.example.sig.config.v1+json"),
        "i1": want_desc(i1, "application/vnd.example.index.v1"),
        "i2": want_desc(i2, None),
        "notation": want_desc(notation, NOTARY_SIGNATURE),
    }

    def referrers(names):
        want = [expected[n] for n in names]

        def f(r):
            j = r.json()
            if not isinstance(j, dict):
                return ["body is not a JSON object"]
            p = []
            if j.get("schemaVersion") != 2:
                p.append("schemaVersion %r, expected 2" % j.get("schemaVersion"))
            if j.get("mediaType") != OCI_INDEX:
                p.append("mediaType %r, expected %s" % (j.get("mediaType"), OCI_INDEX))
            got = j.get("manifests")
            if not isinstance(got, list):
                return p + ["manifests is %r, expected a list" % (got,)]
            by_digest = {}
            for d in got:
                if not isinstance(d, dict):
                    p.append("a descriptor that is not an object: %r" % (d,))
                    continue
                if d.get("digest") in by_digest:
                    p.append("duplicate descriptor for %s" % d.get("digest"))
                by_digest[d.get("digest")] = d
            wanted = {w["digest"] for w in want}
            for dg in by_digest:
                if dg not in wanted:
                    p.append("unexpected descriptor %s" % json.dumps(by_digest[dg]))
            for w in want:
                d = by_digest.get(w["digest"])
                if d is None:
                    p.append("missing descriptor %s" % json.dumps(w))
                    continue
                for k in ("mediaType", "size", "artifactType"):
                    if d.get(k) != w.get(k):
                        p.append("%s of %s: %r, expected %r" % (k, w["digest"][:19], d.get(k), w.get(k)))
                if "artifactType" not in w and "artifactType" in d:
                    p.append("%s: artifactType must be omitted for an index without one" % w["digest"][:19])
                if (d.get("annotations") or {}) != w.get("annotations", {}):
                    p.append("annotations of %s: %r, expected %r" % (w["digest"][:19], d.get("annotations"),
                                                                   w.get("annotations")))
            return p
        return f

    idx_ct = {"Content-Type": media_type(OCI_INDEX)}
    r = C.request("GET", "/v2/%s/referrers/%s" % (repo, sd))
    expect(S + ": GET referrers/<subject> -> 200, an image index of the 5 referrers' descriptors (mediaType, digest, "
           "size, artifactType, annotations), none from other repositories", r, 200, headers=idx_ct,
           check=referrers(["a1", "a2", "i1", "i2", "notation"]), absent=("OCI-Filters-Applied",), ext=EXT_REFERRERS)
    filt = dict(idx_ct, **{"OCI-Filters-Applied": equals("artifactType")})
    for at, names in (("application/vnd.example.sbom.v1", ["a1"]), (NOTARY_SIGNATURE, ["notation"]),
                      ("application/vnd.example.sig.config.v1+json", ["a2"]),
                      ("application/vnd.example.index.v1", ["i1"]), ("application/vnd.example.none", [])):
        r = C.request("GET", "/v2/%s/referrers/%s?artifactType=%s" % (repo, sd, urllib.parse.quote(at, safe="")))
        expect(S + ": GET referrers/<subject>?artifactType=%s -> %s, OCI-Filters-Applied: artifactType"
               % (at, "only " + ", ".join(names) if names else "an empty index"), r, 200, headers=filt,
               check=referrers(names), ext=EXT_REFERRERS)
    r = C.request("GET", "/v2/%s/referrers/%s" % (repo, sha256(b"nobody refers to this" + os.urandom(8))))
    expect(S + ": GET referrers of a digest nothing refers to -> 200 with an empty index (never 404)", r, 200,
           headers=idx_ct, check=referrers([]), ext=EXT_REFERRERS)
    r = C.request("GET", "/v2/%s/referrers/%s" % (P + "/no-such-repo", sd))
    expect(S + ": GET referrers in a repository that does not exist -> 200 with an empty index (never 404)", r, 200,
           headers=idx_ct, check=referrers([]), ext=EXT_REFERRERS)
    r = C.request("GET", "/v2/%s/referrers/sha256:nothex" % repo)
    expect(S + ": GET referrers/<malformed digest> -> 400", r, 400, ext=EXT_REFERRERS)
    r = C.request("GET", "/v2/%s/referrers/%s?artifactType=%s" % (repo, sd, urllib.parse.quote(NOTARY_SIGNATURE)))
    expect(S + ": notation: the signature is found through referrers?artifactType=%s" % NOTARY_SIGNATURE, r, 200,
           check=referrers(["notation"]), ext=EXT_REFERRERS)

    # a referrer whose subject does not exist is listed under that digest
    ghost = pretty({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": [],
                    "annotations": {"never": os.urandom(4).hex()}})
    orphan = image_manifest(empty, [descriptor("application/spdx+json", sbom)], config_mt=OCI_EMPTY,
                            extra={"artifactType": "application/vnd.example.sbom.v1",
                                   "subject": descriptor(OCI_MANIFEST, ghost), "annotations": {"o": "rphan"}})
    r = push_manifest(repo, sha256(orphan), orphan)
    expect(S + ": referrers: PUT a referrer whose subject is absent -> 201", r, 201)
    expected["orphan"] = want_desc(orphan, "application/vnd.example.sbom.v1")
    r = C.request("GET", "/v2/%s/referrers/%s" % (repo, sha256(ghost)))
    expect(S + ": ... it is listed by referrers/<that absent digest>", r, 200, check=referrers(["orphan"]),
           ext=EXT_REFERRERS)

    # deleting a referrer removes it from the list
    r = C.request("DELETE", "/v2/%s/manifests/%s" % (repo, sha256(a2)))
    expect(S + ": referrers: DELETE one referrer by digest -> 202", r, 202)
    r = C.request("GET", "/v2/%s/referrers/%s" % (repo, sd))
    expect(S + ": ... referrers/<subject> no longer lists it", r, 200, check=referrers(["a1", "i1", "i2", "notation"]),
           ext=EXT_REFERRERS)

    # cosign: a signature manifest under the tag sha256-<hex>.sig
    cosig_payload = json.dumps({"critical": {"image": {"docker-manifest-digest": sd},
                                             "type": "cosign container image signature"}}).encode()
    cosign_cfg = config_blob()
    cs = [("cosign payload", push_blob(repo, cosig_payload), 201), ("cosign config", push_blob(repo, cosign_cfg), 201)]
    setup(S + ": cosign set-up: push the simple-signing payload and config", cs)
    cosign = image_manifest(cosign_cfg, [descriptor(COSIGN_SIMPLESIGNING, cosig_payload, annotations={
        "dev.cosignproject.cosign/signature": "MEUCIQD" + "A" * 60})])
    sigtag = sd.replace(":", "-") + ".sig"
    r = push_manifest(repo, sigtag, cosign)
    expect(S + ": cosign: PUT the signature manifest under the tag %s -> 201" % ("sha256-<hex>.sig"), r, 201,
           headers={"Docker-Content-Digest": equals(sha256(cosign))})
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, sigtag))
    expect(S + ": cosign: GET manifests/sha256-<hex>.sig -> 200, the signature manifest", r, 200, body=cosign)
    r = C.request("GET", "/v2/%s/tags/list" % repo)
    expect(S + ": cosign: tags/list includes sha256-<hex>.sig", r, 200,
           check=lambda r: [] if sigtag in ((r.json() or {}).get("tags") or []) else ["tag %s not listed" % sigtag])
    # the referrers tag schema (the fallback for registries without the API): an index under sha256-<hex>
    fallback = index_manifest([], extra={"manifests": [expected["a1"]]})
    fbtag = sd.replace(":", "-")
    r = push_manifest(repo, fbtag, fallback)
    expect(S + ": referrers tag schema: PUT an index of referrers under the tag sha256-<hex> -> 201", r, 201)
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, fbtag), headers={"Accept": OCI_INDEX})
    expect(S + ": referrers tag schema: GET manifests/sha256-<hex> -> 200, that index", r, 200, body=fallback,
           headers={"Content-Type": media_type(OCI_INDEX)})


def management_section(P):
    S = "Content Management"
    repo = P + "/delete"
    m1, steps, _ = push_image(repo, "a")
    steps.append(("tag a2", push_manifest(repo, "a2", m1), 201))
    m2, steps2, _ = push_image(repo, "keep")
    steps += steps2 + [("tag gone", push_manifest(repo, "gone", m2), 201)]
    setup(S + ": set-up: manifest A under tags a, a2; manifest B under keep, gone", steps)
    d1, d2 = sha256(m1), sha256(m2)

    r = C.request("DELETE", "/v2/%s/manifests/%s" % (repo, d1))
    expect(S + ": DELETE manifest by digest -> 202", r, 202)
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, d1))
    expect(S + ": ... GET it by digest -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN")
    r = C.request("HEAD", "/v2/%s/manifests/%s" % (repo, d1))
    expect(S + ": ... HEAD it by digest -> 404", r, 404, no_body=True)
    for t in ("a", "a2"):
        r = C.request("GET", "/v2/%s/manifests/%s" % (repo, t))
        expect(S + ": ... GET its tag %s -> 404 MANIFEST_UNKNOWN" % t, r, 404, error="MANIFEST_UNKNOWN")
    r = C.request("DELETE", "/v2/%s/manifests/%s" % (repo, d1))
    expect(S + ": DELETE the same manifest again -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN")
    r = C.request("GET", "/v2/%s/tags/list" % repo)
    tl = lambda want: (lambda r: [] if ((r.json() or {}).get("tags") or []) == want
                       else ["tags %r, expected %r" % ((r.json() or {}).get("tags"), want)])
    expect(S + ": ... tags/list no longer has its tags (gone, keep)", r, 200, check=tl(["gone", "keep"]))

    r = C.request("DELETE", "/v2/%s/manifests/gone" % repo)
    expect(S + ": DELETE manifest by tag -> 202", r, 202, ext=EXT_TAGDEL)
    r = C.request("GET", "/v2/%s/manifests/gone" % repo)
    expect(S + ": ... GET the deleted tag -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN", ext=EXT_TAGDEL)
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, d2))
    expect(S + ": ... the manifest is still there by digest (200)", r, 200, body=m2)
    r = C.request("GET", "/v2/%s/manifests/keep" % repo)
    expect(S + ": ... and by its other tag (200)", r, 200, body=m2)
    r = C.request("GET", "/v2/%s/tags/list" % repo)
    expect(S + ": ... tags/list is now just [keep]", r, 200, check=tl(["keep"]), ext=EXT_TAGDEL)
    r = C.request("DELETE", "/v2/%s/manifests/nosuchtag" % repo)
    expect(S + ": DELETE an unknown tag -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN", ext=EXT_TAGDEL)
    r = C.request("DELETE", "/v2/%s/manifests/%s" % (repo, sha256(b"never pushed" + os.urandom(8))))
    expect(S + ": DELETE an unknown manifest digest -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN")

    # blobs
    other = P + "/delete-other"
    blob = randbytes(6000)
    bd = sha256(blob)
    setup(S + ": set-up: the same blob pushed to two repositories",
          [("push to " + repo, push_blob(repo, blob), 201), ("push to " + other, push_blob(other, blob), 201)])
    r = C.request("DELETE", "/v2/%s/blobs/%s" % (repo, bd))
    expect(S + ": DELETE blob -> 202", r, 202)
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, bd))
    expect(S + ": ... GET it from that repository -> 404 BLOB_UNKNOWN", r, 404, error="BLOB_UNKNOWN")
    r = C.request("HEAD", "/v2/%s/blobs/%s" % (repo, bd))
    expect(S + ": ... HEAD it there -> 404", r, 404, no_body=True)
    r = C.request("GET", "/v2/%s/blobs/%s" % (other, bd))
    expect(S + ": ... still served from the other repository that has it (200, the bytes)", r, 200, body=blob)
    r = C.request("DELETE", "/v2/%s/blobs/%s" % (repo, bd))
    expect(S + ": DELETE the same blob again -> 404 BLOB_UNKNOWN", r, 404, error="BLOB_UNKNOWN")
    r = C.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (P + "/delete-mount", bd, repo),
                  headers={"Content-Length": "0"})
    expect(S + ": ... a mount of it from the repository it was deleted from -> 202 (nothing to mount)", r, 202,
           headers={"Location": present})
    r = C.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (P + "/delete-mount", bd, other),
                  headers={"Content-Length": "0"})
    expect(S + ": ... a mount of it from the other repository -> 201", r, 201,
           headers={"Docker-Content-Digest": equals(bd)})
    r = C.request("DELETE", "/v2/%s/blobs/%s" % (repo, sha256(b"never pushed blob" + os.urandom(8))))
    expect(S + ": DELETE an unknown blob -> 404 BLOB_UNKNOWN", r, 404, error="BLOB_UNKNOWN")


def digests_section(P):
    S = "Digests"
    repo = P + "/sha512"
    # monolithic
    data = randbytes(7000)
    d = sha512(data)
    r, loc = start_upload(repo)
    if loc:
        r = C.request("PUT", with_query(loc, "digest=" + d), body=data, headers={"Content-Type": "application/octet-stream"})
    expect(S + ": sha512: monolithic POST + PUT ?digest=sha512:... -> 201, Location, Docker-Content-Digest: that digest",
           r, 201, headers={"Location": present, "Docker-Content-Digest": equals(d)}, ext=EXT_SHA512B)
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, d))
    expect(S + ": sha512: GET blob by its sha512 digest -> 200, the bytes, Docker-Content-Digest of them", r, 200,
           body=data, headers={"Docker-Content-Digest": matches_content(data)})
    r = C.request("HEAD", "/v2/%s/blobs/%s" % (repo, d))
    expect(S + ": sha512: HEAD blob by its sha512 digest -> 200, Content-Length, Docker-Content-Digest", r, 200,
           no_body=True, headers={"Content-Length": str(len(data)), "Docker-Content-Digest": matches_content(data)})
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, d), headers={"Range": "bytes=10-19"})
    expect(S + ": sha512: GET with Range: bytes=10-19 -> 206, those bytes", r, 206, body=data[10:20],
           headers={"Content-Range": "bytes 10-19/%d" % len(data)})
    # single POST
    data2 = randbytes(3000)
    r = C.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, sha512(data2)), body=data2,
                  headers={"Content-Type": "application/octet-stream"})
    expect(S + ": sha512: single POST ?digest=sha512:... -> 201", r, 201, headers={"Location": present},
           ext=EXT_POSTDIGEST)
    # chunked with digest-algorithm=sha512
    data3 = randbytes(4000)
    d3 = sha512(data3)
    r, loc = start_upload(repo, "?digest-algorithm=sha512")
    expect(S + ": sha512: POST ?digest-algorithm=sha512 -> 202 with Location", r, 202, headers={"Location": present})
    if loc:
        r = C.request("PATCH", loc, body=data3[:2000],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "0-1999"})
        loc = r.hdr("Location") or loc
        r = C.request("PATCH", loc, body=data3[2000:],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "2000-3999"})
        expect(S + ": sha512: chunked PATCHes -> 202, Range: 0-3999", r, 202, headers={"Range": "0-3999"})
        loc = r.hdr("Location") or loc
        r = C.request("PUT", with_query(loc, "digest=" + d3))
        expect(S + ": sha512: closing PUT ?digest=sha512:... -> 201, Docker-Content-Digest: that digest", r, 201,
               headers={"Docker-Content-Digest": equals(d3)}, ext=EXT_SHA512B)
        r = C.request("GET", "/v2/%s/blobs/%s" % (repo, d3))
        expect(S + ": sha512: that blob is served (200, the bytes)", r, 200, body=data3)
    # chunked announced as sha256, finished with sha512
    data4 = randbytes(2600)
    d4 = sha512(data4)
    r, loc = start_upload(repo, "?digest-algorithm=sha256")
    if loc:
        r = C.request("PATCH", loc, body=data4[:1300],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "0-1299"})
        loc = r.hdr("Location") or loc
        r = C.request("PUT", with_query(loc, "digest=" + d4), body=data4[1300:],
                      headers={"Content-Type": "application/octet-stream", "Content-Range": "1300-2599"})
        expect(S + ": sha512: an upload started with ?digest-algorithm=sha256 and closed with ?digest=sha512:... -> 201",
               r, 201, headers={"Docker-Content-Digest": equals(d4)}, ext=EXT_SHA512B)
        r = C.request("GET", "/v2/%s/blobs/%s" % (repo, d4))
        expect(S + ": sha512: ... that blob is served (200, the bytes)", r, 200, body=data4)
    else:
        ok(S + ": sha512: POST ?digest-algorithm=sha256 -> 202", False, r.describe())
    r, loc = start_upload(repo)
    if loc:
        r = C.request("PUT", with_query(loc, "digest=" + sha512(b"other")), body=data4,
                      headers={"Content-Type": "application/octet-stream"})
        expect(S + ": sha512: PUT with a sha512 digest that does not match -> 400 DIGEST_INVALID", r, 400,
               error="DIGEST_INVALID")

    # manifests referencing sha512 blobs, and manifests by sha512 digest
    cfg = config_blob()
    layer = randbytes(3333)
    steps = [("config sha512", push_blob(repo, cfg, sha512(cfg)), 201),
             ("layer sha512", push_blob(repo, layer, sha512(layer)), 201)]
    setup(S + ": sha512: set-up: push a config and a layer by sha512 digests", steps)
    m = image_manifest(cfg, [layer], algo="sha512")
    r = push_manifest(repo, "sha512-blobs", m)
    expect(S + ": sha512: PUT a manifest whose descriptors use sha512 digests -> 201", r, 201)
    r = C.request("GET", "/v2/%s/manifests/sha512-blobs" % repo)
    expect(S + ": sha512: ... it is served", r, 200, body=m)
    m5 = image_manifest(cfg, [layer], algo="sha512", extra={"annotations": {"by": "sha512"}})
    d5 = sha512(m5)
    r = push_manifest(repo, d5, m5)
    expect(S + ": sha512: PUT manifest by its sha512 digest -> 201, Location, Docker-Content-Digest: that digest", r, 201,
           headers={"Location": present, "Docker-Content-Digest": equals(d5)}, ext=EXT_SHA512M)
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, d5))
    expect(S + ": sha512: GET manifest by its sha512 digest -> 200, the bytes, Docker-Content-Digest of them", r, 200,
           body=m5, headers={"Docker-Content-Digest": matches_content(m5), "Content-Type": media_type(OCI_MANIFEST)},
           ext=EXT_SHA512M)
    r = C.request("HEAD", "/v2/%s/manifests/%s" % (repo, d5))
    expect(S + ": sha512: HEAD manifest by its sha512 digest -> 200, Content-Length", r, 200, no_body=True,
           headers={"Content-Length": str(len(m5)), "Docker-Content-Digest": matches_content(m5)}, ext=EXT_SHA512M)
    m6 = image_manifest(cfg, [layer], algo="sha512", extra={"annotations": {"by": "sha512 and tags"}})
    d6 = sha512(m6)
    r = C.request("PUT", "/v2/%s/manifests/%s?tag=s512a&tag=s512b" % (repo, d6), body=m6,
                  headers={"Content-Type": OCI_MANIFEST})
    expect(S + ": sha512: PUT manifest by sha512 digest with ?tag=s512a&tag=s512b -> 201, OCI-Tag for both", r, 201,
           headers={"Docker-Content-Digest": equals(d6)},
           check=lambda r: [] if sorted(oci_tags(r)) == ["s512a", "s512b"] else ["OCI-Tag values %r" % oci_tags(r)],
           ext=EXT_TAGQ)
    r = C.request("GET", "/v2/%s/manifests/s512b" % repo)
    expect(S + ": sha512: ... GET by one of those tags -> 200, the manifest, Docker-Content-Digest of it", r, 200,
           body=m6, headers={"Docker-Content-Digest": matches_content(m6)}, ext=EXT_TAGQ)
    r = push_manifest(repo, sha512(m5 + b" "), m5)
    expect(S + ": sha512: PUT manifest by a sha512 digest that is not its own -> 400 DIGEST_INVALID", r, 400,
           error="DIGEST_INVALID")

    # unknown algorithms
    S2 = "Digests"
    r, loc = start_upload(repo)
    if loc:
        r = C.request("PUT", with_query(loc, "digest=md5:" + hashlib.md5(data).hexdigest()), body=data,
                      headers={"Content-Type": "application/octet-stream"})
    expect(S2 + ": PUT upload ?digest=md5:... (unknown algorithm) -> 400 DIGEST_INVALID", r, 400, error="DIGEST_INVALID")
    r = C.request("POST", "/v2/%s/blobs/uploads/?digest=foo256:%s" % (repo, "ab" * 32), body=data,
                  headers={"Content-Type": "application/octet-stream"})
    expect(S2 + ": single POST ?digest=foo256:... (unknown algorithm) -> 400 DIGEST_INVALID", r, 400,
           error="DIGEST_INVALID", ext=EXT_POSTDIGEST)
    r = C.request("POST", "/v2/%s/blobs/uploads/?digest-algorithm=md5" % repo, headers={"Content-Length": "0"})
    expect(S2 + ": POST ?digest-algorithm=md5 -> 400 DIGEST_INVALID", r, 400, error="DIGEST_INVALID", ext=EXT_DIGALG)
    r = push_manifest(repo, "sha999:" + "ab" * 32, m5)
    expect(S2 + ": PUT manifest by sha999:... (unknown algorithm) -> 400 DIGEST_INVALID", r, 400, error="DIGEST_INVALID",
           ext=EXT_500)
    r = C.request("GET", "/v2/%s/blobs/sha999:%s" % (repo, "ab" * 32))
    expect(S2 + ": GET blob sha999:... -> 400 DIGEST_INVALID or 404", r, (400, 404), check=error_or_404("DIGEST_INVALID"))

    # malformed digests in URLs
    bad63 = "sha256:" + "a" * 63
    upper = "sha256:" + hashlib.sha256(data).hexdigest().upper()
    for method, path, what in (("GET", "/v2/%s/blobs/sha256:zzz" % repo, "GET blob"),
                               ("HEAD", "/v2/%s/blobs/%s" % (repo, bad63), "HEAD blob (63 hex digits)"),
                               ("GET", "/v2/%s/manifests/%s" % (repo, bad63), "GET manifest (63 hex digits)"),
                               ("HEAD", "/v2/%s/manifests/sha256:zzz" % repo, "HEAD manifest")):
        r = C.request(method, path)
        expect(S2 + ": malformed digest: %s -> 400 DIGEST_INVALID or 404" % what, r, (400, 404),
               check=error_or_404("DIGEST_INVALID"), ext=EXT_500 if "manifest" in what else None)
    for method, path, what in (("DELETE", "/v2/%s/blobs/sha256:zzz" % repo, "DELETE blob sha256:zzz"),
                               ("DELETE", "/v2/%s/blobs/%s" % (repo, bad63), "DELETE blob (63 hex digits)"),
                               ("DELETE", "/v2/%s/manifests/%s" % (repo, bad63), "DELETE manifest (63 hex digits)"),
                               ("POST", "/v2/%s/blobs/uploads/?mount=sha256:zzz&from=%s" % (repo, P + "/push"),
                                "POST ?mount=sha256:zzz"),
                               ("POST", "/v2/%s/blobs/uploads/?digest=sha256:zzz" % repo, "single POST ?digest=sha256:zzz")):
        body = data if "digest=" in path else None
        r = C.request(method, path, body=body, headers={"Content-Type": "application/octet-stream"} if body else None)
        ext = EXT_MOUNT if "mount=" in path else (EXT_POSTDIGEST if "digest=" in path else None)
        expect(S2 + ": malformed digest: %s -> 400 DIGEST_INVALID" % what, r, 400, error="DIGEST_INVALID", ext=ext)
    r = push_manifest(repo, "sha256:zzz", m5)
    expect(S2 + ": malformed digest: PUT manifest sha256:zzz -> 400 DIGEST_INVALID", r, 400, error="DIGEST_INVALID",
           ext=EXT_500)
    for q, what in (("digest=sha256:zzz", "sha256:zzz"), ("digest=" + upper, "upper-case hex"),
                    ("digest=" + bad63, "63 hex digits"), ("digest=sha256", "no hex at all")):
        r, loc = start_upload(repo)
        if loc:
            r = C.request("PUT", with_query(loc, q), body=data, headers={"Content-Type": "application/octet-stream"})
        expect(S2 + ": malformed digest: closing PUT ?digest=<%s> -> 400 DIGEST_INVALID" % what, r, 400,
               error="DIGEST_INVALID")
    r, loc = start_upload(repo)
    if loc:
        r = C.request("PUT", loc, body=data, headers={"Content-Type": "application/octet-stream"})
    expect(S2 + ": closing PUT without ?digest= -> 400 DIGEST_INVALID", r, 400, error="DIGEST_INVALID")


def aggregate_section(P):
    S = "Errors"
    rs = [r for r in C.responses if not r.error]
    bad = ["%s %s -> %d: %r" % (r.method, r.url, r.status, r.hdr("Docker-Distribution-Api-Version"))
           for r in rs if r.hdr("Docker-Distribution-Api-Version") != "registry/2.0"]
    ok(S + ": every response (%d) carried Docker-Distribution-Api-Version: registry/2.0" % len(rs), not bad,
       bad[:15] + (["... and %d more" % (len(bad) - 15)] if len(bad) > 15 else []))
    errs = [r for r in rs if 400 <= r.status < 500 and r.method != "HEAD"]
    notjson, badcode, nodetail = [], [], []
    for r in errs:
        j = r.json()
        if not isinstance(j, dict) or not isinstance(j.get("errors"), list) or not j["errors"]:
            notjson.append("%s %s -> %d: %r" % (r.method, r.url, r.status, r.body[:100]))
            continue
        for e in j["errors"]:
            if not isinstance(e, dict) or e.get("code") not in SPEC_ERROR_CODES or not isinstance(e.get("message"), str):
                badcode.append("%s %s -> %d: %s" % (r.method, r.url, r.status, json.dumps(e)[:160]))
            elif "detail" not in e:
                nodetail.append("%s %s -> %d: %s" % (r.method, r.url, r.status, json.dumps(e)[:160]))
    ok(S + ": every 4xx answer to a non-HEAD request (%d) has a JSON body {\"errors\": [...]}" % len(errs), not notjson,
       notjson[:15], ext=EXT_ERRFORMAT)
    ok(S + ": every error has a code from the spec's list and a string message", not badcode, badcode[:15])
    ok(S + ": every error has code, message and detail", not nodetail, nodetail[:15], ext=EXT_DETAIL)

def sparse_section(P, sparse):
    """The conformance suite's sparse data (distribution-spec conformance, Data.Sparse): an image manifest one of
    whose layers was never pushed, and an index one of whose platform manifests was never pushed. A registry that
    accepts sparse manifests serves them and what they reference that is there; one that does not refuses them with
    MANIFEST_BLOB_UNKNOWN."""
    S = "Sparse"
    repo = P + "/sparse"
    cfg, l1, l2 = config_blob(), randbytes(1200), randbytes(1300)
    setup(S + ": set-up: push the config and the second layer (not the first)",
          [("config", push_blob(repo, cfg), 201), ("layer 2", push_blob(repo, l2), 201)])
    m = image_manifest(cfg, [l1, l2])
    md = sha256(m)
    r = push_manifest(repo, "sparse-image", m)
    if not sparse:
        expect(S + ": (sparse manifests off) PUT an image manifest whose layer is absent -> 400 MANIFEST_BLOB_UNKNOWN",
               r, 400, error="MANIFEST_BLOB_UNKNOWN")
        child = image_manifest(config_blob(), [])
        idx = index_manifest([(OCI_MANIFEST, child, "arm64")])
        r = push_manifest(repo, "sparse-index", idx)
        expect(S + ": (sparse manifests off) PUT an index whose manifest is absent -> 400 MANIFEST_BLOB_UNKNOWN",
               r, 400, error="MANIFEST_BLOB_UNKNOWN")
        return
    expect(S + ": PUT an image manifest whose first layer is absent -> 201, Docker-Content-Digest", r, 201,
           headers={"Docker-Content-Digest": equals(md)})
    r = C.request("GET", "/v2/%s/tags/list" % repo)
    expect(S + ": the tag is listed", r, 200, check=lambda r: [] if "sparse-image" in (r.json().get("tags") or [])
           else ["sparse-image not in %r" % r.json()])
    r = C.request("HEAD", "/v2/%s/manifests/sparse-image" % repo, headers={"Accept": OCI_MANIFEST})
    expect(S + ": HEAD the sparse image by tag -> 200, its digest", r, 200, headers={"Docker-Content-Digest": equals(md)})
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, md), headers={"Accept": OCI_MANIFEST})
    expect(S + ": GET it by digest -> 200, the bytes pushed", r, 200, body=m)
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(cfg)))
    expect(S + ": its config is pullable", r, 200, body=cfg)
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(l2)))
    expect(S + ": its pushed layer is pullable", r, 200, body=l2)
    r = C.request("GET", "/v2/%s/blobs/%s" % (repo, sha256(l1)))
    expect(S + ": its absent layer -> 404 BLOB_UNKNOWN", r, 404, error="BLOB_UNKNOWN")
    r = C.request("GET", "/v2/%s/referrers/%s" % (repo, md))
    expect(S + ": its referrers -> 200, an empty index", r, 200,
           check=lambda r: [] if r.json().get("manifests") == [] else ["manifests: %r" % r.json().get("manifests")])

    # an index of a pushed image (amd64) and of a manifest never pushed (arm64)
    acfg, al = config_blob("amd64"), randbytes(1100)
    setup(S + ": set-up: push the amd64 image", [("config", push_blob(repo, acfg), 201),
                                                 ("layer", push_blob(repo, al), 201)])
    amd = image_manifest(acfg, [al])
    r = push_manifest(repo, sha256(amd), amd)
    expect(S + ": PUT the amd64 image by digest -> 201", r, 201)
    absent = randbytes(1024)
    idx = pretty({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        dict(descriptor(OCI_MANIFEST, amd), platform={"architecture": "amd64", "os": "linux"}),
        dict(descriptor(OCI_MANIFEST, absent), platform={"architecture": "arm64", "os": "linux"})]})
    idxd = sha256(idx)
    r = push_manifest(repo, "sparse-index", idx)
    expect(S + ": PUT an index whose arm64 manifest is absent -> 201", r, 201,
           headers={"Docker-Content-Digest": equals(idxd)})
    r = C.request("GET", "/v2/%s/manifests/sparse-index" % repo, headers={"Accept": OCI_INDEX})
    expect(S + ": GET the sparse index by tag -> 200, the bytes pushed", r, 200, body=idx)
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, sha256(amd)), headers={"Accept": OCI_MANIFEST})
    expect(S + ": its amd64 manifest is pullable", r, 200, body=amd)
    r = C.request("GET", "/v2/%s/manifests/%s" % (repo, sha256(absent)), headers={"Accept": OCI_MANIFEST})
    expect(S + ": its absent arm64 manifest -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN")
    big = randbytes(1500)
    setup(S + ": set-up: push a layer", [("layer", push_blob(repo, big), 201)])
    wrong = image_manifest(cfg, [dict(descriptor(OCI_LAYER, big), size=len(big) + 1)])
    r = push_manifest(repo, "wrong-size", wrong)
    expect(S + ": a reference that is there must still have the size its descriptor gives -> 400 MANIFEST_INVALID",
           r, 400, error="MANIFEST_INVALID")

    # delete what was pushed
    for ref, what in ((idxd, "the index"), (sha256(amd), "the amd64 image"), (md, "the sparse image")):
        r = C.request("DELETE", "/v2/%s/manifests/%s" % (repo, ref))
        expect(S + ": DELETE %s by digest -> 202" % what, r, 202)
        r = C.request("GET", "/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": OCI_MANIFEST + ", " + OCI_INDEX})
        expect(S + ": ... then GET -> 404 MANIFEST_UNKNOWN", r, 404, error="MANIFEST_UNKNOWN")


SPARSE = False  # --sparse


def main(argv):
    global T, C, SPARSE
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a for a in argv[1:] if a.startswith("--")}
    if len(args) != 1 or flags - {"--reference", "--sparse"}:
        print("usage: %s http://HOST:PORT [--reference] [--sparse]" % argv[0], file=sys.stderr)
        return 2
    T = Tap("--reference" in flags)
    SPARSE = "--sparse" in flags
    C = Client(args[0])
    P = "conformance-" + os.urandom(5).hex()
    print("# OCI distribution-spec conformance: %s, repositories %s/*%s"
          % (C.base, P, " (reference run)" if T.reference else ""))
    for section in (base_section, pull_section, push_blobs_section, push_manifests_section, discovery_section,
                    referrers_section, management_section, digests_section,
                    lambda P: sparse_section(P, SPARSE), aggregate_section):
        try:
            section(P)
        except Exception:
            T.result(False, "%s crashed" % section.__name__, traceback.format_exc().splitlines())
    print("1..%d" % T.n)
    if T.reference:
        if T.expected_failures:
            print("# docker-registry failed %d test(s) for things berth does beyond it (or differently):"
                  % len(T.expected_failures))
            for n, desc, ext in T.expected_failures:
                print("#   %d %s  [%s]" % (n, desc, ext))
        if T.ext_passed:
            print("# tests marked as beyond distribution that it passed anyway: %s"
                  % ", ".join(str(n) for n, _ in T.ext_passed))
    if T.failed:
        print("# %d of %d failed: %s" % (len(T.failed), T.n, ", ".join(str(n) for n, _ in T.failed)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
