#!/usr/bin/env python3
"""JWT helper for berth's authentication tests (stdlib only; ES256 signing and verification by the openssl CLI).

  jwt.py sign ALG KEYFILE HEADER_JSON PAYLOAD_JSON   a compact JWT; ALG is ES256 (KEYFILE: a PEM EC private
                                                     key), HS256 (KEYFILE: the HMAC secret's bytes, e.g. a PEM
                                                     public key), or none (KEYFILE ignored, empty signature)
  jwt.py part JWT N                                  the base64url-decoded part N (0 header, 1 payload)
  jwt.py verify JWKS_FILE JWT                        exit 0 iff the ES256 signature verifies with the JWKS key
                                                     whose kid is the header's kid
  jwt.py thumbprint JWKS_FILE                        RFC 7638 SHA-256 thumbprint (base64url) of the first key
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(s):
    s = s.strip()
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def compact(s):
    # a JSON argument, re-serialised compactly (so that callers may pretty-print)
    return json.dumps(json.loads(s), separators=(",", ":")).encode()


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der_to_raw(der):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> R||S, 32 bytes each."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n]
        i += 2 + n
        out += int.from_bytes(v, "big").to_bytes(32, "big")
    return out


def raw_to_der(raw):
    def integer(b):
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return b"\x02" + der_len(len(b)) + b
    body = integer(raw[:32]) + integer(raw[32:])
    return b"\x30" + der_len(len(body)) + body


def openssl(args, data):
    p = subprocess.run(["openssl"] + args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p


def sign(alg, keyfile, header, payload):
    signing_input = (b64u(compact(header)) + "." + b64u(compact(payload))).encode()
    if alg == "none":
        sig = b""
    elif alg == "HS256":
        sig = hmac.new(open(keyfile, "rb").read(), signing_input, hashlib.sha256).digest()
    elif alg == "ES256":
        p = openssl(["dgst", "-sha256", "-sign", keyfile], signing_input)
        if p.returncode != 0:
            sys.exit("openssl dgst -sign failed: " + p.stderr.decode())
        sig = der_to_raw(p.stdout)
    else:
        sys.exit("unknown alg " + alg)
    print(signing_input.decode() + "." + b64u(sig))


def jwk_pem(k):
    # SubjectPublicKeyInfo of an uncompressed P-256 point
    prefix = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
    der = prefix + b"\x04" + unb64u(k["x"]) + unb64u(k["y"])
    return ("-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der).decode() + "-----END PUBLIC KEY-----\n").encode()


def verify(jwks_file, jwt):
    h, p, s = jwt.strip().split(".")
    kid = json.loads(unb64u(h)).get("kid")
    keys = [k for k in json.load(open(jwks_file))["keys"] if k.get("kid") == kid]
    if len(keys) != 1:
        sys.exit("no single JWKS key with kid %r" % kid)
    with tempfile.TemporaryDirectory() as d:
        pem, sigf = os.path.join(d, "pub.pem"), os.path.join(d, "sig.der")
        open(pem, "wb").write(jwk_pem(keys[0]))
        open(sigf, "wb").write(raw_to_der(unb64u(s)))
        r = openssl(["dgst", "-sha256", "-verify", pem, "-signature", sigf], (h + "." + p).encode())
        sys.stdout.write(r.stdout.decode() + r.stderr.decode())
        sys.exit(0 if r.returncode == 0 else 1)


def thumbprint(jwks_file):
    k = json.load(open(jwks_file))["keys"][0]
    canon = json.dumps({"crv": k["crv"], "kty": k["kty"], "x": k["x"], "y": k["y"]}, separators=(",", ":"),
                       sort_keys=True)
    print(b64u(hashlib.sha256(canon.encode()).digest()))


def main(argv):
    if len(argv) == 5 and argv[0] == "sign":
        sign(argv[1], argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[0] == "part":
        sys.stdout.write(unb64u(argv[1].strip().split(".")[int(argv[2])]).decode())
    elif len(argv) == 3 and argv[0] == "verify":
        verify(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "thumbprint":
        thumbprint(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
