#!/usr/bin/env python3
"""Independent check of xorida_kat.json, sharing no code with VaultDB.

AES-256-CTR comes from the `cryptography` package (OpenSSL), field arithmetic is schoolbook
multiplication reduced by x^8+x^4+x^3+x+1, and the random stream layout is the one in
docs/FORMAT.md section 2 ((K-1)*L bytes cut into R_1 = bytes[0..L], R_2 = bytes[L..2L], ...).

    pip install cryptography && python3 crates/vaultdb-core/tests/data/verify_kat.py
"""
import hashlib
import json
import pathlib
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def mul(a, b):
    p = 0
    for i in range(8):
        if b >> i & 1:
            p ^= a << i
    for i in range(15, 7, -1):
        if p >> i & 1:
            p ^= 0x11B << (i - 8)
    return p


MUL = [[mul(a, b) for b in range(256)] for a in range(256)]


def shares_for(v):
    k, n = v["k"], v["n"]
    enc = Cipher(algorithms.AES(bytes.fromhex(v["seed"])), modes.CTR(b"\0" * 16)).encryptor()
    if "secret" in v:
        secret = bytes.fromhex(v["secret"])
    else:
        secret = bytes((31 * i + 7) % 256 for i in range(v["pattern_len"]))
    coeffs = [enc.update(b"\0" * len(secret)) for _ in range(k - 1)]
    out = []
    for x in range(1, n + 1):
        y = bytearray(secret)
        xp = x
        for r in coeffs:
            row = MUL[xp]
            for p, b in enumerate(r):
                y[p] ^= row[b]
            xp = mul(xp, x)
        out.append(hashlib.sha256(y).hexdigest() if "pattern_len" in v else y.hex())
    return out


def main():
    path = pathlib.Path(__file__).with_name("xorida_kat.json")
    bad = 0
    for v in json.loads(path.read_text())["vectors"]:
        ok = shares_for(v) == v["shares"]
        bad += not ok
        print("ok  " if ok else "FAIL", v["name"])
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
