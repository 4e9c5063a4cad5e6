/**
 * Interactive Paillier inference from the client's side (docs/security.md, "What the client sees,
 * per round"): an honest-but-curious client records every round and tries to recover the raw
 * pre-activations; each attack is also run against a deliberately weakened service built here
 * (the published scheme: outputs in their own order behind one public factor), where it must
 * succeed, so every assertion below demonstrably can fail. 512-bit keys (the structure is what is
 * tested, not the key size).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clip, Conv2d, Dense, Flatten, LeakyRelu, MaxPool2d, Model, Relu, Tanh } from '../../src/nn/index.js';
import { PaillierInferenceClient, compileModel, planModel, type CompiledPaillierModel } from '../../src/protocol/paillier-inference/index.js';
import { blindingFactor, blindingNoise, randomPermutation } from '../../src/protocol/paillier-inference/session-math.js';
import { abs, bitLength } from '../../src/math/bigint.js';
import { gcd, modInv } from '../../src/math/modular.js';
import { smallKeys } from '../helpers/keys.js';
import { FALSE_ALARM, Z_FALSE_ALARM, chiSquareUniform, spearman } from './stats.js';
import { PublishedSchemeEvaluator, RecordingEvaluator, clientView, decryptSigned, randomnessOf, serviceWith, type SessionView } from './paillier-harness.js';

const keys = smallKeys();

/** Deterministic pseudo-random numbers in [−1, 1) (the model and inputs are public test data). */
function wave(length: number, phase: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin(i * 12.9898 + phase * 78.233) * 0.5 + Math.cos(i * 4.1 + phase) * 0.5);
}

// A dense model: 32 inputs → 96 ReLU units → 4 outputs (one round of 96 blinded values).
const dense = new Model([32], [
  new Dense({ inFeatures: 32, outFeatures: 96, weights: wave(32 * 96, 1), bias: wave(96, 2).map((v) => v * 0.2) }),
  new Relu(),
  new Dense({ inFeatures: 96, outFeatures: 4, weights: wave(96 * 4, 3) }),
]);
const inputs = (count: number, phase: number): Float32Array => wave(32 * count, phase).map((v) => (v + 1) / 2);
const denseCompiled = compileModel(dense, inputs(40, 10));

// A convolution with ReLU + 2×2 max-pool: 36 windows of 4 cells sharing a factor.
const pooled = new Model([1, 8, 8], [
  new Conv2d({ outChannels: 4, inChannels: 1, kernel: [3, 3], weights: wave(36, 4), bias: wave(4, 5).map((v) => v * 0.1) }),
  new Relu(),
  new MaxPool2d({ kernel: [2, 2] }),
  new Flatten(),
  new Dense({ inFeatures: 36, outFeatures: 4, weights: wave(144, 6) }),
]);
const images = (count: number, phase: number): Float32Array => wave(64 * count, phase).map((v) => (v + 1) / 2);
const pooledCompiled = compileModel(pooled, images(40, 11));

const { blindBits, blindMantissaBits } = denseCompiled.params;
/** The published scheme's public factor: above every real factor, so the service's noise stays below half of it. */
const PUBLIC_FACTOR = 1n << BigInt(blindMantissaBits + 1 + blindBits);

/** Runs one latency-mode session per input against a service using `evaluator`; returns the client's views. */
async function sessions(evaluator: RecordingEvaluator, model = denseCompiled, samples: Float32Array[] = []): Promise<SessionView[]> {
  const service = serviceWith(model, evaluator);
  const { transport, sessions: views } = clientView(service, keys);
  const client = new PaillierInferenceClient(transport, { keys });
  for (const x of samples) {
    // The published scheme's later rounds are wrong (only its first round is the point here).
    await client.predict('m', x).catch((err: unknown) => {
      if (!(evaluator instanceof PublishedSchemeEvaluator)) throw err;
    });
  }
  return views;
}

/** The raw first-round pre-activations (unit order) of each session, from the service's own records. */
function truths(evaluator: RecordingEvaluator): bigint[][] {
  return evaluator.packs.filter((p) => p.factors).map((p) => p.stageOutputs.map((c) => decryptSigned(keys, c)));
}

const firstRound = (v: SessionView): number[] => v.rounds[0]!.values.map((x) => Number(x[0]!));

/**
 * Known-plaintext attack: the client is handed the raw pre-activations of image A (as the published
 * scheme would show them) and solves for the factor of each position from its view of A; it then
 * divides its view of image B by those factors. Returns the fraction of positions (|v| ≥ 64 in
 * both images) recovered to within 1%.
 */
