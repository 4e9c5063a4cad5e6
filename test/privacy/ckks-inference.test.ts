/**
 * Interactive CKKS inference from the client's side (docs/security.md, "Interactive CKKS
 * inference"): the blinding factors hide magnitudes from a client that knows the true
 * pre-activations of another input, and the smudging noise on every output is at least the
 * claimed variance and does not depend on the computation. Each test also runs a deliberately
 * weakened service (compiled without blinding, or without smudging) against which the same check
 * fails, so the assertions demonstrably can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AvgPool2d, Conv2d, Dense, Flatten, Model, Relu } from '../../src/nn/index.js';
import { applyMap } from '../../src/tensor/sparse-linear.js';
import {
  CkksInferenceClient, CkksInferenceService, DEFAULT_CKKS_PROTOCOL, HEURISTIC_SMUDGING, clientActivations, compileCkksModel, inProcessCkksTransport, type CompiledCkksModel, type CkksProtocolParams,
} from '../../src/protocol/ckks-inference/index.js';
import type { OpenReply, RoundReply, Routing } from '../../src/protocol/ckks-inference/messages.js';
import { MAX_FLOOD_BITS, MIN_FLOOD_BITS, smudgingZero } from '../../src/protocol/ckks-inference/smudging.js';
import { CkksCiphertext, CkksContext, CkksKeyring, CkksServiceKeys } from '../../src/schemes/ckks/index.js';
import { FALSE_ALARM, Z_FALSE_ALARM, chiSquareUniform, spearman, variance } from './stats.js';
import { plainCoefficients } from './seal-coefficients.js';
import type { Decryptor } from '../../src/schemes/ckks/seal.js';

/** Deterministic pseudo-random numbers in [−1, 1) (public test data). */
function wave(length: number, phase: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin(i * 12.9898 + phase * 78.233) * 0.5 + Math.cos(i * 4.1 + phase) * 0.5);
}
const inputs = (count: number, phase: number): Float32Array => wave(32 * count, phase).map((v) => (v + 1) / 2);

const IN = 32;
const HIDDEN = 64;
const OUT = 256;
const first = new Dense({ inFeatures: IN, outFeatures: HIDDEN, weights: wave(IN * HIDDEN, 1), bias: wave(HIDDEN, 2).map((v) => v * 0.2) });
const lastWeights = wave(HIDDEN * OUT, 3);
const model = (weights = lastWeights): Model => new Model([IN], [first, new Relu(), new Dense({ inFeatures: HIDDEN, outFeatures: OUT, weights })]);

/**
 * What the client saw: per session, per stage, the values it decrypted (in the order it holds
 * them); `windows` has the window sizes each reply announced.
 */
type Views = Float64Array[][] & { windows: (ArrayLike<number> | null)[][] };

/**
 * Runs one session per input and returns what the client decrypted in every round. The client is
 * the library's own; the transport only reads along, decrypting with the client's key.
 */
async function run(compiled: CompiledCkksModel, samples: Float32Array[]): Promise<Views> {
  const service = await CkksInferenceService.create(compiled);
  const views: Views = Object.assign([], { windows: [] as (ArrayLike<number> | null)[][] });
  try {
    const direct = inProcessCkksTransport(service);
    let client: CkksInferenceClient | undefined;
    let routing: Routing | undefined;
    const spy = {
      ...direct,
      open: async (request: unknown) => {
        const reply = (await direct.open(request as never)) as OpenReply;
        routing = reply.routing;
        views.push([]);
        views.windows.push([]);
        return reply;
      },
      round: async (request: unknown) => {
        const reply = (await direct.round(request as never)) as RoundReply;
        const reader = client as unknown as { decryptGroups(r: Routing, o: Uint8Array[]): Float64Array };
        views.at(-1)!.push(reader.decryptGroups(routing!, reply.outputs));
        views.windows.at(-1)!.push(reply.windowSizes);
        routing = reply.next;
        return reply;
      },
    };
    client = await CkksInferenceClient.connect(spy, clientActivations(compiled));
    try {
      for (const x of samples) await client.predict(x);
    } finally {
      client.dispose();
    }
  } finally {
    service.dispose();
  }
  return views;
}


const calibration = inputs(40, 9);
const params = (overrides: Partial<CkksProtocolParams>): CkksProtocolParams => ({ ...DEFAULT_CKKS_PROTOCOL, ...overrides });
const real = compileCkksModel(model(), calibration);

