#!/usr/bin/python3
"""Write CoRIMs for the tests with an encoder independent of cloister's reader.

Encoding is python3-cbor2's; signing is the openssl command's. Run with
Debian's /usr/bin/python3, which has cbor2.

  make_corim.py unsigned OUT --digest HEX [--alg 7] [--vendor AMD --model SEV-SNP]
                [--min-svn N] [--not-before EPOCH] [--not-after EPOCH]
  make_corim.py sign IN OUT --key KEY.pem      (ES256 for P-256, ES384 for P-384)
"""
import argparse
import os
import subprocess
import sys
import tempfile

import cbor2
from cbor2 import CBORTag


def comid(args):
    mval = {2: [[args.alg, bytes.fromhex(args.digest)]]}
    if args.min_svn is not None:
        mval[1] = CBORTag(553, args.min_svn)
    env = {0: {1: args.vendor, 2: args.model}}
    return {
        1: {0: "cloister-e2e-comid"},
        4: {0: [[env, [{1: mval}]]]},
    }


def unsigned(args):
    corim = {
        0: "cloister-e2e-corim",
        1: [CBORTag(506, cbor2.dumps(comid(args)))],
    }
    if args.not_after is not None:
        validity = {1: CBORTag(1, args.not_after)}
        if args.not_before is not None:
            validity[0] = CBORTag(1, args.not_before)
        corim[4] = validity
    return cbor2.dumps(CBORTag(501, corim))


def der_int(b, i):
    if b[i] != 0x02:
        raise ValueError("DER: expected INTEGER")
    n = b[i + 1]
    return int.from_bytes(b[i + 2:i + 2 + n], "big"), i + 2 + n


def der_to_raw(der, size):
    """ECDSA-Sig-Value (SEQUENCE of r, s) to r||s of size bytes each."""
    if der[0] != 0x30:
        raise ValueError("DER: expected SEQUENCE")
    i = 3 if der[1] == 0x81 else 2
    r, i = der_int(der, i)
    s, _ = der_int(der, i)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def sign(args):
    with open(args.input, "rb") as f:
        payload = f.read()
    text = subprocess.run(["openssl", "pkey", "-in", args.key, "-noout", "-text"],
                          check=True, capture_output=True, text=True).stdout
    if "P-384" in text or "secp384r1" in text:
        alg, md, size = -35, "-sha384", 48
    else:
        alg, md, size = -7, "-sha256", 32
    protected = cbor2.dumps({1: alg, 3: "application/rim+cbor"})
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    with tempfile.TemporaryDirectory() as d:
        tbs_path = os.path.join(d, "tbs")
        sig_path = os.path.join(d, "sig")
        with open(tbs_path, "wb") as f:
            f.write(tbs)
        subprocess.run(["openssl", "dgst", md, "-sign", args.key, "-out", sig_path, tbs_path],
                       check=True)
        with open(sig_path, "rb") as f:
            sig = der_to_raw(f.read(), size)
    return cbor2.dumps(CBORTag(18, [protected, {}, payload, sig]))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("unsigned")
    u.add_argument("out")
    u.add_argument("--digest", required=True)
    u.add_argument("--alg", type=int, default=7)  # sha-384 in the named-information registry
    u.add_argument("--vendor", default="AMD")
    u.add_argument("--model", default="SEV-SNP")
    u.add_argument("--min-svn", type=int)
    u.add_argument("--not-before", type=int)
    u.add_argument("--not-after", type=int)
    s = sub.add_parser("sign")
    s.add_argument("input")
    s.add_argument("out")
    s.add_argument("--key", required=True)
    args = p.parse_args()
    data = unsigned(args) if args.cmd == "unsigned" else sign(args)
    with open(args.out, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
