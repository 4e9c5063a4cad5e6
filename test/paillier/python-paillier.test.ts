/**
 * Cross-checks against files made by python-paillier (its library and its pheutil command), made
 * by scripts/python-paillier-vectors.sh: encodings bit for bit, raw encryption with the same r,
 * EncryptedNumber arithmetic ciphertext for ciphertext, decryption of pheutil's files, and the
 * CLI printing and logging what pheutil printed and logged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OverflowError } from '../../src/errors.js';
import { EncodedNumber, type EncodeOptions } from '../../src/encoding/encoded-number.js';
import { EncryptedNumber, decryptEncoded } from '../../src/encoding/encrypted-number.js';
import { pythonFloatRepr } from '../../src/encoding/float.js';
import { modPow } from '../../src/math/modular.js';
import { PaillierCiphertext } from '../../src/schemes/paillier/ciphertext.js';
import type { PaillierPrivateKey, PaillierPublicKey } from '../../src/schemes/paillier/keys.js';
import { privateKeyFromJwk, publicKeyFromJwk, privateKeyToJwk } from '../../src/schemes/paillier/jwk.js';
import { runCli } from '../helpers/cli.js';

const DIR = new URL('../vectors/python-paillier/', import.meta.url);
const vectorPath = (name: string): string => new URL(name, DIR).pathname;
const readJson = (name: string): unknown => JSON.parse(readFileSync(vectorPath(name), 'utf8')) as unknown;

const privateKeys = new Map<number, PaillierPrivateKey>();
function keys(bits: number): { pub: PaillierPublicKey; priv: PaillierPrivateKey } {
  let priv = privateKeys.get(bits);
  if (priv === undefined) {
    priv = privateKeyFromJwk(readJson(`private-${bits}.json`), { insecure: true });
    privateKeys.set(bits, priv);
  }
  return { pub: priv.publicKey, priv };
}

interface Operand {
  type: 'float' | 'int';
  value: string;
}
const scalar = (o: Operand): number | bigint => (o.type === 'float' ? Number(o.value) : BigInt(o.value));

/** What Python prints for a decoded EncodedNumber: an int for exponents ≥ 0, else a float repr. */
function pythonDecoded(encoded: EncodedNumber): string {
  return encoded.exponent >= 0 ? encoded.decodeBigInt().toString() : pythonFloatRepr(encoded.decode());
}

test('pheutil key files load, and re-serialize to the same p, q and n', () => {
  for (const bits of [2048, 512]) {
    const file = readJson(`private-${bits}.json`) as { p: string; q: string; pub: { n: string } };
    const { pub, priv } = keys(bits);
    assert.equal(pub.bits, bits);
    const jwk = privateKeyToJwk(priv);
    assert.deepEqual([jwk.p, jwk.q, jwk.pub.n], [file.p, file.q, file.pub.n]);
    assert.equal(publicKeyFromJwk(readJson(`public-${bits}.json`), { insecure: true }).n, pub.n);
  }
});

interface EncodingCase extends Operand {
  bits: number;
  precision?: string;
  max_exponent?: number;
  error?: string;
  encoding?: string;
  exponent?: number;
  decoded?: string;
  decoded_error?: string;
}

test('EncodedNumber.encode equals python-paillier bit for bit (floats, ints, precision, max_exponent)', () => {
  const { cases } = readJson('encodings.json') as { cases: EncodingCase[] };
  assert.ok(cases.length > 100);
  for (const c of cases) {
    const { pub } = keys(c.bits);
    const options: EncodeOptions = {};
    if (c.precision !== undefined) options.precision = Number(c.precision);
    if (c.max_exponent !== undefined) options.maxExponent = c.max_exponent;
    const label = JSON.stringify(c).slice(0, 160);
    if (c.error !== undefined) {
      assert.throws(() => EncodedNumber.encode(pub, scalar(c), options), OverflowError, label);
      continue;
    }
    const encoded = EncodedNumber.encode(pub, scalar(c), options);
    assert.equal(encoded.encoding.toString(), c.encoding, label);
    assert.equal(encoded.exponent, c.exponent, label);
    if (c.decoded_error !== undefined) assert.throws(() => encoded.decode(), OverflowError, label);
    else assert.equal(pythonDecoded(encoded), c.decoded, label);
  }
});

test('raw encryption with the same r gives the same ciphertext; raw decryption the same plaintext', () => {
  const { cases } = readJson('raw.json') as {
    cases: { bits: number; plaintext: string; r: string; ciphertext: string; decrypted: string }[];
  };
  for (const c of cases) {
    const { pub, priv } = keys(c.bits);
    const noise = modPow(BigInt(c.r), pub.n, pub.nSquared);
    assert.equal(pub.encryptRaw(BigInt(c.plaintext), noise).toString(), c.ciphertext);
    assert.equal(priv.decryptRaw(BigInt(c.ciphertext)).toString(), c.decrypted);
  }
});

