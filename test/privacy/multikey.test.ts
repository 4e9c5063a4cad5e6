/**
 * Multi-key training from the side of each party that receives something (docs/security.md,
 * "Multi-key collaborative training"):
 *
 * - a provider's key holder decrypts, during the key switch, its records plus the service's masks:
 *   the masks must be uniform over their whole range (Paillier 2^64, CKKS 2^40 grid units);
 * - the crypto server S2 decrypts the imported data (x + R) and every cross term: what it keeps
 *   must be uniform mod 2^64, and no ciphertext it receives may carry randomness that another
 *   party chose (the key holder's reply encryptions, S2's own operand encryptions) — it compares
 *   against S1's deterministic recomputation;
 * - the service S1 receives S2's operand encryptions, which it must not be able to read.
 *
 * Distribution tests draw fresh randomness and fail a correct implementation with probability at
 * most 1e-6 each (FALSE_ALARM). Small insecure keys.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, type PaillierPublicKey } from '../../src/schemes/paillier/index.js';
import { PaillierCiphertext } from '../../src/schemes/paillier/ciphertext.js';
import type { IntegerWeights } from '../../src/schemes/paillier/linear.js';
import { chooseParameters, CkksCiphertext, CkksContext, CkksKeyring } from '../../src/schemes/ckks/index.js';
import { LocalPaillierCompute } from '../../src/protocol/multikey/compute.js';
import { CryptoServer } from '../../src/protocol/multikey/crypto-server.js';
import { ServiceEngine } from '../../src/protocol/multikey/service-engine.js';
import { KeySwitchService, shareConverted } from '../../src/protocol/multikey/key-switch.js';
import { CkksDataProvider, PaillierDataProvider, switchLayout } from '../../src/protocol/multikey/providers.js';
import { LocalChannel } from '../../src/protocol/multikey/transport.js';
import { b64ToBig, b64ToBytes } from '../../src/protocol/multikey/codec.js';
import { randomRingArray, reduce } from '../../src/protocol/multikey/ring.js';
import { crossSlots, planMatmul, unpackSlots } from '../../src/protocol/multikey/cross.js';
import { InvalidCiphertextError } from '../../src/errors.js';
import { randomnessOf } from './paillier-harness.js';
import { FALSE_ALARM, chiSquareUniform } from './stats.js';

const F = 13;
const WIDTH = 11;
const training = generateKeyPair({ bits: 1024, insecure: true });
const counter = () => ({ bytes: 0, rounds: 0 });
// The claimed mask widths, written out (not the code's constants, so narrowing those fails here).
const PAILLIER_MASK_BITS = 64;
const CKKS_MASK_BITS = 40;
const SHARE_BITS = 64;

/** `rows` records of WIDTH standardized-looking values in (−8, 8). */
function randomRecords(rows: number): Float64Array[] {
  return Array.from({ length: rows }, () => Float64Array.from({ length: WIDTH }, () => (Math.random() - 0.5) * 16));
}

const fixedOf = (records: readonly Float64Array[]): bigint[] => records.flatMap((r) => Array.from(r, (x) => BigInt(Math.round(x * 2 ** F))));

/** Counts of the top 4 of `bits` bits of non-negative values below 2^bits: 16 cells. */
function topNibbles(values: readonly bigint[], bits: number): number[] {
  const counts = new Array<number>(16).fill(0);
  for (const v of values) counts[Number(v >> BigInt(bits - 4))]!++;
  return counts;
}

/** A channel to `handler` that hands every message (and reply) to `see` first. */
function spied(handler: (m: unknown) => Promise<unknown>, see: (msg: unknown, reply: unknown) => void): LocalChannel {
  return new LocalChannel(async (m) => {
    const reply = await handler(m);
    see(m, reply);
    return reply;
  }, { peer: 'peer', counter: counter() });
}

