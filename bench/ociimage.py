#!/usr/bin/env python3
"""ociimage.py - a one-layer OCI image layout for bench/run's client pushes (skopeo copy, podman push).

    ociimage.py OUT SRC SIZE_MIB [TAG]

OUT gets an OCI image layout (oci-layout, index.json with TAG, default v1): a config and one
application/vnd.oci.image.layer.v1.tar+gzip layer holding one file of SIZE_MIB MiB, the first SIZE_MIB MiB of
SRC (a random file made once), its first 64 bytes and its name replaced by fresh random ones: every call makes a
layer no registry has seen, without generating SIZE_MIB MiB of random data again. The gzip stream has stored
(level 0) deflate blocks, which is what gzip makes of random data anyway, at the cost of a copy. Nothing is
fetched; prints the layer's digest and size. Only the standard library.
"""
import hashlib
import json
import os
import sys
import tarfile
import time
import zlib

CHUNK = 1 << 20


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    out, src, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tag = sys.argv[4] if len(sys.argv) == 5 else "v1"
    size = mib << 20
    if os.path.getsize(src) < size:
        sys.exit(f"ociimage.py: {src} is smaller than {mib} MiB")
    bd = os.path.join(out, "blobs", "sha256")
    os.makedirs(bd)
    nonce = os.urandom(8).hex()

    ti = tarfile.TarInfo(f"bench/{nonce}.bin")
    ti.size, ti.mtime, ti.mode = size, int(time.time()), 0o644
    head = ti.tobuf(format=tarfile.PAX_FORMAT)
    pad = b"\0" * ((-size) % 512) + b"\0" * 1024            # the member's padding, then the end of archive

    raw_h, gz_h = hashlib.sha256(), hashlib.sha256()
    co = zlib.compressobj(0, zlib.DEFLATED, 31)               # wbits 31: a gzip header and trailer
    tmp = os.path.join(bd, "layer.tmp")
    with open(src, "rb") as f, open(tmp, "wb") as o:
        def put(b):
            raw_h.update(b)
            z = co.compress(b)
            if z:
                gz_h.update(z)
                o.write(z)
        put(head)
        left, first = size, True
        while left:
            b = f.read(min(CHUNK, left))
            if not b:
                sys.exit(f"ociimage.py: short read on {src}")
            if first:
                b, first = os.urandom(64) + b[64:], False
            put(b)
            left -= len(b)
        put(pad)
        z = co.flush()
        gz_h.update(z)
        o.write(z)
    ld = gz_h.hexdigest()
    ls = os.path.getsize(tmp)
    os.rename(tmp, os.path.join(bd, ld))

    def blob(obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(bd, d), "wb") as o:
            o.write(data)
        return "sha256:" + d, len(data)

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cd, cs = blob({"created": now, "architecture": "amd64", "os": "linux",
                   "config": {"Cmd": ["/bin/sh"]},
                   "rootfs": {"type": "layers", "diff_ids": ["sha256:" + raw_h.hexdigest()]},
                   "history": [{"created": now, "created_by": "bench/ociimage.py"}]})
    md, ms = blob({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                   "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               "digest": "sha256:" + ld, "size": ls}]})
    with open(os.path.join(out, "index.json"), "w") as o:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": tag}}]}, o)
    with open(os.path.join(out, "oci-layout"), "w") as o:
        json.dump({"imageLayoutVersion": "1.0.0"}, o)
    print(f"layer: sha256:{ld}\nlayer_size: {ls}\nmanifest: {md}")


if __name__ == "__main__":
    main()
