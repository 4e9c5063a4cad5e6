import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CkksContext, CkksKeyring, CkksServiceKeys, CkksCiphertext, chooseParameters, add, mulPlain, rotate, multiply, rescaleInPlace,
  checkParameters, MAX_COEFF_BITS_128, galoisElement,
} from '../../src/schemes/ckks/index.js';
import { FormatError, InvalidCiphertextError, InvalidKeyError, KeyMismatchError } from '../../src/errors.js';

const params = chooseParameters({ depth: 1, scaleBits: 30, headroomBits: 20 });

describe('CKKS parameters', () => {
  test('chosen parameters fit the 128-bit bound of their ring and grow with depth', () => {
    for (let depth = 0; depth <= 6; depth++) {
      const p = chooseParameters({ depth, scaleBits: 30, headroomBits: 20 });
      const total = p.coeffModulusBits.reduce((a, b) => a + b, 0);
      assert.ok(total <= MAX_COEFF_BITS_128[p.polyModulusDegree]!, `depth ${depth}`);
      assert.equal(p.coeffModulusBits.length, depth + 2);
    }
    assert.equal(chooseParameters({ depth: 0, scaleBits: 30, headroomBits: 20 }).polyModulusDegree, 4096);
    assert.equal(chooseParameters({ depth: 3, scaleBits: 30, headroomBits: 20 }).polyModulusDegree, 8192);
  });
  test('Galois elements are 3^step mod 2N (left rotations, negative steps wrap)', () => {
    const slow = (step: number, n: number) => {
      const slots = n / 2;
      let g = 1n;
      for (let i = 0; i < ((step % slots) + slots) % slots; i++) g = (g * 3n) % BigInt(2 * n);
      return Number(g);
    };
    for (const n of [4096, 8192, 32768]) for (const step of [0, 1, 2, 5, 255, 256, -1, -3, n / 4, n / 2 - 1]) assert.equal(galoisElement(step, n), slow(step, n), `N=${n} step=${step}`);
    assert.equal(galoisElement(1, 8192), 3);
  });

  test('a modulus beyond the bound is refused unless insecure', () => {
    const weak = { polyModulusDegree: 4096, coeffModulusBits: [60, 60], scaleBits: 30 };
    assert.throws(() => checkParameters(weak), InvalidKeyError);
    checkParameters(weak, true);
    assert.throws(() => checkParameters({ polyModulusDegree: 3000, coeffModulusBits: [40, 40], scaleBits: 30 }), InvalidKeyError);
  });
});