test('multi-key key switch and import (Paillier provider): the key holder sees x + M with M uniform below 2^64; S2 keeps x + R uniform mod 2^64, and no import ciphertext carries the randomness of the key holder’s reply', async () => {
  const own = generateKeyPair({ bits: 1024, insecure: true });
  // 40 records × 11 = 440 values: 27.5 per cell of the top-nibble χ² below.
  const records = randomRecords(40);
  const fixed = fixedOf(records);
  const provider = new PaillierDataProvider('p1', own, records, F);
  const service = new KeySwitchService(training.publicKey, WIDTH, F);
  service.registerPaillier('p1', provider.publicKey);
  service.accept(JSON.parse(JSON.stringify(provider.upload())));
  let request: string[] = [];
  let reply: string[] = [];
  const keyHolder = spied(async (m) => provider.answerSwitch(m, training.publicKey), (m, r) => {
    request = (m as { ciphertexts: string[] }).ciphertexts;
    reply = (r as { ciphertexts: string[] }).ciphertexts;
  });
  const converted = await service.switchProvider('p1', keyHolder);

  // The key holder's view: it knows x (it may be the provider), so what it decrypts minus x is M.
  const layout = switchLayout(own.publicKey.bits);
  const seen = request.flatMap((s, i) => layout.unpack(own.privateKey.decrypt(own.publicKey.ciphertext(b64ToBig(s))), own.publicKey.n, Math.min(layout.slots, fixed.length - i * layout.slots)));
  const masks = seen.map((v, i) => v - fixed[i]!);
  assert.equal(masks.length, fixed.length);
  for (const m of masks) assert.ok(m >= 0n && m < 1n << BigInt(PAILLIER_MASK_BITS), `mask ${m} outside [0, 2^64)`);
  const { pValue: maskP } = chiSquareUniform(topNibbles(masks, PAILLIER_MASK_BITS));
  assert.ok(maskP > FALSE_ALARM, `the masks' top bits are not uniform (p = ${maskP})`);

  // S2's view of the import.
  const local = new LocalPaillierCompute();
  const s2 = new CryptoServer(training.privateKey, { compute: local });
  const imported: bigint[] = [];
  const toS2 = spied((m) => s2.handle(m), (m) => {
    const msg = m as { type: string; tensors?: { ciphertexts: string[] }[] };
    if (msg.type === 'import') imported.push(...msg.tensors!.flatMap((t) => t.ciphertexts.map(b64ToBig)));
  });
  const s1 = new ServiceEngine(toS2, training.publicKey, local);
  const [id] = await shareConverted(s1, local, training.publicKey, [converted]);
  const s1Shares = s1.store.get(id!)!.data;
  const s2Shares = s2.store.get(id!)!.data;
  assert.deepEqual(s1Shares.map((v, i) => reduce(v + s2Shares[i]!)), fixed.map(reduce), 'the shares add up to the records');
  const { pValue: shareP } = chiSquareUniform(topNibbles(s2Shares, SHARE_BITS));
  assert.ok(shareP > FALSE_ALARM, `S2's shares are not uniform mod 2^64 (p = ${shareP})`);
  // S1 unmasks (·g^-M) and masks (·g^R) deterministically: without fresh noise each import
  // ciphertext would keep the randomness the key holder encrypted its reply with.
  const replyRandomness = new Set(reply.map((s) => randomnessOf(training.privateKey, b64ToBig(s))));
  assert.equal(imported.length, reply.length);
  assert.equal(replyRandomness.size, reply.length);
  for (const c of imported) assert.ok(!replyRandomness.has(randomnessOf(training.privateKey, c)), 'an import ciphertext reached S2 with the randomness of the key holder’s reply');
  // Records left under the provider's key are refused rather than masked and sent to S2.
  await assert.rejects(shareConverted(s1, local, training.publicKey, [{ ...converted, ciphertexts: request.map((c) => own.publicKey.ciphertext(b64ToBig(c))) }]), InvalidCiphertextError);
});

const context = await CkksContext.create(chooseParameters({ depth: 0, scaleBits: 30, headroomBits: 30 }));
const keyring = CkksKeyring.generate(context);
after(() => {
  keyring.dispose();
  context.dispose();
});