/**
 * Known-plaintext attack on magnitudes: handed image A's true pre-activations, the client fits the
 * one scale that maps its sorted view of A onto them, then reads image B's pre-activations off its
 * sorted view of B. Returns the fraction of B's larger positive values (≥ 20% of the largest)
 * recovered to within 2%.
 */
function magnitudeRecovery(seenA: Float64Array, truthA: Float64Array, seenB: Float64Array, truthB: Float64Array): number {
  const positives = (v: Float64Array): number[] => Array.from(v).filter((x) => x > 0).sort((a, b) => b - a);
  const [sa, ta, sb, tb] = [positives(seenA), positives(truthA), positives(seenB), positives(truthB)];
  const ratios = sa.slice(0, Math.min(sa.length, ta.length)).map((s, i) => s / ta[i]!).sort((a, b) => a - b);
  const scale = ratios[ratios.length >> 1]!;
  let tried = 0;
  let hit = 0;
  for (let i = 0; i < Math.min(sb.length, tb.length); i++) {
    if (tb[i]! < 0.2 * tb[0]!) break;
    tried++;
    if (Math.abs(sb[i]! / scale - tb[i]!) <= 0.02 * tb[i]!) hit++;
  }
  assert.ok(tried >= 8, `only ${tried} values to attack`);
  return hit / tried;
}

async function magnitudeAttack(compiled: CompiledCkksModel): Promise<number> {
  const samples = [inputs(1, 20), inputs(1, 21), inputs(1, 22), inputs(1, 23)];
  const views = await run(compiled, samples);
  let total = 0;
  for (let k = 0; k < samples.length; k += 2) {
    total += magnitudeRecovery(views[k]![0]!, applyMap(compiled.stages[0]!.map, samples[k]!), views[k + 1]![0]!, applyMap(compiled.stages[0]!.map, samples[k + 1]!));
  }
  return total / (samples.length / 2);
}

test('blinding: a known-plaintext input does not reveal the magnitudes of another input’s pre-activations (without factors it does)', async () => {
  const unblinded = await magnitudeAttack(compileCkksModel(model(), calibration, params({ blindBits: 0 })));
  assert.ok(unblinded > 0.9, `the attack must work without blinding factors: ${unblinded}`);
  const blinded = await magnitudeAttack(real);
  // Margin: 0.3 is far above what the factors leave (a few percent of values by chance).
  assert.ok(blinded < 0.3, `values recovered to 2% through the blinding: ${blinded}`);
});

/**
 * The standard deviation the smudging adds to each decoded output (docs/security.md): the flood's
 * noise polynomial has i.i.d. coefficients of standard deviation 2^floodBits·√((1 + 2N/3)/12) —
 * SEAL encrypts a zero at the key level and divides by the special prime, which leaves the
 * rounding ε0 + ε1·s (ε uniform in [−½, ½], s ternary) — and decoding a slot sums N coefficients
 * times unit complex numbers (the real part keeps half the variance), divided by the scale.
 */
function claimedSmudgingStd(compiled: CompiledCkksModel): number {
  const { floodBits, inputScaleBits, weightScaleBits, ckks } = compiled.params;
  const n = ckks.polyModulusDegree;
  const coefficientVariance = (1 + (2 * n) / 3) / 12;
  return (2 ** floodBits * Math.sqrt((n / 2) * coefficientVariance)) / 2 ** (inputScaleBits + weightScaleBits);
}

// One linear stage (no activation round): the logits' only noise is the service's computation
// and its smudging, so what the client decrypts is exactly what the smudging must hide.
const linear = (weights = lastWeights): Model => new Model([HIDDEN], [new Dense({ inFeatures: HIDDEN, outFeatures: OUT, weights })]);
const hiddenInputs = (phase: number): Float32Array => wave(HIDDEN, phase).map((v) => (v + 1) / 2);

/** The decoded logits minus the exact ones, over `sessions` sessions on one input. */
async function logitNoise(compiled: CompiledCkksModel, x: Float32Array, sessions: number): Promise<number[]> {
  const views = await run(compiled, Array.from({ length: sessions }, () => x));
  const want = applyMap(compiled.stages[0]!.map, x);
  return views.flatMap((v) => Array.from(v.at(-1)!, (got, i) => got - want[i]!));
}