function knownPlaintextRecovery(viewA: number[], truthA: bigint[], viewB: number[], truthB: bigint[]): number {
  let tried = 0;
  let hit = 0;
  for (let i = 0; i < viewA.length; i++) {
    const a = Number(truthA[i]!);
    const b = Number(truthB[i]!);
    if (Math.abs(a) < 64 || Math.abs(b) < 64) continue;
    tried++;
    const factor = viewA[i]! / a;
    if (Math.abs(viewB[i]! / factor - b) <= 0.01 * Math.abs(b)) hit++;
  }
  assert.ok(tried >= 20, `only ${tried} positions to attack`);
  return hit / tried;
}

async function knownPlaintextAttack(evaluator: RecordingEvaluator): Promise<number> {
  const pairs = 3;
  const views = await sessions(evaluator, denseCompiled, Array.from({ length: 2 * pairs }, (_, k) => inputs(1, 20 + k)));
  const truth = truths(evaluator);
  let total = 0;
  for (let k = 0; k < pairs; k++) total += knownPlaintextRecovery(firstRound(views[2 * k]!), truth[2 * k]!, firstRound(views[2 * k + 1]!), truth[2 * k + 1]!);
  return total / pairs;
}

test('a known-plaintext image does not let the client solve for the blinding factors (it does against the published scheme)', async () => {
  const published = await knownPlaintextAttack(new PublishedSchemeEvaluator(PUBLIC_FACTOR));
  assert.ok(published > 0.95, `the attack must work on the published scheme: ${published}`);
  const real = await knownPlaintextAttack(new RecordingEvaluator());
  // Margin: a recovery rate of 0.15 is 20 points above what random pairings give (about 1-3%).
  assert.ok(real < 0.15, `positions recovered to 1% against the real service: ${real}`);
});

/**
 * Known-plaintext attack on magnitudes that ignores positions (so shuffling alone does not stop
 * it): handed image A's true pre-activations, the client fits the one scale that maps its sorted
 * view of A onto them, then reads image B's off its sorted view of B. Returns the fraction of B's
 * larger positive values (≥ 20% of the largest) recovered to within 2%.
 */
async function sortedMagnitudeAttack(evaluator: RecordingEvaluator, model: CompiledPaillierModel): Promise<number> {
  const views = await sessions(evaluator, model, [inputs(1, 50), inputs(1, 51)]);
  const [truthA, truthB] = truths(evaluator);
  assert.ok(truthA && truthB, 'the round went out without blinding factors');
  const positives = (v: readonly (number | bigint)[]): number[] => v.map(Number).filter((x) => x > 0).sort((a, b) => b - a);
  const [sa, ta, sb, tb] = [positives(firstRound(views[0]!)), positives(truthA), positives(firstRound(views[1]!)), positives(truthB)];
  const ratios = sa.slice(0, Math.min(sa.length, ta.length)).map((x, i) => x / ta[i]!).sort((a, b) => a - b);
  const scale = ratios[ratios.length >> 1]!;
  let tried = 0;
  let hit = 0;
  for (let i = 0; i < Math.min(sb.length, tb.length) && tb[i]! >= 0.2 * tb[0]!; i++) {
    tried++;
    if (Math.abs(sb[i]! / scale - tb[i]!) <= 0.02 * tb[i]!) hit++;
  }
  assert.ok(tried >= 8, `only ${tried} values to attack`);
  return hit / tried;
}

test('LeakyReLU and Clip rounds are blinded like ReLU rounds: magnitudes stay hidden from a known-plaintext attack (not behind one public factor)', async () => {
  // 32 inputs → 48 units → 4 outputs; Clip(−0.5, 0.5) sends x + 0.5 and x − 0.5 of every unit
  // (96 values) into one blinded round.
  const first = (): Dense => new Dense({ inFeatures: 32, outFeatures: 48, weights: wave(32 * 48, 7), bias: wave(48, 8).map((v) => v * 0.2) });
  const last = (): Dense => new Dense({ inFeatures: 48, outFeatures: 4, weights: wave(48 * 4, 9) });
  for (const [name, activation, sent] of [['LeakyReLU', new LeakyRelu(0.1), 48], ['Clip', new Clip(-0.5, 0.5), 96]] as const) {
    const compiled = compileModel(new Model([32], [first(), activation, last()]), inputs(40, 12));
    const evaluator = new RecordingEvaluator();
    const published = await sortedMagnitudeAttack(new PublishedSchemeEvaluator(PUBLIC_FACTOR), compiled);
    assert.ok(published > 0.9, `${name}: the attack must work behind one public factor: ${published}`);
    const real = await sortedMagnitudeAttack(evaluator, compiled);
    // Margin: fresh factors over 4 octaves leave a few percent of values right by chance.
    assert.ok(real < 0.3, `${name}: values recovered to 2% through the blinding: ${real}`);
    assert.equal(evaluator.packs.find((p) => p.factors)!.values.length, sent, `${name}: values in the blinded round`);
  }
});

