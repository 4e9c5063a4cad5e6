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

# A three-prime key (n = p·q·s, about 513 bits): the same textbook formula, and the plaintexts
# decrypted here with lambda = lcm(p-1, q-1, s-1), independently of blindml's per-prime CRT.
from math import gcd
p3 = [next_prime((1 << 170) | x) for x in (0x510e527fade682d19b05688c2b3e6c1f, 0x1f83d9abfb41bd6b5be0cd19137e2179, 0x428a2f98d728ae227137449123ef65cd)]
n3 = p3[0] * p3[1] * p3[2]
n32 = n3 * n3
lam = 1
for x in p3:
    lam = lam * (x - 1) // gcd(lam, x - 1)
assert gcd(n3, lam) == 1
mu = pow((pow(n3 + 1, lam, n32) - 1) // n3, -1, n3)
cases3 = []
for m, r in [(0, 3), (1, 5), (42, 0x1234567), (n3 - 1, 0xdeadbeef), (n3 // 5, n3 // 7)]:
    c = pow(n3 + 1, m, n32) * pow(r, n3, n32) % n32
    assert (pow(c, lam, n32) - 1) // n3 * mu % n3 == m
    cases3.append({"m": str(m), "r": str(r), "c": str(c)})
with open("test/vectors/paillier-3prime-pinned.json", "w") as f:
    json.dump({"primes": [str(x) for x in p3], "n": str(n3), "bits": n3.bit_length(), "encryptions": cases3,
               "note": "three-prime textbook Paillier (g = n + 1), computed and decrypted with lambda by test/vectors/make-pinned.py"}, f, indent=1)
