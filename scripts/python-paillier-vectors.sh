#!/usr/bin/env bash
# Makes the python-paillier cross-check vectors under test/vectors/python-paillier/ (committed;
# test/paillier/python-paillier.test.ts and test/cli/paillier-cli.test.ts check blindml against
# them). Nothing from python-paillier is committed: only files its pheutil and library produced.
#
# Usage: scripts/python-paillier-vectors.sh PHE_PATH [OUT_DIR]
#   PHE_PATH  a python-paillier checkout (the directory that contains phe/), for example
#             git --git-dir=/work/.mirror/data61+python-paillier/repo archive HEAD | tar -x -C /tmp/phe
#   OUT_DIR   defaults to test/vectors/python-paillier
#
# Needs Python 3 with click (Debian: apt-get install -y python3-click; python3-gmpy2 is optional and
# makes it faster). Set PYTHON to choose the interpreter (default /usr/bin/python3 when present).
#
# What it writes:
#   private-2048.json, public-2048.json   a key pair made by `pheutil genpkey` and `pheutil extract`
#   private-512.json, public-512.json     a small pair for cases that need a small max_int
#   pheutil/*.json                        numbers made by `pheutil encrypt|addenc|add|multiply`
#   pheutil.json                          every pheutil run: arguments, output file, its stderr log
#                                         lines and what `pheutil decrypt` printed for the output
#   encodings.json                        phe.EncodedNumber.encode(...) for floats and ints, with
#                                         precision and max_exponent, and decode() of each
#   raw.json                              raw_encrypt(m, r_value=r) and raw_decrypt for fixed r
#   ops.json                              EncryptedNumber arithmetic with fixed r (deterministic
#                                         ciphertexts: encrypt, add, sub, mul, decrease_exponent_to)
set -euo pipefail