describe('CKKS keys, ciphertexts and operations', async () => {
  const ctx = await CkksContext.create(params);
  const ring = CkksKeyring.generate(ctx);
  const other = CkksKeyring.generate(ctx);
  const service = CkksServiceKeys.load(ctx, ring.exportPublic({ relin: true, galoisSteps: [1, -3] }));
  after(() => {
    service.dispose();
    ring.dispose();
    other.dispose();
    ctx.dispose();
  });
  const xs = Float64Array.from({ length: ctx.slots }, (_, i) => Math.sin(i) * 10);

  test('encrypt/decrypt round trip within CKKS precision', () => {
    const ct = ring.encrypt(xs);
    const back = ring.decrypt(ct);
    ct.free();
    for (let i = 0; i < xs.length; i++) assert.ok(Math.abs(back[i]! - xs[i]!) < 1e-4);
  });

  test('ciphertext save/load round trip, and the service encrypts under the client key', () => {
    const ct = service.encrypt(xs);
    const bytes = ct.save();
    const back = CkksCiphertext.load(ctx, ring.keyId, bytes, { levelPrimes: ctx.topLevel, scale: ctx.scale });
    const dec = ring.decrypt(back);
    for (let i = 0; i < 50; i++) assert.ok(Math.abs(dec[i]! - xs[i]!) < 1e-4);
    ct.free();
    back.free();
  });

  test('add, mulPlain + rescale, rotate, multiply', () => {
    const a = ring.encrypt(xs);
    const sum = add(a, a);
    const w = Float64Array.from({ length: ctx.slots }, (_, i) => (i % 7) - 3);
    const plain = ctx.encode(w);
    const prod = mulPlain(a, plain);
    rescaleInPlace(prod);
    const left = rotate(a, 1, service);
    const right = rotate(a, -3, service);
    const sq = multiply(a, a, service);
    rescaleInPlace(sq);
    const [s, p, l, r, q] = [sum, prod, left, right, sq].map((c) => ring.decrypt(c));
    // Rotations add key-switching noise (about q/P of the special prime), so they get 1e-2 on
    // values up to 10; a wrong rotation would be off by units.
    for (let i = 0; i < 100; i++) {
      assert.ok(Math.abs(s![i]! - 2 * xs[i]!) < 1e-3);
      assert.ok(Math.abs(p![i]! - w[i]! * xs[i]!) < 1e-3);
      assert.ok(Math.abs(l![i]! - xs[(i + 1) % ctx.slots]!) < 1e-2, `left ${i}: ${l![i]} vs ${xs[(i + 1) % ctx.slots]}`);
      assert.ok(Math.abs(r![i]! - xs[(i - 3 + ctx.slots) % ctx.slots]!) < 1e-2, `right ${i}`);
      assert.ok(Math.abs(q![i]! - xs[i]! * xs[i]!) < 1e-2);
    }
    assert.throws(() => rotate(a, 2, service), InvalidCiphertextError);
    for (const c of [a, sum, prod, left, right, sq]) c.free();
    plain.delete();
  });

  test('mixing keys or parameters is refused', async () => {
    const mine = ring.encrypt(xs);
    const theirs = other.encrypt(xs);
    assert.throws(() => add(mine, theirs), KeyMismatchError);
    assert.throws(() => ring.decrypt(theirs), KeyMismatchError);
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, theirs.save()), KeyMismatchError);
    const ctx2 = await CkksContext.create(chooseParameters({ depth: 2, scaleBits: 30, headroomBits: 20 }));
    try {
      assert.throws(() => CkksCiphertext.load(ctx2, ring.keyId, mine.save()), KeyMismatchError);
      assert.throws(() => CkksServiceKeys.load(ctx2, ring.exportPublic()), KeyMismatchError);
    } finally {
      ctx2.dispose();
    }
    const mixed = { publicKey: ring.exportPublic().publicKey, relinKeys: other.exportPublic({ relin: true }).relinKeys! };
    assert.throws(() => CkksServiceKeys.load(ctx, mixed), KeyMismatchError);
    mine.free();
    theirs.free();
  });

  test('truncated, tampered and foreign bytes are refused with FormatError', () => {
    const ct = ring.encrypt(xs);
    const bytes = ct.save();
    ct.free();
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, bytes.subarray(0, bytes.length - 100)), FormatError);
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, bytes.subarray(0, 10)), FormatError);
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, new Uint8Array(1000)), FormatError);
    // The top byte of the last coefficient set to 0xff: above every prime, so SEAL's validity check fails.
    const bad = bytes.slice();
    bad[bad.length - 1] = 0xff;
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, bad), FormatError);
    const padded = new Uint8Array(bytes.length + 16);
    padded.set(bytes);
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, padded), FormatError);
    const header = bytes.slice();
    header[4] = 9;
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, header), FormatError);
    const pk = ring.exportPublic({ galoisSteps: [1] });
    assert.throws(() => CkksServiceKeys.load(ctx, { publicKey: pk.publicKey.subarray(0, 500) }), FormatError);
    assert.throws(() => CkksServiceKeys.load(ctx, { publicKey: pk.galoisKeys! }), FormatError);
  });

  test('failed loads free what they allocated (WebAssembly memory stays flat)', () => {
    const ct = ring.encrypt(xs);
    const bytes = ct.save();
    const prod = ring.encrypt(xs);
    const wrongScale = mulPlainBytes(prod);
    ct.free();
    prod.free();
    const bad = bytes.slice();
    bad[bad.length - 1] = 0xff;
    const attempt = () => {
      assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, bad), FormatError);
      assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, wrongScale, { scale: ctx.scale }), InvalidCiphertextError);
      assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, bytes.subarray(0, bytes.length - 8)), FormatError);
    };
    for (let i = 0; i < 20; i++) attempt();
    const before = process.memoryUsage().external;
    for (let i = 0; i < 200; i++) attempt();
    const grown = process.memoryUsage().external - before;
    // 400 leaked ciphertexts would be ~100 MB; allow a few MB of allocator slack.
    assert.ok(grown < 8 * 2 ** 20, `WebAssembly memory grew by ${grown} bytes`);
  });

  function mulPlainBytes(ct: CkksCiphertext): Uint8Array {
    const plain = ctx.encode(xs);
    const prod = mulPlain(ct, plain);
    plain.delete();
    const b = prod.save();
    prod.free();
    return b;
  }

  test('a ciphertext at the wrong level or scale is refused', () => {
    const ct = ring.encrypt(xs);
    const plain = ctx.encode(xs);
    const prod = mulPlain(ct, plain);
    plain.delete();
    const bytes = prod.save();
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, bytes, { scale: ctx.scale }), InvalidCiphertextError);
    rescaleInPlace(prod);
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, prod.save(), { levelPrimes: ctx.topLevel }), InvalidCiphertextError);
    ct.free();
    prod.free();
  });
});