test('smudging: the noise on the decoded outputs has at least the claimed variance (without smudging it has almost none)', async () => {
  const x = hiddenInputs(30);
  const compiled = compileCkksModel(linear(), x);
  const claimed = claimedSmudgingStd(compiled) ** 2;
  const live = CkksCiphertext.liveCount;
  const noise = await logitNoise(compiled, x, 2);
  assert.equal(CkksCiphertext.liveCount, live, 'a session left ciphertexts (a flood) behind');
  // 512 samples of a sum of many independent terms (Gaussian): the sample variance falls below 0.6
  // of the true one with probability below 1e-9, so a true variance at or above the claim passes.
  assert.ok(variance(noise) >= 0.6 * claimed, `noise variance ${variance(noise)} below the claimed ${claimed}`);
  const bare = await logitNoise(compileCkksModel(linear(), x, params({ floodBits: 0 })), x, 1);
  assert.ok(variance(bare) < 0.01 * claimed, `without smudging the variance must collapse: ${variance(bare)}`);
});

/**
 * Two linear models with the same outputs on `x` but very different weights: B adds to A's
 * weights a matrix with 100 times their norm whose rows are orthogonal to x, so the computation's
 * own noise on B's outputs is about 100 times A's.
 */
function twinModels(x: Float32Array, overrides: Partial<CkksProtocolParams>): [CompiledCkksModel, CompiledCkksModel] {
  const xx = x.reduce((s, v) => s + v * v, 0);
  const heavy = new Float32Array(HIDDEN * OUT);
  for (let o = 0; o < OUT; o++) {
    const z = Array.from({ length: HIDDEN }, (_, j) => 100 * Math.sin(o * 7.77 + j * 3.33));
    const along = z.reduce((s, v, j) => s + v * x[j]!, 0) / xx;
    // Dense weights are row-major with one row per output.
    for (let j = 0; j < HIDDEN; j++) heavy[o * HIDDEN + j] = lastWeights[o * HIDDEN + j]! + (z[j]! - along * x[j]!);
  }
  return [compileCkksModel(linear(), x, params(overrides)), compileCkksModel(linear(heavy), x, params(overrides))];
}

/** |ln(var_a / var_b)| and the bound it stays below with two-sided false alarm 1e-6 for equal variances. */
function varianceRatio(a: number[], b: number[]): { logRatio: number; bound: number } {
  return { logRatio: Math.abs(Math.log(variance(a) / variance(b))), bound: 5.33 * Math.sqrt(2 / (a.length - 1) + 2 / (b.length - 1)) };
}

test('smudging: the output noise does not depend on the computation (equal outputs, weights 100× apart)', async () => {
  const x = hiddenInputs(40);
  // The weakened service: no smudging, at the older 2^45 scales where the computation's noise is
  // large enough to show in decoded doubles (at the default scales it sits below double precision,
  // visible only to a client that decrypts to coefficients).
  const [bareA, bareB] = twinModels(x, { ...HEURISTIC_SMUDGING, floodBits: 0 });
  const outA = applyMap(bareA.stages[0]!.map, x);
  const outB = applyMap(bareB.stages[0]!.map, x);
  // Equal up to the float32 rounding of B's weights.
  outA.forEach((v, i) => assert.ok(Math.abs(v - outB[i]!) < 1e-3, `the two models agree on x: ${v} vs ${outB[i]}`));
  // Power: without smudging the variances differ by about 10^4 (ln ≈ 9), far beyond the bound (≈ 0.67).
  const without = varianceRatio(await logitNoise(bareA, x, 1), await logitNoise(bareB, x, 1));
  assert.ok(without.logRatio > without.bound, `without smudging the noise must tell the models apart: ${JSON.stringify(without)}`);
  const [a, b] = twinModels(x, {});
  const smudged = varianceRatio(await logitNoise(a, x, 2), await logitNoise(b, x, 2));
  assert.ok(smudged.logRatio <= smudged.bound, `noise variances differ between the models: ${JSON.stringify(smudged)} (false alarm ${FALSE_ALARM})`);
});