if [ $# -lt 1 ] || [ ! -d "$1/phe" ]; then
  echo "usage: $0 PHE_PATH [OUT_DIR]  (PHE_PATH: a python-paillier checkout containing phe/)" >&2
  exit 2
fi
PHE_PATH=$(cd "$1" && pwd)
OUT_DIR=${2:-"$(dirname "$0")/../test/vectors/python-paillier"}
mkdir -p "$OUT_DIR/pheutil"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
export PYTHONPATH="$PHE_PATH${PYTHONPATH:+:$PYTHONPATH}"
export PHE_PATH OUT_DIR PYTHON

"$PYTHON" - <<'PY'
import hashlib
import json
import os
import random
import subprocess
import sys

import phe
from phe import EncodedNumber, EncryptedNumber, PaillierPrivateKey, PaillierPublicKey
from phe.util import base64_to_int

OUT = os.environ['OUT_DIR']
PYTHON = os.environ['PYTHON']
PHEUTIL = [PYTHON, '-c', 'import sys; from phe.command_line import cli; cli(prog_name="pheutil")']


def pheutil(*args):
    """Runs pheutil in OUT and returns (stdout, stderr lines)."""
    done = subprocess.run(PHEUTIL + list(args), cwd=OUT, capture_output=True, text=True, check=True)
    return done.stdout, [line for line in done.stderr.splitlines() if line]


def write_json(name, obj):
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump(obj, f, indent=1)
        f.write('\n')


def load_keys(bits):
    with open(os.path.join(OUT, 'private-%d.json' % bits)) as f:
        jwk = json.load(f)
    pub = PaillierPublicKey(base64_to_int(jwk['pub']['n']))
    return pub, PaillierPrivateKey(pub, base64_to_int(jwk['p']), base64_to_int(jwk['q']))


def fixed_r(pub, label):
    """A deterministic r in Z*_n, so ciphertexts can be compared bit for bit."""
    r = int.from_bytes(hashlib.sha512(label.encode()).digest() * 8, 'big') % pub.n
    assert r > 1
    return r


# --- keys ------------------------------------------------------------------------------------
runs = {'genpkey': [], 'extract': [], 'encrypt': [], 'decrypt': [], 'addenc': [], 'add': [], 'multiply': []}
for bits in (2048, 512):
    _, log = pheutil('genpkey', '--keysize', str(bits), 'private-%d.json' % bits)
    runs['genpkey'].append({'args': ['--keysize', str(bits), 'private-%d.json' % bits], 'log': log})
    _, log = pheutil('extract', 'private-%d.json' % bits, 'public-%d.json' % bits)
    runs['extract'].append({'args': ['private-%d.json' % bits, 'public-%d.json' % bits], 'log': log})


def decrypt_run(priv_file, enc_file):
    out, log = pheutil('decrypt', priv_file, enc_file)
    runs['decrypt'].append({'args': [priv_file, enc_file], 'stdout': out, 'log': log})
    return out


def record(op, args, out_file, priv_file, extra):
    _, log = pheutil(op, '--output', out_file, *args)
    entry = {'args': list(args), 'file': out_file, 'log': log, 'decrypted': decrypt_run(priv_file, out_file)}
    entry.update(extra)
    runs[op].append(entry)


# --- pheutil encrypt / addenc / add / multiply -----------------------------------------------
PLAINTEXTS = {
    'zero': '0', 'one': '1', 'neg-one': '-1', 'forty-two': '42', 'neg-seven': '-7', 'pi': '3.14',
    'neg-2.5': '-2.5', 'tiny': '1e-05', 'frac': '123456789.125', 'googol': '1e100',
    'neg-small': '-1e-100', 'two-60': '1152921504606846976', 'huge': '1e300', 'denorm': '5e-324',
    'tenth': '0.1', 'below-32': '1e-30', 'neg-zero': '-0.0', 'max-double': '1.7976931348623157e308',
    'underscore': '1_000.5', 'padded': ' 7 ', 'exp-form': '2.5E-3',
}
for name, text in PLAINTEXTS.items():
    f = 'pheutil/enc-%s.json' % name
    record('encrypt', ['public-2048.json', '--', text], f, 'private-2048.json', {'name': name, 'plaintext': text})

for a, b in [('pi', 'neg-seven'), ('tiny', 'huge'), ('below-32', 'forty-two'), ('frac', 'frac'),
             ('neg-small', 'googol'), ('zero', 'denorm'), ('one', 'neg-one')]:
    f = 'pheutil/addenc-%s-%s.json' % (a, b)
    record('addenc', ['public-2048.json', 'pheutil/enc-%s.json' % a, 'pheutil/enc-%s.json' % b], f,
           'private-2048.json', {})

for enc, text in [('pi', '2'), ('neg-seven', '-0.5'), ('below-32', '1e-30'), ('tiny', '1e10'),
                  ('one', '0.1'), ('huge', '-1e300'), ('zero', '-3.25')]:
    f = 'pheutil/add-%s-%s.json' % (enc, text)
    record('add', ['public-2048.json', 'pheutil/enc-%s.json' % enc, '--', text], f, 'private-2048.json', {})

for enc, text in [('pi', '2'), ('pi', '-1.5'), ('one', '1e-05'), ('forty-two', '0'), ('pi', '1e300'),
                  ('tiny', '1e-300'), ('tiny', '1e-310'), ('one', '5e-324'), ('neg-2.5', '-4'),
                  ('frac', '0.001')]:
    f = 'pheutil/multiply-%s-%s.json' % (enc, text)
    record('multiply', ['public-2048.json', 'pheutil/enc-%s.json' % enc, '--', text], f,
           'private-2048.json', {})

# A 512-bit round trip, for the --insecure paths.
record('encrypt', ['public-512.json', '--', '-12.5'], 'pheutil/enc-512-neg.json', 'private-512.json',
       {'name': '512-neg', 'plaintext': '-12.5'})

write_json('pheutil.json', {
    'generator': 'python-paillier pheutil (phe %s), Python %s' % (phe.__version__, sys.version.split()[0]),
    'runs': runs,
})

# --- EncodedNumber.encode ----------------------------------------------------------------------
keys = {bits: load_keys(bits) for bits in (2048, 512)}
rng = random.Random(20240601)
floats = [0.0, -0.0, 1.0, -1.0, 3.14, -3.14, 0.1, 0.5, 1e-5, 1e-30, 1e100, -1e100, 1e300, -1e300,
          1.7976931348623157e308, 5e-324, 1.5e-323, 2.2250738585072014e-308, 2.225073858507201e-308,
          123456789.125, 2.0 ** 60, 2.0 ** 53 + 2, 1 / 3, 2 / 3, 1e16, 1.5e16, 9007199254740993.0]
floats += [rng.uniform(-1e6, 1e6) for _ in range(10)]
floats += [rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300) for _ in range(10)]
ints = [0, 1, -1, 7, -7, 2 ** 53 + 1, 2 ** 64, -(2 ** 100), 10 ** 300]


def enc_case(bits, kind, value, precision=None, max_exponent=None):
    pub, _ = keys[bits]
    case = {'bits': bits, 'type': kind, 'value': repr(value) if kind == 'float' else str(value)}
    if precision is not None:
        case['precision'] = repr(precision)
    if max_exponent is not None:
        case['max_exponent'] = max_exponent
    try:
        e = EncodedNumber.encode(pub, value, precision=precision, max_exponent=max_exponent)
    except ValueError as err:
        case['error'] = type(err).__name__
        return case
    case['encoding'] = str(e.encoding)
    case['exponent'] = e.exponent
    try:
        d = e.decode()
        case['decoded'] = repr(d)
        case['decoded_type'] = type(d).__name__
    except OverflowError:
        case['decoded_error'] = 'OverflowError'
    return case


