#!/usr/bin/env python3
"""Pinned textbook-Paillier vectors computed with Python's own integers (an implementation
independent of blindml): c = (1+n)^m * r^n mod n^2 with g = n + 1, for a fixed 512-bit key.
Run from the repository root: python3 test/vectors/make-pinned.py"""
import json

def is_prime(n):
    if n < 2:
        return False
    for sp in [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]:
        if n % sp == 0:
            return n == sp
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53]:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True

def next_prime(x):
    x |= 1
    while not is_prime(x):
        x += 2
    return x

p = next_prime((1 << 255) | 0x6a09e667f3bcc908b2fb1366ea957d3e3adec17512775099da2f590b0667322a)
q = next_prime((1 << 255) | 0xbb67ae8584caa73b3c6ef372fe94f82ba54ff53a5f1d36f1510e527fade682d1)
n = p * q
n2 = n * n
cases = []
for m, r in [(0, 3), (1, 5), (42, 0x1234567), (n - 1, 0xdeadbeef), (12345678901234567890, n // 7), (n // 3 - 2, 0xabcdef)]:
    c = pow(n + 1, m, n2) * pow(r, n, n2) % n2
    cases.append({"m": str(m), "r": str(r), "rn": str(pow(r, n, n2)), "c": str(c)})
out = {
    "p": str(p), "q": str(q), "n": str(n), "bits": n.bit_length(), "encryptions": cases,
    "note": "textbook Paillier with g = n + 1, computed with Python integers by test/vectors/make-pinned.py",
}
with open("test/vectors/paillier-512-pinned.json", "w") as f:
    json.dump(out, f, indent=1)