test('routing (documented): a convolution’s routing table tells the client each output’s receptive field, not its channel', async () => {
  // 1×6×6 input, 3 channels of 3×3 kernels: 16 positions × 3 channels of outputs.
  const conv = new Model([1, 6, 6], [
    new Conv2d({ outChannels: 3, inChannels: 1, kernel: [3, 3], weights: wave(27, 5), bias: wave(3, 6) }),
    new Relu(),
    new Flatten(),
    new Dense({ inFeatures: 48, outFeatures: 4, weights: wave(192, 7) }),
  ]);
  const compiled = compileCkksModel(conv, wave(36 * 10, 8).map((v) => (v + 1) / 2), params({ stageLayout: 'routed' }));
  const service = await CkksInferenceService.create(compiled);
  try {
    const client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(compiled));
    const { routing } = service.open({ version: 1, keyId: client.keyId });
    client.dispose();
    // The input pixels that feed each output: the service's fold adds slot s of every input
    // ciphertext into output s mod P, for a power of two P ≥ the group's size (any such P below the
    // real period gives the same residues), so a client reads the table as, per output, its inputs.
    const fields: string[] = [];
    for (const group of routing.groups) {
      const period = 2 ** Math.ceil(Math.log2(group.size));
      const sets = Array.from({ length: group.size }, () => new Set<number>());
      for (const row of group.sources) row.forEach((p, slot) => p >= 0 && sets[slot % period]!.add(p));
      for (const set of sets) fields.push([...set].sort((a, b) => a - b).join(','));
    }
    assert.equal(fields.length, 48);
    const distinct = new Set(fields);
    assert.equal(distinct.size, 16, 'one receptive field per spatial position: the client learns positions');
    for (const f of distinct) {
      assert.equal(fields.filter((g) => g === f).length, 3, 'the three channels of a position share it: channels stay hidden');
      const pixels = f.split(',').map(Number);
      const rows = new Set(pixels.map((p) => Math.floor(p / 6)));
      const cols = new Set(pixels.map((p) => p % 6));
      assert.ok(pixels.length === 9 && rows.size === 3 && cols.size === 3, `a 3×3 patch: ${f}`);
    }
  } finally {
    service.dispose();
  }
});

test('average pools at the client (documented): a window’s cells share a factor, so their ratios show', async () => {
  // 1×6×6 → 2 channels of 4×4 → ReLU → 2×2 average pool (evaluated by the client) → 4 outputs.
  const pooled = new Model([1, 6, 6], [
    new Conv2d({ outChannels: 2, inChannels: 1, kernel: [3, 3], weights: wave(18, 9), bias: wave(2, 10) }),
    new Relu(),
    new AvgPool2d({ kernel: [2, 2] }),
    new Flatten(),
    new Dense({ inFeatures: 8, outFeatures: 4, weights: wave(32, 11) }),
  ]);
  const x = wave(36, 12).map((v) => (v + 1) / 2);
  const compiled = compileCkksModel(pooled, wave(36 * 10, 13).map((v) => (v + 1) / 2));
  const windows = compiled.stages[0]!.activation!.windows!;
  assert.ok(windows.length === 8 && compiled.stages[0]!.activation!.pool === 'avg');
  const views = await run(compiled, [x]);
  const seen = views[0]![0]!;
  const sizes = Array.from(views.windows[0]![0]!);
  // A window's cells as the scale-free shape the shared factor leaves: sorted, over the largest.
  const shape = (cells: number[]): number[] => {
    const top = Math.max(...cells.map(Math.abs));
    return cells.map((c) => c / top).sort((a, b) => a - b);
  };
  const truth = applyMap(compiled.stages[0]!.map, x);
  const trueShapes = windows.map((cells) => shape(Array.from(cells, (c) => truth[c]!)));
  let at = 0;
  let matched = 0;
  for (const size of sizes) {
    const mine = shape(Array.from(seen.subarray(at, at + size)));
    at += size;
    if (trueShapes.some((t) => t.every((v, i) => Math.abs(v - mine[i]!) < 1e-3))) matched++;
  }
  assert.equal(matched, windows.length, 'every window the client sees has the ratios of a true window');
  // The shared factors themselves (the service's private draws, sessions opened and never run):
  // one per window, log-uniform in [1, 2^blindBits), fresh per window — not 1.
  const service = await CkksInferenceService.create(compiled);
  try {
    const client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(compiled));
    const sessions = (service as unknown as { sessions: Map<string, { factors: Float64Array[]; layouts: { windowSizes: Int32Array | null }[] }> }).sessions;
    const bands = new Array<number>(4).fill(0);
    for (let k = 0; k < 10; k++) {
      const { sessionId } = service.open({ version: 1, keyId: client.keyId });
      const { factors, layouts } = sessions.get(sessionId)!;
      let at = 0;
      for (const size of layouts[0]!.windowSizes!) {
        const cells = Array.from(factors[0]!.subarray(at, at + size));
        at += size;
        assert.ok(cells.every((f) => f === cells[0]), 'the cells of a window share one factor');
        bands[Math.floor((Math.log2(cells[0]!) / compiled.params.blindBits) * 4)]!++;
      }
      assert.equal(at, factors[0]!.length);
      service.close(sessionId);
    }
    client.dispose();
    // 80 window factors, 20 per band: none outside [1, 2^blindBits), and log-uniform (χ², 1e-6).
    assert.equal(bands.reduce((a, b) => a + b), 80);
    assert.ok(chiSquareUniform(bands).pValue >= FALSE_ALARM, `log2(window factor) by band: ${bands}`);
  } finally {
    service.dispose();
  }
});