/** Mean Spearman correlation, position by position, of the first round of consecutive sessions on one input. */
async function orderCorrelation(evaluator: RecordingEvaluator, pairs: number): Promise<number> {
  const x = inputs(1, 30);
  const views = await sessions(evaluator, denseCompiled, Array.from({ length: 2 * pairs }, () => x));
  let sum = 0;
  for (let k = 0; k < pairs; k++) sum += spearman(firstRound(views[2 * k]!), firstRound(views[2 * k + 1]!));
  return sum / pairs;
}

test('two sessions on one input: the orders are unrelated (with a fixed order, they are the same)', async () => {
  const pairs = 4;
  const n = denseCompiled.plan.stages[0]!.activation!.outputSize;
  // Under fresh uniform permutations the mean of `pairs` Spearman correlations has mean 0 and
  // variance 1/(pairs·(n−1)) whatever the values: one-sided false alarm 1e-6 at this threshold.
  const threshold = Z_FALSE_ALARM / Math.sqrt(pairs * (n - 1));
  const fixedOrder = await orderCorrelation(new PublishedSchemeEvaluator(PUBLIC_FACTOR, true), pairs);
  assert.ok(fixedOrder > threshold, `fixed order, fresh factors: correlation ${fixedOrder} must exceed ${threshold}`);
  const real = await orderCorrelation(new RecordingEvaluator(), pairs);
  assert.ok(real < threshold, `correlation of orders across sessions ${real} ≥ ${threshold} (false alarm ${FALSE_ALARM})`);
});

test('blinding factors: exponents uniform in {0..blindBits}, mantissas uniform, fresh in every session', async () => {
  const evaluator = new RecordingEvaluator();
  await sessions(evaluator, denseCompiled, Array.from({ length: 12 }, (_, k) => inputs(1, 40 + k)));
  const factors = evaluator.packs.flatMap((p) => p.factors ?? []);
  assert.ok(factors.length >= 1000);
  const exponents = new Array<number>(blindBits + 1).fill(0);
  const mantissas = new Array<number>(16).fill(0);
  for (const r of factors) {
    const s = bitLength(r) - (blindMantissaBits + 1);
    exponents[s]!++;
    mantissas[Number((r >> BigInt(s + blindMantissaBits - 4)) & 15n)]!++;
  }
  assert.ok(chiSquareUniform(exponents).pValue >= FALSE_ALARM, `exponent counts ${exponents}`);
  assert.ok(chiSquareUniform(mantissas).pValue >= FALSE_ALARM, `mantissa top-bit counts ${mantissas}`);
});

test('the blinding exponent is sampled without bias even where 256 is not a multiple of blindBits + 1', () => {
  // blindBits = 170: a byte reduced mod 171 would put 170/256 ≈ 0.664 of the draws on the
  // exponents 0..84, where uniform sampling puts 85/171 ≈ 0.497. 4,000 draws: the count below 85
  // has standard deviation 31.6 under uniformity; the bound 5.33σ has two-sided false alarm 1e-7,
  // and the biased sampler lands 21σ away (power 1 − 10^-60).
  const draws = 4000;
  const p = 85 / 171;
  let low = 0;
  for (let i = 0; i < draws; i++) if (bitLength(blindingFactor(170, 0)) - 1 < 85) low++;
  assert.ok(Math.abs(low - draws * p) <= 5.33 * Math.sqrt(draws * p * (1 - p)), `${low} of ${draws} exponents below 85`);
  // The default-sized case, blindBits = 6: uniform over the seven exponents (χ², 6 df).
  const counts = new Array<number>(7).fill(0);
  for (let i = 0; i < 14_000; i++) counts[bitLength(blindingFactor(6, 0)) - 1]!++;
  assert.ok(chiSquareUniform(counts).pValue >= FALSE_ALARM, `exponent counts ${counts}`);
});

test('blinding noise: uniform over [−(r−1)/2, (r−1)/2], each value its own draw; r outside [1, 2^31) refused', () => {
  const r = 101n;
  const counts = new Array<number>(101).fill(0);
  for (let k = 0; k < 200; k++) for (const e of blindingNoise(r, 100)) counts[e + 50]!++;
  // 20,000 draws over 101 values (about 198 each): χ², false alarm 1e-6; any value outside the
  // range lands out of the array and fails the count.
  assert.equal(counts.reduce((a, b) => a + b), 20_000);
  assert.ok(chiSquareUniform(counts).pValue >= FALSE_ALARM, `noise counts ${counts}`);
  assert.throws(() => blindingNoise(0n, 1), RangeError);
  assert.throws(() => blindingNoise(1n << 31n, 1), RangeError);
  assert.deepEqual(blindingNoise(1n, 3), [0, 0, 0], 'r = 1 leaves no room for noise');
});

