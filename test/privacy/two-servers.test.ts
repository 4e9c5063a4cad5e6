/**
 * The Secure MLP from the crypto server's side (docs/security.md, "Secure MLP"; multi-key
 * training is in multikey.test.ts): every ciphertext S1 sends S2 carries fresh randomness —
 * S2 made the randomness of the ciphertexts it returned earlier, so a deterministic function of
 * them would let it test guesses of S1's masks —, what S2 decrypts is masked, blinded and shuffled
 * as docs/security.md says, and the Secure MLP's starting weights are not something S1 can
 * recompute. Small insecure keys; distribution tests fail a correct implementation with
 * probability at most 1e-6 each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '../../src/schemes/paillier/index.js';
import {
  ComputeServer, CryptoServer, InProcessTransport, LocalTwoServerCompute, MeteredTransport, decodeTwoServerMessage, type EncMatrix, type TwoServerTransport,
} from '../../src/protocol/two-server/index.js';
import { DEFAULT_SMLP } from '../../src/train/smlp/config.js';
import { W1_VARIANCE, W2_MAGNITUDE, initialWeights } from '../../src/train/smlp/model.js';
import { SeededRandom } from '../../src/train/fe/prng.js';
import { toFixed } from '../../src/train/smlp/config.js';
import { smallKeys } from '../helpers/keys.js';
import { randomnessOf } from './paillier-harness.js';
import { FALSE_ALARM, chiSquareUniform } from './stats.js';

test('Secure MLP: every ciphertext S1 sends S2 is re-randomized (never a deterministic packing of known ciphertexts)', async () => {
  const { publicKey, privateKey } = smallKeys();
  const packed: bigint[] = [];
  const local = new LocalTwoServerCompute();
  // S1's bulk arithmetic, recorded: what S1 would send if it added masks without fresh noise.
  const compute = Object.assign(Object.create(local) as LocalTwoServerCompute, {
    async pack(values: readonly bigint[], slotBits: number, perCiphertext: number, nSquared: bigint) {
      const out = await local.pack(values, slotBits, perCiphertext, nSquared);
      packed.push(...out);
      return out;
    },
  });
  const sent: bigint[] = [];
  const s2 = new CryptoServer(privateKey, { insecure: true });
  const spy = (inner: TwoServerTransport): TwoServerTransport => ({
    async call(request: Uint8Array) {
      const msg = decodeTwoServerMessage(request);
      if (msg.type === 'request') sent.push(...msg.ciphertexts);
      return inner.call(request);
    },
  });
  const s1 = new ComputeServer(publicKey, new MeteredTransport(spy(new InProcessTransport(s2)), { timeoutMs: 5000 }), compute);
  const enc = (vs: readonly bigint[]): bigint[] => vs.map((v) => publicKey.encryptRaw(v));
  const m = (rows: number, cols: number, vs: bigint[], bits: number): EncMatrix => ({ rows, cols, bits, cts: enc(vs) });
  // A value S2 returned (a product) goes back to it masked: the case fresh noise must cover.
  const product = await s1.mul({ cts: enc([3n, -4n, 5n]), bits: 4 }, { cts: enc([2n, 2n, -7n]), bits: 4 });
  await s1.trunc(product, 1);
  await s1.matMul({ kind: 'enc', m: m(2, 2, [1n, 2n, 3n, 4n], 4) }, { kind: 'enc', m: m(2, 1, [1n, -1n], 2) });
  await s1.relu({ cts: product.cts, bits: 8 }, 0);
  await s1.switchKey(product, generateKeyPair({ bits: 512, insecure: true }).publicKey);
  const deterministic = new Set(packed.map((c) => randomnessOf(privateKey, c)));
  assert.ok(sent.length >= 5 && deterministic.size >= 4, `${sent.length} sent, ${deterministic.size} packed`);
  for (const c of sent) assert.ok(!deterministic.has(randomnessOf(privateKey, c)), 'a masked ciphertext reached S2 with the randomness of its packing');
});

test('Secure MLP: the initial weights are the user’s secret — not derivable from the public order seed, fresh per run', () => {
  const c = { ...DEFAULT_SMLP, hidden: 4 };
  // What S1 could compute from what it knows (the order seed): the weights a seeded generator gives.
  const fromPublicSeed = (seed: number): bigint[] => {
    const rng = new SeededRandom(seed);
    return Array.from({ length: c.hidden * 30 }, () => toFixed(rng.normal() * Math.sqrt(2 / 30), c.fracBits));
  };
  const a = initialWeights(c, 30);
  const b = initialWeights(c, 30);
  const nonBias = (w: bigint[]): bigint[] => w.filter((_, i) => i % 31 !== 30);
  assert.notDeepEqual(a.w1, b.w1, 'two runs draw different weights');
  for (const guess of [fromPublicSeed(c.seed), fromPublicSeed(0), fromPublicSeed(1)]) {
    const same = nonBias(a.w1).filter((w, i) => w === guess[i]).length;
    // Two independent draws at 2^12 resolution agree on a weight with probability about 1/1400.
    assert.ok(same <= 6, `${same} of 120 weights equal S1's recomputation from the order seed`);
  }
  // A secret weight seed reproduces a run, and the order seed does not enter it.
  const secret = { ...c, weightSeed: 987_654_321 };
  assert.deepEqual(initialWeights(secret, 30), initialWeights({ ...secret, seed: c.seed + 1 }, 30));
  // First-layer weights look like N(0, W1_VARIANCE/30): mean near 0, variance near 0.5/30 (at scale 2^12).
  const real = nonBias(a.w1).map((w) => Number(w) / 4096);
  const mean = real.reduce((s, v) => s + v, 0) / real.length;
  const variance = real.reduce((s, v) => s + (v - mean) ** 2, 0) / (real.length - 1);
  const sigma2 = W1_VARIANCE / 30;
  // 120 draws: |mean| ≥ 5.3·σ/√120, or a sample variance outside [0.4, 2] times the true one
  // (χ² with 119 degrees of freedom, Wilson–Hilferty: ±6σ), each has probability below 1e-6.
  assert.ok(Math.abs(mean) < (5.3 * Math.sqrt(sigma2)) / Math.sqrt(120), `mean ${mean}`);
  assert.ok(variance > sigma2 * 0.4 && variance < sigma2 * 2, `variance ${variance}`);
  // Output weights: secret magnitudes in [0.5, 1], one of each sign (which one is random).
  const outputs = Array.from({ length: 40 }, () => initialWeights({ ...c, hidden: 2 }, 30).w2.slice(0, 2).map((w) => Number(w) / 4096));
  for (const w of outputs) {
    assert.ok(w.every((v) => Math.abs(v) >= W2_MAGNITUDE[0] - 1 / 4096 && Math.abs(v) <= W2_MAGNITUDE[1] + 1 / 4096), `w2 ${w}`);
    assert.ok(w[0]! * w[1]! < 0, `one positive, one negative: ${w}`);
  }
  // Which unit is positive is a coin flip: all 40 alike has probability 2^-39.
  assert.ok(new Set(outputs.map((w) => w[0]! > 0)).size === 2, 'the positive unit varies from run to run');
  assert.ok(new Set(outputs.map((w) => Math.abs(w[0]!))).size > 30, 'magnitudes are drawn, not fixed');
});

test('Secure MLP: what S2 decrypts — masked operands with uniform top bits, ReLU values behind a uniform factor in [2^31, 2^32), in an order unrelated to S1’s', async () => {
  const { publicKey, privateKey } = smallKeys();
  const s2 = new CryptoServer(privateKey, { insecure: true });
  // S2's view: every operation with the values it decrypted and unpacked (its private `run`).
  const seen: { op: string; v: bigint[] }[] = [];
  const inner = s2 as unknown as { run(op: { op: string }, v: bigint[]): unknown };
  const run = inner.run.bind(s2);
  inner.run = (op, v) => {
    seen.push({ op: op.op, v });
    return run(op, v);
  };
  const s1 = new ComputeServer(publicKey, new MeteredTransport(new InProcessTransport(s2), { timeoutMs: 5000 }), new LocalTwoServerCompute());
  // 320 values of magnitude 3, the first half positive: |αz|/3 is α, and the signs show the order.
  const n = 320;
  const z = Array.from({ length: n }, (_, i) => (i < n / 2 ? 3n : -3n));
  const enc = (): bigint[] => z.map((v) => publicKey.encryptRaw(v));
  const bits = 4;
  await s1.mul({ cts: enc(), bits }, { cts: enc(), bits });
  await s1.relu({ cts: enc(), bits }, 0);
  const [mul, relu] = [seen.find((s) => s.op === 'mul')!, seen.find((s) => s.op === 'relu')!];
  const sigma = 40;
  const topCells = (values: readonly bigint[], width: number): number[] => {
    const counts = new Array<number>(16).fill(0);
    for (const v of values) {
      const cell = Number(v >> BigInt(width - 4));
      // A value leaves [0, 2^width) only if its mask is within |v| of an end: probability 2^-40.
      assert.ok(cell >= 0 && cell < 16, `a value S2 decrypted, ${v}, is outside its mask's range`);
      counts[cell]!++;
    }
    return counts;
  };
  // Products: each operand plus a mask uniform below 2^(bits + σ) (640 values, 40 per cell).
  assert.equal(mul.v.length, 2 * n);
  const { pValue: maskP } = chiSquareUniform(topCells(mul.v, bits + sigma));
  assert.ok(maskP > FALSE_ALARM, `masked operands' top bits are not uniform (p = ${maskP})`);
  // ReLU items (αz, z + r): α = |αz|/3, uniform in [2^31, 2^32) (320 draws, 20 per cell).
  assert.equal(relu.v.length, 2 * n);
  const items = Array.from({ length: n }, (_, k) => relu.v[2 * k]!);
  const alphas = items.map((v) => (v < 0n ? -v : v) / 3n);
  for (const [k, v] of items.entries()) assert.equal(alphas[k]! * 3n, v < 0n ? -v : v);
  for (const a of alphas) assert.ok(a >= 1n << 31n && a < 1n << 32n, `factor ${a} outside [2^31, 2^32)`);
  const { pValue: alphaP } = chiSquareUniform(topCells(alphas.map((a) => a - (1n << 31n)), 31));
  assert.ok(alphaP > FALSE_ALARM, `ReLU factors are not uniform (p = ${alphaP})`);
  const { pValue: reluMaskP } = chiSquareUniform(topCells(Array.from({ length: n }, (_, k) => relu.v[2 * k + 1]!), bits + sigma));
  assert.ok(reluMaskP > FALSE_ALARM, `ReLU's masked values are not uniform (p = ${reluMaskP})`);
  // Order: under a uniform permutation the positives among the first half of the items are
  // hypergeometric (mean n/4, standard deviation √(n/16 · n/(n−1)) ≈ 4.5); |dev| ≤ 5σ fails with
  // probability below 1e-6. In S1's order all n/2 would be positive.
  const firstHalfPositive = items.slice(0, n / 2).filter((v) => v > 0n).length;
  const sd = Math.sqrt(((n / 16) * n) / (n - 1));
  assert.ok(Math.abs(firstHalfPositive - n / 4) <= 5 * sd, `${firstHalfPositive} of the first ${n / 2} items are positive: the order follows S1's`);
});