interface Ct {
  ciphertext: string;
  exponent: number;
  decrypted?: string;
  decrypted_error?: string;
}
interface OpCase {
  a: string;
  r_a: string;
  b: Operand;
  r_b: string;
  enc_a: Ct;
  enc_b: Ct;
  add_plain: Ct;
  sub_plain: Ct;
  mul_plain: Ct;
  add_enc: Ct;
  sub_enc: Ct;
  lowered: Ct;
}

test('EncryptedNumber arithmetic gives python-paillier’s ciphertexts and exponents exactly', () => {
  const { cases } = readJson('ops.json') as { cases: OpCase[] };
  const { pub, priv } = keys(2048);
  const encryptWithR = (x: number | bigint, r: string): EncryptedNumber => {
    const encoded = EncodedNumber.encode(pub, x);
    const value = pub.encryptRaw(encoded.encoding, modPow(BigInt(r), pub.n, pub.nSquared));
    return new EncryptedNumber(new PaillierCiphertext(pub, value), encoded.exponent);
  };
  const same = (got: EncryptedNumber, want: Ct, what: string): void => {
    assert.equal(got.ciphertext.value.toString(), want.ciphertext, what);
    assert.equal(got.exponent, want.exponent, what);
    if (want.decrypted !== undefined) assert.equal(pythonDecoded(decryptEncoded(priv, got)), want.decrypted, what);
    if (want.decrypted_error !== undefined) assert.throws(() => pythonDecoded(decryptEncoded(priv, got)), OverflowError);
  };
  for (const c of cases) {
    const b = scalar(c.b);
    const ea = encryptWithR(Number(c.a), c.r_a);
    const eb = encryptWithR(b, c.r_b);
    same(ea, c.enc_a, `encrypt ${c.a}`);
    same(eb, c.enc_b, `encrypt ${c.b.value}`);
    same(ea.add(b), c.add_plain, `${c.a} + ${c.b.value}`);
    same(ea.sub(b), c.sub_plain, `${c.a} - ${c.b.value}`);
    same(ea.mul(b), c.mul_plain, `${c.a} * ${c.b.value}`);
    same(ea.add(eb), c.add_enc, `${c.a} + enc ${c.b.value}`);
    same(ea.sub(eb), c.sub_enc, `${c.a} - enc ${c.b.value}`);
    same(ea.decreaseExponentTo(ea.exponent - 3), c.lowered, `lower ${c.a}`);
  }
});

interface PheutilRun {
  args: string[];
  file?: string;
  log: string[];
  decrypted?: string;
  stdout?: string;
}
const pheutil = (readJson('pheutil.json') as { runs: Record<string, PheutilRun[]> }).runs;
const resultRuns = (): [string, PheutilRun][] =>
  ['encrypt', 'addenc', 'add', 'multiply'].flatMap((op) => (pheutil[op] ?? []).map((r): [string, PheutilRun] => [op, r]));

test('the library decrypts every number pheutil made to what pheutil printed', () => {
  for (const [op, run] of resultRuns()) {
    const bits = run.args[0] === 'public-512.json' ? 512 : 2048;
    const { pub, priv } = keys(bits);
    const enc = EncryptedNumber.fromJSON(pub, readFileSync(vectorPath(run.file!), 'utf8'));
    assert.equal(`${pythonDecoded(decryptEncoded(priv, enc))}\n`, run.decrypted, `${op} ${run.args.join(' ')}`);
  }
});

test('blindml paillier decrypt prints and logs what pheutil decrypt printed and logged', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'blindml-phe-'));
  try {
    for (const run of pheutil['decrypt'] ?? []) {
      const out = join(tmp, 'out.txt');
      const [priv, file] = run.args as [string, string];
      const r = await runCli(['paillier', 'decrypt', '--insecure', vectorPath(priv), vectorPath(file), '--output', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readFileSync(out, 'utf8'), run.stdout, file);
      assert.deepEqual(r.lines, run.log, file);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('blindml paillier encrypt|addenc|add|multiply on pheutil’s inputs: same exponent, same log, same decryption', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'blindml-phe-'));
  try {
    for (const [op, run] of resultRuns()) {
      const out = join(tmp, 'out.json');
      // Key and number files are paths relative to the vectors directory; "--" and numbers stay.
      const args = run.args.map((a) => (a.endsWith('.json') ? vectorPath(a) : a));
      const r = await runCli(['paillier', op, '--insecure', '--output', out, ...args]);
      const label = `${op} ${run.args.join(' ')}`;
      assert.equal(r.code, 0, `${label}: ${r.stderr}`);
      assert.deepEqual(r.lines, run.log, label);
      const theirs = readJson(run.file!) as { e: number };
      const ours = JSON.parse(readFileSync(out, 'utf8')) as { e: number };
      assert.equal(ours.e, theirs.e, label);
      const priv = vectorPath(run.args[0]!.replace('public', 'private'));
      const d = await runCli(['paillier', 'decrypt', '--insecure', priv, out, '--output', join(tmp, 'dec.txt')]);
      assert.equal(d.code, 0, d.stderr);
      assert.equal(readFileSync(join(tmp, 'dec.txt'), 'utf8'), run.decrypted, label);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