test('permutations are uniform over all n! orders', () => {
  // 120 orders of 5 elements, 24,000 draws (200 expected per order).
  const counts = new Array<number>(120).fill(0);
  const index = (p: Int32Array): number => {
    // Lehmer code.
    let code = 0;
    for (let i = 0; i < 5; i++) {
      let smaller = 0;
      for (let j = i + 1; j < 5; j++) if (p[j]! < p[i]!) smaller++;
      code = code * (5 - i) + smaller;
    }
    return code;
  };
  for (let i = 0; i < 24_000; i++) counts[index(randomPermutation(5))]!++;
  assert.ok(chiSquareUniform(counts).pValue >= FALSE_ALARM);
});

test('max-pool windows: the cells of a window go out in a uniformly random order', async () => {
  const evaluator = new RecordingEvaluator();
  await sessions(evaluator, pooledCompiled, Array.from({ length: 8 }, (_, k) => images(1, 50 + k)));
  const windows = pooledCompiled.plan.stages[0]!.activation!.windows!;
  const counts = [0, 0, 0, 0];
  const perms = evaluator.permutations();
  evaluator.packs.forEach((p, i) => {
    if (!p.factors) return;
    const sent = perms[i]!;
    // Sent values come window by window; where did each window's first cell go?
    for (let w = 0; w < sent.length; w += 4) {
      const unit = windows.findIndex((cells) => cells.includes(sent[w]!));
      const first = windows[unit]![0]!;
      counts[sent.slice(w, w + 4).indexOf(first)]!++;
    }
  });
  assert.ok(counts.reduce((a, b) => a + b) >= 250);
  assert.ok(chiSquareUniform(counts).pValue >= FALSE_ALARM, `position of a window's first cell: ${counts}`);
});

test('no common factor: the gcd of a window’s cells is below 2^8 (a window shares its factor r ≥ 2^8)', async () => {
  const evaluator = new RecordingEvaluator();
  const views = await sessions(evaluator, pooledCompiled, Array.from({ length: 4 }, (_, k) => images(1, 60 + k)));
  let large = 0;
  let windows = 0;
  for (const v of views) {
    const seen = v.rounds[0]!.values.map((x) => x[0]!);
    for (let w = 0; w < seen.length; w += 4) {
      const cells = seen.slice(w, w + 4).filter((c) => c !== 0n);
      if (cells.length < 3) continue;
      windows++;
      if (cells.map(abs).reduce(gcd) >= 256n) large++;
    }
  }
  assert.ok(windows >= 50);
  // The documented leak: a window's cells share their factor, so their ratios come through (up to
  // the noise, |e| < r/2): compare with the service's own stage outputs, window by window.
  const perms = evaluator.permutations();
  const blindedRounds = evaluator.packs.map((p, i) => ({ p, perm: perms[i]! })).filter(({ p }) => p.factors);
  let kept = 0;
  let compared = 0;
  blindedRounds.forEach(({ p, perm }, session) => {
    const truth = p.stageOutputs.map((c) => Number(decryptSigned(keys, c)));
    const seen = views[session]!.rounds[0]!.values.map((x) => Number(x[0]!));
    for (let w = 0; w < seen.length; w += 4) {
      const [a, b] = [truth[perm[w]!]!, truth[perm[w + 1]!]!];
      if (Math.abs(a) < 64 || Math.abs(b) < 64) continue;
      compared++;
      if (Math.abs(seen[w]! / seen[w + 1]! - a / b) <= 0.02 * Math.abs(a / b)) kept++;
    }
  });
  assert.ok(compared >= 20 && kept === compared, `ratios inside windows: ${kept}/${compared}`);
  // Without the additive noise every such gcd is a multiple of r ≥ 2^8; with it, three or four
  // unrelated integers share a factor ≥ 256 with probability far below 1e-4.
  assert.ok(large <= windows * 0.02, `${large} of ${windows} windows have a common factor ≥ 2^8`);
});