test('multi-key key switch (CKKS provider): the key holder sees x + k/2^13 with k uniform below 2^40', async () => {
  // One ciphertext's worth of values (4,092 of 4,096 slots): 256 per cell of the χ² below.
  const records = randomRecords(Math.floor(context.slots / WIDTH));
  const provider = new CkksDataProvider('c1', keyring, records, F);
  const service = new KeySwitchService(training.publicKey, WIDTH, F);
  service.registerCkks('c1', provider.keyId, context);
  service.accept(JSON.parse(JSON.stringify(provider.upload())));
  let request: string[] = [];
  await service.switchProvider('c1', spied(async (m) => provider.answerSwitch(m, training.publicKey), (m) => {
    request = (m as { ciphertexts: string[] }).ciphertexts;
  }));
  assert.equal(request.length, 1);
  const ct = CkksCiphertext.load(context, keyring.keyId, b64ToBytes(request[0]!));
  let decoded: Float64Array;
  try {
    decoded = keyring.decrypt(ct);
  } finally {
    ct.free();
  }
  const flat = records.flatMap((r) => Array.from(r));
  // The decryption error (about 2^-20) is far below the grid step 2^-13: k comes out exactly.
  const ks = flat.map((x, i) => BigInt(Math.round((decoded[i]! - x) * 2 ** F)));
  for (const k of ks) assert.ok(k >= 0n && k < 1n << BigInt(CKKS_MASK_BITS), `mask ${k} outside [0, 2^40)`);
  const { pValue } = chiSquareUniform(topNibbles(ks, CKKS_MASK_BITS));
  assert.ok(pValue > FALSE_ALARM, `the CKKS masks' top bits are not uniform (p = ${pValue})`);
});

test('multi-key products: S1 cannot read S2’s operand encryptions, and every cross term S1 returns to S2 is re-randomized', async () => {
  const keys = training;
  const local = new LocalPaillierCompute();
  const computed: bigint[] = [];
  // S1's bulk arithmetic, recorded: the deterministic results S2 could recompute from its own
  // encryptions and guesses of S1's shares.
  const compute = Object.assign(Object.create(local) as LocalPaillierCompute, {
    async pack(key: PaillierPublicKey, values: readonly bigint[], factors: readonly bigint[] | null, slotBits: number, perCiphertext: number) {
      const out = await local.pack(key, values, factors, slotBits, perCiphertext);
      computed.push(...out);
      return out;
    },
    async matVec(cts: readonly PaillierCiphertext[], weights: IntegerWeights, rows: number, bias?: readonly bigint[]) {
      const out = await local.matVec(cts, weights, rows, bias);
      computed.push(...out.map((c) => c.value));
      return out;
    },
  });
  const s2 = new CryptoServer(keys.privateKey, { compute: local });
  const returned: bigint[] = [];
  const opened: bigint[] = [];
  const channel = spied((m) => s2.handle(m), (m, r) => {
    const msg = m as { type: string; results?: string[][] };
    if (msg.type === 'cross') returned.push(...msg.results!.flat().map(b64ToBig));
    const rep = r as { type: string; cts?: string[][] };
    if (rep.type === 'opened') opened.push(...rep.cts!.flat().map(b64ToBig));
  });
  const s1 = new ServiceEngine(channel, keys.publicKey, compute);
  const share = (id: string, rows: number, cols: number): void => {
    const v = randomRingArray(rows * cols);
    const r = randomRingArray(rows * cols);
    s1.store.set(id, { rows, cols, data: v.map((x, i) => reduce(x - r[i]!)) });
    s2.store.set(id, { rows, cols, data: r });
  };
  share('A', 3, 5);
  share('B', 5, 4);
  share('C', 2, 3);
  await s1.interact([
    { op: 'matmul', out: 'AB', a: 'A', b: 'B' },
    { op: 'mul', out: 'CC', a: 'C', b: 'C' },
  ]);
  // S1's attack on S2's encryptions: a ciphertext with trivial randomness is 1 + m·n, m in the clear.
  const { n } = keys.publicKey;
  assert.ok(opened.length >= 6);
  for (const c of opened) assert.notEqual(c % n, 1n, 'S2 sent an operand share S1 can read as (c − 1)/n');
  // S2's attack on the cross terms: compare their randomness with S1's deterministic results.
  const deterministic = new Set(computed.map((c) => randomnessOf(keys.privateKey, c)));
  assert.ok(returned.length >= 2 && deterministic.size >= 2);
  for (const c of returned) assert.ok(!deterministic.has(randomnessOf(keys.privateKey, c)), 'a cross term went back to S2 with the randomness S1 computed it with');
});