test('blinding factors are log-uniform in [1, 2^blindBits) and fresh per session', async () => {
  const service = await CkksInferenceService.create(real);
  try {
    const client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(real));
    // The service's own draws (its private session state), for sessions opened and never run.
    const sessions = (service as unknown as { sessions: Map<string, { factors: Float64Array[] }> }).sessions;
    const counts = new Array<number>(16).fill(0);
    const firsts = new Set<number>();
    for (let k = 0; k < 20; k++) {
      const { sessionId } = service.open({ version: 1, keyId: client.keyId });
      const all = sessions.get(sessionId)!.factors;
      const factors = all[0]!;
      // The logits (the last stage) are not blinded: the client must read them as they are.
      assert.ok(all.at(-1)!.every((f) => f === 1), 'the final stage carries no factor');
      firsts.add(factors[0]!);
      for (const f of factors) counts[Math.floor((Math.log2(f) / real.params.blindBits) * 16)]!++;
      service.close(sessionId);
    }
    client.dispose();
    assert.equal(counts.reduce((a, b) => a + b), 20 * HIDDEN, 'every factor in [1, 2^blindBits)');
    assert.ok(chiSquareUniform(counts).pValue >= FALSE_ALARM, `log2(factor) counts ${counts}`);
    assert.equal(firsts.size, 20, 'a fresh factor per session');
  } finally {
    service.dispose();
  }
});

test('output orders are uniformly random and fresh per session (a fixed order would tell the client each value’s unit)', async () => {
  const service = await CkksInferenceService.create(real);
  try {
    const client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(real));
    // The service's own draws (its private session state), for sessions opened and never run.
    const sessions = (service as unknown as { sessions: Map<string, { layouts: { rowAt: Int32Array }[] }> }).sessions;
    const orders: number[][] = [];
    for (let k = 0; k < 20; k++) {
      const { sessionId } = service.open({ version: 1, keyId: client.keyId });
      const { layouts } = sessions.get(sessionId)!;
      orders.push(Array.from(layouts[0]!.rowAt));
      // The logits come back in their own order (the client reads the prediction off them).
      assert.deepEqual(Array.from(layouts.at(-1)!.rowAt), Array.from({ length: OUT }, (_, i) => i), 'the final stage keeps its order');
      service.close(sessionId);
    }
    client.dispose();
    const identity = Array.from({ length: HIDDEN }, (_, i) => i);
    for (const o of orders) assert.deepEqual([...o].sort((a, b) => a - b), identity, 'a permutation of the units');
    // Against the units' own order and against the previous session's: under uniform permutations
    // each Spearman correlation has mean 0 and variance 1/(n − 1), so the mean of 20 stays below
    // Z/√(20·(n − 1)) except with probability 1e-6 (a fixed order gives 1).
    const threshold = Z_FALSE_ALARM / Math.sqrt(orders.length * (HIDDEN - 1));
    const meanOf = (f: (o: number[], k: number) => number): number => orders.reduce((s, o, k) => s + f(o, k), 0) / orders.length;
    const own = meanOf((o) => spearman(o, identity));
    assert.ok(own < threshold, `orders correlate with the units' order: ${own} ≥ ${threshold}`);
    const previous = meanOf((o, k) => spearman(o, orders[(k + orders.length - 1) % orders.length]!));
    assert.ok(previous < threshold, `orders correlate across sessions: ${previous} ≥ ${threshold}`);
    // Uniform: each unit's position, in 8 bands, over all sessions (8 units × 20 sessions: 20 per band; without replacement within a session, which only narrows the counts).
    const bands = new Array<number>(8).fill(0);
    for (const o of orders) o.forEach((unit, position) => unit % 8 === 0 && bands[Math.floor(position / 8)]!++);
    assert.ok(chiSquareUniform(bands).pValue >= FALSE_ALARM, `positions of units ≡ 0 mod 8 by band: ${bands}`);
  } finally {
    service.dispose();
  }
});

