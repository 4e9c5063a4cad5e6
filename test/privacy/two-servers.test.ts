/**
 * The Secure MLP from the crypto server's side (docs/security.md, "Secure MLP"; multi-key
 * training is in multikey.test.ts): every ciphertext S1 sends S2 carries fresh randomness —
 * S2 made the randomness of the ciphertexts it returned earlier, so a deterministic function of
 * them would let it test guesses of S1's masks — and the Secure MLP's starting weights
 * are not something S1 can recompute. Small insecure keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '../../src/schemes/paillier/index.js';
import {
  ComputeServer, CryptoServer, InProcessTransport, LocalTwoServerCompute, MeteredTransport, decodeTwoServerMessage, type EncMatrix, type TwoServerTransport,
} from '../../src/protocol/two-server/index.js';
import { DEFAULT_SMLP } from '../../src/train/smlp/config.js';
import { initialWeights } from '../../src/train/smlp/model.js';
import { SeededRandom } from '../../src/train/fe/prng.js';
import { toFixed } from '../../src/train/smlp/config.js';
import { smallKeys } from '../helpers/keys.js';
import { randomnessOf } from './paillier-harness.js';

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
  // Weights look like He initialization: mean near 0, variance near 2/30 (at scale 2^12).
  const real = nonBias(a.w1).map((w) => Number(w) / 4096);
  const mean = real.reduce((s, v) => s + v, 0) / real.length;
  const variance = real.reduce((s, v) => s + (v - mean) ** 2, 0) / (real.length - 1);
  // 120 draws: |mean| ≥ 5.3·σ/√120, or a sample variance outside [0.4, 2] times the true one
  // (χ² with 119 degrees of freedom, Wilson–Hilferty: ±6σ), each has probability below 1e-6.
  assert.ok(Math.abs(mean) < (5.3 * Math.sqrt(2 / 30)) / Math.sqrt(120), `mean ${mean}`);
  assert.ok(variance > (2 / 30) * 0.4 && variance < (2 / 30) * 2, `variance ${variance}`);
});