test('multi-key products: S2 decrypts each cross term plus a mask at least 40 bits wider, whose top bits are uniform', async () => {
  const local = new LocalPaillierCompute();
  const s2 = new CryptoServer(training.privateKey, { compute: local });
  let cross: string[][] = [];
  const s1 = new ServiceEngine(spied((m) => s2.handle(m), (m) => {
    const msg = m as { type: string; results?: string[][] };
    if (msg.type === 'cross') cross = msg.results!;
  }), training.publicKey, local);
  // A (20×5)·(5×20) product: 800 decrypted slots (400 per cross term), 50 per cell of the χ² below.
  const [m, k, n] = [20, 5, 20];
  const shares: Record<string, { s1: bigint[]; s2: bigint[] }> = {};
  for (const [id, rows, cols] of [['A', m, k], ['B', k, n]] as const) {
    shares[id] = { s1: randomRingArray(rows * cols), s2: randomRingArray(rows * cols) };
    s1.store.set(id, { rows, cols, data: shares[id].s1 });
    s2.store.set(id, { rows, cols, data: shares[id].s2 });
  }
  await s1.interact([{ op: 'matmul', out: 'AB', a: 'A', b: 'B' }]);
  // The masks cancel: S1's and S2's shares of AB add up to the product (mod 2^64).
  const value = (id: 'A' | 'B', i: number): bigint => shares[id]!.s1[i]! + shares[id]!.s2[i]!;
  const ab = Array.from({ length: m * n }, (_, p) => {
    let sum = 0n;
    for (let l = 0; l < k; l++) sum += value('A', Math.floor(p / n) * k + l) * value('B', l * n + (p % n));
    return reduce(sum);
  });
  assert.deepEqual(s1.store.get('AB')!.data.map((v, p) => reduce(v + s2.store.get('AB')!.data[p]!)), ab, 'the shares of AB add up to A·B');
  // The largest cross term S1 could have computed, A2·B1 or A1·B2 (shares are below 2^64).
  const { A, B } = shares as Record<'A' | 'B', { s1: bigint[]; s2: bigint[] }>;
  let largest = 0n;
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < n; c++) {
      let t1 = 0n;
      let t2 = 0n;
      for (let l = 0; l < k; l++) {
        t1 += A.s2[r * k + l]! * B.s1[l * n + c]!;
        t2 += A.s1[r * k + l]! * B.s2[l * n + c]!;
      }
      largest = [largest, t1, t2].reduce((x, y) => (x > y ? x : y));
    }
  }
  const plan = planMatmul(m, k, n, crossSlots(training.publicKey.bits));
  assert.equal(cross.length, 1);
  const seen = cross[0]!.flatMap((s, f) => unpackSlots(training.privateKey.decrypt(training.publicKey.ciphertext(b64ToBig(s))), plan.finals[f]!.length));
  assert.equal(seen.length, 2 * m * n);
  // What S2 sees is cross term + ρ with ρ uniform below 2^bits: 800 draws all below 2^(bits−1)
  // has probability 2^-800, so the widest value's length is the mask's width.
  const bits = seen.reduce((w, v) => Math.max(w, v.toString(2).length), 0);
  const crossBits = largest.toString(2).length;
  assert.ok(bits >= crossBits + 40, `the mask has ${bits} bits, the cross terms up to ${crossBits}`);
  // The cross term moves a value past 2^bits with probability at most 2^-40.
  const counts = new Array<number>(16).fill(0);
  for (const v of seen) {
    const cell = Number(v >> BigInt(bits - 4));
    assert.ok(cell < 16, 'a value S2 decrypted reaches past its mask');
    counts[cell]!++;
  }
  const { pValue } = chiSquareUniform(counts);
  assert.ok(pValue > FALSE_ALARM, `the masked cross terms' top bits are not uniform (p = ${pValue})`);
});