test('batch mode: the K samples of a value share one factor (documented), with no common factor left to find', async () => {
  const evaluator = new RecordingEvaluator();
  const service = serviceWith(denseCompiled, evaluator);
  const { transport, sessions: views } = clientView(service, keys);
  const client = new PaillierInferenceClient(transport, { keys, mode: 'batch', batch: 4 });
  await client.predict('m', inputs(4, 70));
  assert.equal(views[0]!.rounds[0]!.values[0]!.length, 4, 'four samples per value');
  const seen = views[0]!.rounds[0]!.values;
  const truth = evaluator.packs.find((p) => p.factors)!;
  let ratiosKept = 0;
  let tried = 0;
  let common = 0;
  seen.forEach((slots, i) => {
    // The value per sample, unblinded with the service's own factor for it.
    const factor = Number(truth.factors![i]!);
    const v = slots.map((s) => Number(s) / factor);
    // Every slot gets its own noise: no two samples' values keep the shared factor r ≥ 2^8 as a
    // common divisor (two unrelated integers share one ≥ 256 with probability about 0.2%).
    const nonzero = slots.filter((s) => s !== 0n);
    let pairs = false;
    for (let a = 0; a < nonzero.length; a++) for (let b = a + 1; b < nonzero.length; b++) pairs ||= gcd(nonzero[a]!, nonzero[b]!) >= 256n;
    if (pairs) common++;
    if (Math.abs(v[0]!) > 64 && Math.abs(v[1]!) > 64) {
      tried++;
      // The leak: ratios across the client's own samples survive (up to the noise, |e| < r/2).
      if (Math.abs(Number(slots[0]!) / Number(slots[1]!) - v[0]! / v[1]!) < 0.02 * Math.abs(v[0]! / v[1]!)) ratiosKept++;
    }
  });
  assert.ok(tried >= 10 && ratiosKept === tried, `ratios across samples: ${ratiosKept}/${tried}`);
  assert.ok(common <= seen.length * 0.05, `${common} of ${seen.length} values have two samples sharing a factor ≥ 2^8`);
});

test('every ciphertext the service sends is re-randomized: never the deterministic result of its own computation', async () => {
  for (const [model, samples, mode] of [
    [denseCompiled, [inputs(1, 80)], 'latency'],
    [pooledCompiled, [images(1, 81)], 'latency'],
    [denseCompiled, [inputs(3, 82)], 'batch'],
  ] as const) {
    const evaluator = new RecordingEvaluator();
    const service = serviceWith(model, evaluator);
    const { transport, sessions: views } = clientView(service, keys);
    const client = new PaillierInferenceClient(transport, { keys, mode, batch: 3 });
    for (const x of samples) await client.predict('m', x);
    const deterministic = new Set(evaluator.deterministic().map((c) => randomnessOf(keys.privateKey, c)));
    const rerandomizers = new Set(evaluator.noises.flat());
    const sent = views.flatMap((v) => [...v.rounds.flatMap((r) => r.ciphertexts), ...(v.result?.ciphertexts ?? [])]);
    assert.ok(sent.length > 0);
    for (const c of sent) {
      const randomness = randomnessOf(keys.privateKey, c);
      assert.ok(!deterministic.has(randomness), `${mode}: a ciphertext left the service as computed, without fresh randomness`);
      assert.ok(randomness !== 1n);
    }
    // The comparison is meaningful: dividing out one of the service's re-randomizers finds its computation.
    const { nSquared } = keys.publicKey;
    const found = sent.filter((c) => {
      const r = randomnessOf(keys.privateKey, c);
      for (const rho of rerandomizers) {
        const inv = modInv(rho, nSquared);
        if (deterministic.has((r * inv) % nSquared)) return true;
      }
      return false;
    });
    assert.equal(found.length, sent.length, `${mode}: every sent ciphertext is a recorded computation times one fresh re-randomizer`);
  }
});

test('sigmoid/tanh rounds: the client sees that layer’s pre-activations in the clear, shuffled (documented)', async () => {
  const model = new Model([32], [
    new Dense({ inFeatures: 32, outFeatures: 24, weights: wave(32 * 24, 7) }),
    new Tanh(),
    new Dense({ inFeatures: 24, outFeatures: 4, weights: wave(96, 8) }),
  ]);
  const compiled = compileModel(model, inputs(20, 12));
  assert.equal(planModel(model).stages[0]!.activation!.homogeneous, false);
  const evaluator = new RecordingEvaluator();
  const views = await sessions(evaluator, compiled, [inputs(1, 90)]);
  const round = views[0]!.rounds[0]!;
  assert.ok(round.scale !== null, 'the scale Q is public in a tanh round');
  const seen = round.values.map((v) => v[0]!).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const truth = evaluator.evaluated.at(-2)!.map((c) => decryptSigned(keys, c)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.deepEqual(seen, truth, 'the multiset of pre-activations, exactly');
});