cases = []
for bits in (2048, 512):
    pub, _ = keys[bits]
    for x in floats:
        cases.append(enc_case(bits, 'float', x))
    for x in ints + [pub.max_int, -pub.max_int, pub.max_int + 1, -pub.max_int - 1]:
        cases.append(enc_case(bits, 'int', x))
    for x, p in [(3.14, 1e-3), (2.0, 1 / 16 ** 3), (1.0, 0.5), (123.456, 1e-10), (-0.3, 1e-20),
                 (1e300, 1e-5), (0.1, 16.0), (1e-7, 1e-3), (2.5, 1.0), (7.0, 1 / 16)]:
        cases.append(enc_case(bits, 'float', x, precision=p))
    for x, p in [(5, 1e-2), (-5, 1 / 256), (10 ** 20, 1e-30)]:
        cases.append(enc_case(bits, 'int', x, precision=p))
    for x, m in [(3.14, -40), (1e100, 0), (1e-5, -2), (0.5, 5), (-2.75, -14)]:
        cases.append(enc_case(bits, 'float', x, max_exponent=m))
    for x, m in [(5, -3), (-(2 ** 70), -10), (3, 2)]:
        cases.append(enc_case(bits, 'int', x, max_exponent=m))
    for x, p, m in [(3.14, 1e-3, -5), (1e-9, 1e-3, -1)]:
        cases.append(enc_case(bits, 'float', x, precision=p, max_exponent=m))
write_json('encodings.json', {'cases': cases})

# --- raw_encrypt / raw_decrypt with fixed r ----------------------------------------------------
raw = []
for bits in (2048, 512):
    pub, priv = keys[bits]
    for i, m in enumerate([0, 1, 42, 2 ** 64 + 3, pub.max_int, pub.n - pub.max_int, pub.n - 1,
                           rng.randrange(pub.n), rng.randrange(pub.n)]):
        r = fixed_r(pub, 'raw-%d-%d' % (bits, i))
        c = pub.raw_encrypt(m, r_value=r)
        assert priv.raw_decrypt(c) == m
        raw.append({'bits': bits, 'plaintext': str(m), 'r': str(r), 'ciphertext': str(c),
                    'decrypted': str(priv.raw_decrypt(c))})
write_json('raw.json', {'cases': raw})

# --- EncryptedNumber arithmetic with fixed r -----------------------------------------------------
def ct(x):
    return {'ciphertext': str(x.ciphertext(be_secure=False)), 'exponent': x.exponent}


def operand(kind, value):
    return {'type': kind, 'value': repr(value) if kind == 'float' else str(value)}


ops = []
pub, priv = keys[2048]
for i, (a, b_kind, b) in enumerate([(3.14, 'float', 2.0), (-7.25, 'float', 1e-5), (1e-30, 'float', 42.0),
                                    (123456.789, 'int', 3), (0.1, 'int', -2), (1e100, 'float', -1e-100),
                                    (2.5, 'float', 0.0), (-1.0, 'int', 0)]):
    r1 = fixed_r(pub, 'op-a-%d' % i)
    r2 = fixed_r(pub, 'op-b-%d' % i)
    ea = pub.encrypt(a, r_value=r1)
    eb = pub.encrypt(b, r_value=r2)
    case = {'a': repr(a), 'r_a': str(r1), 'b': operand(b_kind, b), 'r_b': str(r2),
            'enc_a': ct(ea), 'enc_b': ct(eb)}
    case['add_plain'] = ct(ea + b)
    case['sub_plain'] = ct(ea - b)
    case['mul_plain'] = ct(ea * b)
    case['add_enc'] = ct(ea + eb)
    case['sub_enc'] = ct(ea - eb)
    case['lowered'] = ct(ea.decrease_exponent_to(ea.exponent - 3))
    for k in ('add_plain', 'sub_plain', 'mul_plain', 'add_enc', 'sub_enc'):
        try:
            case[k]['decrypted'] = repr(priv.decrypt(EncryptedNumber(pub, int(case[k]['ciphertext']), case[k]['exponent'])))
        except OverflowError:
            case[k]['decrypted_error'] = 'OverflowError'
    ops.append(case)
write_json('ops.json', {'bits': 2048, 'cases': ops})
print('python-paillier vectors written to %s' % OUT, file=sys.stderr)
PY