test('smudging: the flood covers every integer — its decrypted coefficients have uniform low bits, not the zeros of a sublattice', async () => {
  const context = await CkksContext.create(real.params.ckks);
  const ring = CkksKeyring.generate(context);
  const keys = CkksServiceKeys.load(context, ring.exportPublic());
  const decryptor = (ring as unknown as { decryptor: Decryptor }).decryptor;
  try {
    const n = real.params.ckks.polyModulusDegree;
    const fresh = Math.sqrt((1 + (2 * n) / 3) / 12);
    const scale = 2 ** (real.params.inputScaleBits + real.params.weightScaleBits);
    for (const bits of [MIN_FLOOD_BITS, 50, 51, real.params.floodBits, MAX_FLOOD_BITS]) {
      const z = smudgingZero(context, keys, scale, bits);
      const plain = decryptor.decrypt(z.seal)!;
      let coefficients: bigint[];
      try {
        coefficients = plainCoefficients(context.savePlain(plain), context.dataPrimes, n);
      } finally {
        plain.delete();
        z.free();
      }
      // The reading is right: small integers of the claimed deviation (a wrong NTT order or root
      // would give residues spread over the whole modulus).
      const rms = Math.sqrt(coefficients.reduce((sum, c) => sum + Number(c) ** 2, 0) / n);
      assert.ok(rms > 0.7 * 2 ** bits * fresh && rms < 1.4 * 2 ** bits * fresh, `floodBits ${bits}: coefficient rms 2^${Math.log2(rms).toFixed(2)}`);
      // Low 8 bits uniform over 256 values (χ², false alarm 1e-6); multiples of 2^16: about 0.125
      // expected, 7 or more with probability below 1e-10. A flood on 2^k·Z with k ≥ 8 fails both.
      const low = new Array<number>(256).fill(0);
      for (const c of coefficients) low[Number(((c % 256n) + 256n) % 256n)]!++;
      assert.ok(chiSquareUniform(low).pValue >= FALSE_ALARM, `floodBits ${bits}: low bytes ${low.slice(0, 8)}…`);
      const multiples = coefficients.filter((c) => c % 65536n === 0n).length;
      assert.ok(multiples <= 6, `floodBits ${bits}: ${multiples} of ${n} coefficients are multiples of 2^16`);
    }
  } finally {
    keys.dispose();
    ring.dispose();
    context.dispose();
  }
});

test('smudgingZero: floodBits outside [8, 98] refused; one term (≤ 50 bits) and two terms decrypt to zero with the claimed deviation, leaving no ciphertext behind', async () => {
  const context = await CkksContext.create(real.params.ckks);
  const ring = CkksKeyring.generate(context);
  const keys = CkksServiceKeys.load(context, ring.exportPublic());
  try {
    const scaleBits = real.params.inputScaleBits + real.params.weightScaleBits;
    for (const bad of [0, -1, MIN_FLOOD_BITS - 1, 30.5, MAX_FLOOD_BITS + 1]) assert.throws(() => smudgingZero(context, keys, 2 ** scaleBits, bad), RangeError, `floodBits ${bad}`);
    const n = real.params.ckks.polyModulusDegree;
    const perBit = Math.sqrt((n / 2) * ((1 + (2 * n) / 3) / 12)) / 2 ** scaleBits;
    // 8 and 98 are the ends of the range (98 the default), 50 the widest single term, 51 the
    // narrowest two-term flood. Over 4,096 slots the sample variance stays within ±15% of the true
    // one except with probability far below 1e-9 (χ² with 4,095 degrees of freedom: ±6.8σ); the
    // bounds [0.7, 1.4] leave room for the encoder's rounding at 8 bits (2%).
    for (const bits of [MIN_FLOOD_BITS, 30, 50, 51, real.params.floodBits, MAX_FLOOD_BITS]) {
      const before = CkksCiphertext.liveCount;
      const z = smudgingZero(context, keys, 2 ** scaleBits, bits);
      let values: Float64Array;
      try {
        values = ring.decrypt(z);
      } finally {
        z.free();
      }
      assert.equal(CkksCiphertext.liveCount, before, `floodBits ${bits}: a temporary ciphertext was not freed`);
      const ratio = variance(values) / (2 ** bits * perBit) ** 2;
      assert.ok(ratio > 0.7 && ratio < 1.4, `floodBits ${bits}: variance ${ratio}× the claimed`);
    }
  } finally {
    keys.dispose();
    ring.dispose();
    context.dispose();
  }
});
