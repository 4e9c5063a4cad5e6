import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Model, Relu, Softmax, Tanh, argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { CkksCiphertext, CkksContext, CkksKeyring } from '../../src/schemes/ckks/index.js';
import { FormatError, InvalidCiphertextError, KeyMismatchError } from '../../src/errors.js';
import { buildSparseMap, applyMap } from '../../src/tensor/sparse-linear.js';
import {
  CkksInferenceClient, CkksInferenceService, OutOfOrderError, UnknownKeysError, UnknownSessionError,
  DEFAULT_CKKS_PROTOCOL, clientActivations, compileCkksModel, inProcessCkksTransport, type CompiledCkksModel,
} from '../../src/protocol/ckks-inference/index.js';
import { foldSteps, outputOrder, routeStage } from '../../src/protocol/ckks-inference/layout.js';
import { diagonalValues, planDiagonal } from '../../src/protocol/ckks-inference/diagonal.js';
import { planShared, sharedCounts, sharedGroups } from '../../src/protocol/ckks-inference/shared.js';
import { planStage } from '../../src/protocol/ckks-inference/stage-plan.js';
import { LAYOUT_COST } from '../../src/protocol/ckks-inference/layout.js';
import { encodePlaintexts, type ProductTask } from '../../src/protocol/ckks-inference/products.js';
import { CkksProductPool, splitTask } from '../../src/workers/ckks-products-pool.js';

const small = importOnnx(readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url)));
const sample = loadFashionMnistSample({ limit: 104 });
const calibration = sample.images.subarray(0, 100 * 784);
const evalImages = sample.images.subarray(100 * 784);
const plainEval = runPlaintext(small, evalImages);

/** A service for `model` and a client connected to it, both disposed after `fn` (also when it throws). */
async function withClient(
  model: CompiledCkksModel,
  options: Parameters<typeof CkksInferenceService.create>[1],
  fn: (service: CkksInferenceService, client: CkksInferenceClient) => Promise<void>,
): Promise<void> {
  const service = await CkksInferenceService.create(model, options);
  try {
    const client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(model));
    try {
      await fn(service, client);
    } finally {
      client.dispose();
    }
  } finally {
    service.dispose();
  }
}

/**
 * Predicts the first `count` evaluation images with the default model and checks every logit
 * against the plaintext executor's within 0.05; `after(i)` runs after image i.
 */
async function assertPredictsPlain(client: CkksInferenceClient, count: number, label = '', after?: (i: number, logits: Float64Array) => void): Promise<void> {
  for (let i = 0; i < count; i++) {
    const { logits } = await client.predict(evalImages.subarray(i * 784, (i + 1) * 784));
    logits.forEach((v, j) => assert.ok(Math.abs(v - plainEval[i * 10 + j]!) < 0.05, `${label}image ${i} logit ${j}: ${v} vs ${plainEval[i * 10 + j]}`));
    after?.(i, logits);
  }
}

test('routing + fold computes the map (plaintext simulation of the service, any map and order)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 2 ** 31 }), fc.constantFrom(16, 64),
      (rows, cols, seed, slots) => {
        let s = seed;
        const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
        const bias = Float64Array.from({ length: rows }, rnd);
        const map = buildSparseMap(rows, cols, bias, (_r, add) => {
          for (let c = 0; c < cols; c++) if (rnd() < 0.4) add(c, rnd() * 2 - 1);
        });
        const x = Float64Array.from({ length: cols }, rnd);
        const { rowAt } = outputOrder(rows, null, true);
        const want = applyMap(map, x);
        for (const g of routeStage(map, rowAt, slots, (j) => j)) {
          const acc = new Float64Array(slots);
          g.terms.forEach((terms, c) => terms.forEach((k, slot) => {
            if (k >= 0) acc[slot] = acc[slot]! + map.weights[k]! * x[g.sources[c]![slot]!]!;
          }));
          for (let p = 0; p < g.size; p++) acc[p] = acc[p]! + map.bias[rowAt[g.start + p]!]!;
          for (const step of foldSteps(g.period, slots)) {
            const rotated = Float64Array.from(acc, (_, i) => acc[(i + step) % slots]!);
            rotated.forEach((v, i) => (acc[i] = acc[i]! + v));
          }
          for (let p = 0; p < g.size; p++) assert.ok(Math.abs(acc[p]! - want[rowAt[g.start + p]!]!) < 1e-9);
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('the diagonal method with baby and giant steps computes a dense map (plaintext simulation)', () => {
  const rotate = (v: Float64Array, step: number) => Float64Array.from(v, (_, i) => v[(i + step) % v.length]!);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 150 }), fc.integer({ min: 0, max: 2 ** 31 }), fc.constantFrom(32, 64),
      (rows, cols, seed, slots) => {
        fc.pre(rows <= slots);
        let s = seed;
        const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
        const map = buildSparseMap(rows, cols, new Float64Array(rows), (_r, add) => {
          for (let c = 0; c < cols; c++) if (rnd() < 0.8) add(c, rnd() * 2 - 1);
        });
        const plan = planDiagonal(map, cols, slots)!;
        const dense = new Float64Array(rows * cols);
        for (let r = 0; r < rows; r++) for (let k = map.offsets[r]!; k < map.offsets[r + 1]!; k++) dense[r * cols + map.indices[k]!] = map.weights[k]!;
        const x = Float64Array.from({ length: cols }, rnd);
        const chunks = Array.from({ length: plan.inputs }, (_, c) => Float64Array.from({ length: slots }, (_, t) => x[c * slots + t] ?? 0));
        let acc: Float64Array | null = null;
        for (let g = plan.giant - 1; g >= 0; g--) {
          if (acc) acc = rotate(acc, plan.baby);
          acc ??= new Float64Array(slots);
          for (let c = 0; c < plan.inputs; c++) {
            for (let j = 0; j < plan.baby; j++) {
              const d = diagonalValues(plan, dense, slots, c, g, j);
              const xr = rotate(chunks[c]!, j);
              for (let t = 0; t < slots; t++) acc[t] = acc[t]! + d[t]! * xr[t]!;
            }
          }
        }
        for (const step of foldSteps(plan.period, slots)) {
          const r = rotate(acc!, step);
          for (let t = 0; t < slots; t++) acc![t] = acc![t]! + r[t]!;
        }
        const want = applyMap(map, x);
        for (let r = 0; r < rows; r++) assert.ok(Math.abs(acc![r]! - want[r]!) < 1e-9, `row ${r}: ${acc![r]} vs ${want[r]}`);
        assert.ok(plan.baby * plan.giant === plan.period && plan.inputs === Math.ceil(cols / slots));
      },
    ),
    { numRuns: 80 },
  );
});

test('shared-source pages compute the map (plaintext simulation of the service, any map, order and windows)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 2 ** 31 }), fc.constantFrom(16, 64), fc.boolean(),
      (locations, channels, cols, seed, slots, skip) => {
        let s = seed;
        const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
        // A convolution-like map: rows of one location share a random column list.
        const columns = Array.from({ length: locations }, () => Array.from({ length: cols }, (_, c) => c).filter(() => rnd() < 0.5));
        const rows = locations * channels;
        const bias = Float64Array.from({ length: rows }, rnd);
        const map = buildSparseMap(rows, cols, bias, (r, add) => {
          for (const c of columns[r % locations]!) add(c, rnd() * 2 - 1);
        });
        // Some stages compute only some rows (pool windows that leave cells out).
        const computed = Int32Array.from({ length: rows }, (_, r) => r).filter((r) => !skip || r % 3 !== 0);
        fc.pre(computed.length > 0);
        const plan = planShared(map, computed, slots, LAYOUT_COST);
        fc.pre(plan !== null);
        const order = outputOrder(computed.length, null, true).rowAt.map((i) => computed[i]!);
        const x = Float64Array.from({ length: cols }, rnd);
        const want = applyMap(map, x);
        const seen = new Set<number>();
        for (const g of sharedGroups(plan!, map, order, slots, (j) => j)) {
          assert.equal(g.sources.length, plan!.terms);
          g.outputs!.forEach((positions) => {
            const acc = new Float64Array(slots);
            positions.forEach((p, slot) => {
              if (p < 0) return;
              const row = order[p]!;
              g.sources.forEach((src, t) => {
                if (src[slot]! >= 0) acc[slot] = acc[slot]! + map.weights[map.offsets[row]! + t]! * x[src[slot]!]!;
              });
              acc[slot] = acc[slot]! + map.bias[row]!;
              assert.ok(Math.abs(acc[slot]! - want[row]!) < 1e-9);
              assert.ok(!seen.has(p), `position ${p} computed twice`);
              seen.add(p);
            });
          });
        }
        assert.equal(seen.size, order.length, 'every position computed once');
      },
    ),
    { numRuns: 80 },
  );
});

test('the cost model: shared sources for a convolution, the diagonal method for a wide dense stage, routing for small ones', () => {
  const stages = compileCkksModel(small, calibration).stages;
  const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  const routedFor = (map: (typeof stages)[number]['map']) => routeStage(map, all(map.rows), 4096, () => 0);
  for (const st of stages) assert.equal(planStage(st.map, routedFor(st.map), all(st.map.rows), st.map.cols, 4096).kind, 'routed', 'the default model\'s small stages stay routed');
  // The reference CNN's second convolution (average pool composed in): 20 × 26 × 26 → 50 × 22 × 22, 320 terms per row.
  const conv = buildSparseMap(50 * 22 * 22, 20 * 26 * 26, new Float64Array(50 * 22 * 22), (r, add) => {
    const loc = r % 484;
    const [y, x] = [Math.floor(loc / 22), loc % 22];
    for (let c = 0; c < 20; c++) for (let dy = 0; dy < 4; dy++) for (let dx = 0; dx < 4; dx++) add(c * 676 + (y + dy) * 26 + x + dx, 1);
  });
  const convPlan = planStage(conv, routedFor(conv), all(conv.rows), conv.cols, 4096);
  assert.equal(convPlan.kind, 'shared');
  if (convPlan.kind === 'shared') {
    assert.deepEqual(sharedCounts(convPlan.plan), { uploads: 320, products: 320 * 7 });
    assert.equal(convPlan.plan.classRows.length, 484);
  }
  if (convPlan.kind === 'shared') {
    // Channels are dealt to a location's cells at random, independently per location: one output
    // ciphertext holds many channels, and a channel's outputs are spread over every ciphertext.
    const rowAt = outputOrder(conv.rows, null, true).rowAt;
    const [page] = sharedGroups(convPlan.plan, conv, rowAt, 4096, (j) => j);
    const channelsIn = page!.outputs!.map((positions) => new Set(Array.from(positions).filter((p) => p >= 0).map((p) => Math.floor(rowAt[p]! / 484))));
    for (const channels of channelsIn) assert.ok(channels.size >= 45, `an output ciphertext holds ${channels.size} channels`);
    const second = sharedGroups(convPlan.plan, conv, rowAt, 4096, (j) => j)[0]!;
    assert.notDeepEqual(Array.from(second.outputs![0]!), Array.from(page!.outputs![0]!), 'fresh cells per session');
  }
  const wide = buildSparseMap(256, 6_050, new Float64Array(256), (_r, add) => {
    for (let c = 0; c < 6_050; c += 1) add(c, 1);
  });
  const plan = planStage(wide, routedFor(wide), all(256), 6_050, 4096);
  assert.equal(plan.kind, 'diagonal', 'the reference CNN\'s dense stage goes diagonal');
  if (plan.kind === 'diagonal') assert.equal(plan.plan.inputs, 2);
  assert.equal(planStage(wide, routedFor(wide), all(256), 6_050, 4096, 'routed').kind, 'routed');
  assert.equal(planStage(wide, routedFor(wide), all(255), 6_050, 4096, 'diagonal').kind !== 'diagonal', true, 'not every row computed: no diagonal plan');
});

describe('interactive CKKS inference', async () => {
  const compiled = compileCkksModel(small, calibration);
  let service: CkksInferenceService;
  let client: CkksInferenceClient;
  before(async () => {
    service = await CkksInferenceService.create(compiled);
    client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(compiled));
  });
  after(() => {
    client.dispose();
    service.dispose();
  });

  test('the default model agrees with plaintext on real images, and every session closes', async () => {
    const plain = runPlaintext(small, evalImages);
    client.precompute(2 * client.ciphertextsPerInference.client);
    for (let i = 0; i < 4; i++) {
      const { logits, stats } = await client.predict(evalImages.subarray(i * 784, (i + 1) * 784));
      logits.forEach((v, j) => assert.ok(Math.abs(v - plain[i * 10 + j]!) < 0.05, `image ${i} logit ${j}: ${v} vs ${plain[i * 10 + j]}`));
      assert.equal(stats.rounds, 3);
      assert.ok(stats.bytesUp > 0 && stats.bytesDown > 0);
    }
    assert.equal(service.openSessions, 0);
  });

  test('the client sees shuffled, blinded pre-activations: two sessions on one image differ', async () => {
    const seen: Float64Array[] = [];
    const spy = {
      describe: async () => service.describe(),
      registerKeys: async (r: Parameters<CkksInferenceService['registerKeys']>[0]) => service.registerKeys(r),
      open: async (r: unknown) => service.open(r),
      round: async (r: unknown) => {
        const reply = await service.round(r);
        return reply;
      },
    };
    const c2 = await CkksInferenceClient.connect(spy, clientActivations(compiled));
    const ring = (c2 as unknown as { keyring: CkksKeyring }).keyring;
    spy.round = async (r: unknown) => {
      const reply = await service.round(r);
      if (reply.stage === 0) {
        const ct = CkksCiphertext.load(ring.context, ring.keyId, reply.outputs[0]!);
        seen.push(ring.decrypt(ct).subarray(0, 216));
        ct.free();
      }
      return reply;
    };
    const image = evalImages.subarray(0, 784);
    await c2.predict(image);
    await c2.predict(image);
    c2.dispose();
    const truth = applyMapToImage(image);
    const [a, b] = seen as [Float64Array, Float64Array];
    // Same multiset of signs as the true pre-activations, but neither the order nor the magnitudes.
    // Only values within the smudging noise of zero (|y| < 1e-3 of the range) may flip sign.
    const positives = (v: ArrayLike<number>, above = 0) => Array.from(v).filter((x) => x > above).length;
    const eps = 1e-3 * Math.max(...Array.from(truth, Math.abs));
    for (const seenValues of [a, b]) {
      assert.ok(positives(seenValues) >= positives(truth, eps) && positives(seenValues) <= positives(truth, -eps), 'sign counts survive blinding');
    }
    assert.ok(a.some((v, i) => Math.abs(v - b[i]!) > 1e-3), 'fresh order and factors per session');
    assert.ok(a.some((v, i) => Math.abs(v - truth[i]!) > 1e-3), 'not the raw pre-activations');
  });

  function applyMapToImage(image: Float32Array): Float64Array {
    return applyMap(compiled.stages[0]!.map, image);
  }

  test('messages out of order, for unknown sessions or keys, or malformed, are refused and close the session', async () => {
    const keyId = client.keyId;
    assert.throws(() => service.open({ version: 1, keyId: '0'.repeat(32) }), UnknownKeysError);
    assert.throws(() => service.open({ version: 1 }), FormatError);
    await assert.rejects(service.round({ version: 1, sessionId: 'nope', stage: 0, inputs: [[new Uint8Array(4)]] }), UnknownSessionError);
    const opened = service.open({ version: 1, keyId });
    await assert.rejects(service.round({ version: 1, sessionId: opened.sessionId, stage: 1, inputs: [[new Uint8Array(4)]] }), OutOfOrderError);
    await assert.rejects(service.round({ version: 1, sessionId: opened.sessionId, stage: 0, inputs: [[new Uint8Array(4)]] }), UnknownSessionError);
    const again = service.open({ version: 1, keyId });
    await assert.rejects(service.round({ version: 1, sessionId: again.sessionId, stage: 0, inputs: 'x' }), FormatError);
    assert.equal(service.openSessions, 1, 'a malformed message does not reach the session');
    service.close(again.sessionId);
    assert.equal(service.openSessions, 0);
  });

  test('ciphertexts under another key, at the wrong scale, or truncated are refused', async () => {
    const ring = (client as unknown as { keyring: CkksKeyring }).keyring;
    const other = CkksKeyring.generate(ring.context);
    const groups = () => service.open({ version: 1, keyId: client.keyId });
    const count = (o: ReturnType<typeof groups>) => o.routing.groups[0]!.sources.length;
    const cases: Array<[(o: ReturnType<typeof groups>) => Uint8Array, new (...a: never[]) => Error]> = [
      [() => { const c = other.encrypt([1]); const b = c.save(); c.free(); return b; }, KeyMismatchError],
      [() => { const c = ring.encrypt([1], 2 ** 30); const b = c.save(); c.free(); return b; }, InvalidCiphertextError],
      [() => { const c = ring.encrypt([1], 2 ** 45); const b = c.save(); c.free(); return b.subarray(0, b.length - 1000); }, FormatError],
    ];
    for (const [make, error] of cases) {
      const o = groups();
      const bytes = make(o);
      await assert.rejects(service.round({ version: 1, sessionId: o.sessionId, stage: 0, inputs: [Array.from({ length: count(o) }, () => bytes)] }), error);
      assert.equal(service.openSessions, 0);
    }
    other.dispose();
  });

  test('abandoned sessions do not pile up: past maxSessions the oldest is dropped', async () => {
    const first = service.open({ version: 1, keyId: client.keyId });
    for (let i = 0; i < service.maxSessions; i++) service.open({ version: 1, keyId: client.keyId });
    assert.equal(service.openSessions, service.maxSessions);
    await assert.rejects(service.round({ version: 1, sessionId: first.sessionId, stage: 0, inputs: [[new Uint8Array(4)]] }), UnknownSessionError);
  });

  test('keys without the rotations the model needs are refused', () => {
    const ring = (client as unknown as { keyring: CkksKeyring }).keyring;
    const bundle = ring.exportPublic({ galoisSteps: [1] });
    assert.throws(() => service.registerKeys({ version: 1, publicKey: bundle.publicKey, galoisKeys: bundle.galoisKeys! }), FormatError);
  });
});

test('max-pool (blinded windows), tanh (unblinded) and softmax models run through the CKKS protocol', async () => {
  const conv = new Conv2d({ outChannels: 2, inChannels: 1, kernel: [3, 3], weights: Float32Array.from({ length: 18 }, (_, i) => Math.sin(i + 1)), bias: Float32Array.of(0.1, -0.2) });
  const dense = new Dense({ inFeatures: 2 * 3 * 3, outFeatures: 4, weights: Float32Array.from({ length: 72 }, (_, i) => Math.cos(i)) });
  const dense2 = new Dense({ inFeatures: 4, outFeatures: 3, weights: Float32Array.from({ length: 12 }, (_, i) => Math.sin(3 * i)) });
  const inputs = Float32Array.from({ length: 64 * 3 }, (_, i) => ((i * 37) % 101) / 100);
  for (const layers of [
    [conv, new Relu(), new MaxPool2d({ kernel: [2, 2] }), new Flatten(), dense, new Tanh(), dense2, new Softmax()],
    [conv, new MaxPool2d({ kernel: [2, 2] }), new Relu(), new Flatten(), dense],
  ]) {
    const model = new Model([1, 8, 8], layers);
    const compiled = compileCkksModel(model, inputs);
    const service = await CkksInferenceService.create(compiled);
    const client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(compiled));
    try {
      for (let k = 0; k < 2; k++) {
        const x = inputs.subarray(k * 64, (k + 1) * 64);
        const { logits } = await client.predict(x);
        const want = runPlaintext(model, x);
        const got = layers[layers.length - 1] instanceof Softmax ? softmax(logits) : logits;
        got.forEach((v, j) => assert.ok(Math.abs(v - want[j]!) < 1e-3, `${v} vs ${want[j]}`));
        assert.deepEqual(Array.from(argmaxRows(got, got.length)), Array.from(argmaxRows(want, want.length)));
      }
    } finally {
      client.dispose();
      service.dispose();
    }
  }
});

test('every stage by the diagonal method (client-side baby steps) agrees with plaintext', async () => {
  const diagonal = compileCkksModel(small, calibration, { ...DEFAULT_CKKS_PROTOCOL, stageLayout: 'diagonal' });
  await withClient(diagonal, {}, async (service, client) => {
    // Each stage's chunks come rotated by every baby step: C·n1 uploads per stage.
    const uploads = diagonal.stages.map((st, s) => planDiagonal(st.map, s === 0 ? 784 : diagonal.stages[s - 1]!.activation!.outputSize, 4096)!);
    assert.equal(service.describe().inputCiphertexts, uploads.reduce((a, p) => a + p.inputs * p.baby, 0), 'uploads per inference');
    await assertPredictsPlain(client, 3, '', (i, logits) => {
      assert.equal(argmaxRows(logits, 10)[0], argmaxRows(plainEval.subarray(i * 10, (i + 1) * 10), 10)[0]);
    });
    assert.equal(service.openSessions, 0);
  });
});

test('every stage by shared sources agrees with plaintext, on the service thread and on workers', async () => {
  const shared = compileCkksModel(small, calibration, { ...DEFAULT_CKKS_PROTOCOL, stageLayout: 'shared' });
  const pool = new CkksProductPool({ threads: 2 });
  try {
    await pool.prepare(shared.params.ckks);
    for (const evaluator of [undefined, pool]) {
      await withClient(shared, evaluator ? { evaluator, parallelProducts: 1 } : {}, async (service, client) => {
        const opened = service.open({ version: 1, keyId: client.keyId });
        assert.ok(opened.routing.groups.every((g) => g.outputs !== undefined), 'shared groups name their output slots');
        service.close(opened.sessionId);
        await assertPredictsPlain(client, 2);
      });
    }
  } finally {
    await pool.destroy();
  }
});

test('prepared sessions (plaintexts encoded ahead of time) give the same predictions, each used once', async () => {
  const pool = new CkksProductPool({ threads: 2 });
  try {
    for (const [layout, evaluator] of [['auto', undefined], ['auto', pool], ['shared', pool], ['diagonal', undefined]] as const) {
      const model = compileCkksModel(small, calibration, { ...DEFAULT_CKKS_PROTOCOL, stageLayout: layout });
      await pool.prepare(model.params.ckks);
      await withClient(model, evaluator ? { evaluator, parallelProducts: 1 } : {}, async (service, client) => {
        await service.prepare(2);
        assert.equal(service.preparedSessions, 2);
        assert.ok(service.preparedBytes > 0);
        await assertPredictsPlain(client, 3, `${layout} `, (i) => {
          assert.equal(service.preparedSessions, Math.max(0, 1 - i), 'each prepared session is used once, then sessions are drawn fresh');
        });
      });
    }
  } finally {
    await pool.destroy();
  }
});

test('a serialized plaintext loads back equal, and truncated or foreign bytes are refused', async () => {
  const ctx = await CkksContext.create(DEFAULT_CKKS_PROTOCOL.ckks);
  const other = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits: [50, 50, 60], scaleBits: 40 });
  try {
    const [bytes] = encodePlaintexts(ctx, 2 ** 40, [Float64Array.of(1.5, -2, 3)]);
    const plain = ctx.loadPlain(bytes!);
    const back = Array.from(ctx.encoder.decode(plain) as Float64Array).slice(0, 3);
    plain.delete();
    back.forEach((v, i) => assert.ok(Math.abs(v - [1.5, -2, 3][i]!) < 1e-6, `${v}`));
    assert.throws(() => ctx.loadPlain(bytes!.subarray(0, 1000)), FormatError);
    assert.throws(() => other.loadPlain(bytes!), FormatError);
  } finally {
    ctx.dispose();
    other.dispose();
  }
});

test('the client refuses output tables that name a position twice or leave one out', async () => {
  const shared = compileCkksModel(small, calibration, { ...DEFAULT_CKKS_PROTOCOL, stageLayout: 'shared' });
  const service = await CkksInferenceService.create(shared);
  for (const tamper of ['twice', 'missing'] as const) {
    const transport = inProcessCkksTransport(service);
    const open = transport.open;
    transport.open = async (r) => {
      const reply = (await open(r)) as Awaited<ReturnType<CkksInferenceService['open']>>;
      const outputs = reply.routing.groups[0]!.outputs!;
      const slot = outputs[0]!.findIndex((p) => p >= 0);
      const other = outputs[0]!.findIndex((p, i) => p >= 0 && i !== slot);
      if (tamper === 'twice') outputs[0]![other] = outputs[0]![slot]!;
      else outputs[0]![slot] = -1;
      return reply;
    };
    const client = await CkksInferenceClient.connect(transport, clientActivations(shared));
    try {
      await assert.rejects(client.predict(evalImages.subarray(0, 784)), FormatError, tamper);
    } finally {
      client.dispose();
    }
  }
  service.dispose();
});

test('an average pool after ReLU runs at the client, one value per window, and agrees with plaintext', async () => {
  const conv = new Conv2d({ outChannels: 3, inChannels: 1, kernel: [3, 3], weights: Float32Array.from({ length: 27 }, (_, i) => Math.sin(i + 2)), bias: Float32Array.of(0.1, -0.1, 0.05) });
  const dense = new Dense({ inFeatures: 3 * 3 * 3, outFeatures: 4, weights: Float32Array.from({ length: 108 }, (_, i) => Math.cos(2 * i)) });
  const model = new Model([1, 8, 8], [conv, new Relu(), new AvgPool2d({ kernel: [2, 2] }), new Flatten(), dense]);
  const inputs = Float32Array.from({ length: 64 * 3 }, (_, i) => ((i * 41) % 103) / 100);
  const compiled = compileCkksModel(model, inputs);
  // 3 × 6 × 6 conv outputs; the pool's 3 × 3 × 3 windows leave the last row and column out.
  assert.equal(compiled.stages[0]!.activation!.pool, 'avg');
  assert.equal(compiled.stages[0]!.activation!.outputSize, 27);
  assert.equal(compiled.stages[1]!.map.cols, 27, 'the dense stage reads one value per window');
  await withClient(compiled, {}, async (_service, client) => {
    for (let k = 0; k < 3; k++) {
      const x = inputs.subarray(k * 64, (k + 1) * 64);
      const { logits } = await client.predict(x);
      const want = runPlaintext(model, x);
      logits.forEach((v, j) => assert.ok(Math.abs(v - want[j]!) < 1e-3, `${v} vs ${want[j]}`));
    }
  });
  // The model owner can keep the pool in the service; overlapping or padded pools always stay there.
  const kept = compileCkksModel(model, inputs, { ...DEFAULT_CKKS_PROTOCOL, avgPoolAtClient: false });
  assert.equal(kept.stages[0]!.activation!.pool, null);
  assert.equal(kept.stages[1]!.map.cols, 3 * 6 * 6);
  for (const pool of [new AvgPool2d({ kernel: [2, 2], stride: [1, 1] }), new AvgPool2d({ kernel: [2, 2], pads: [1, 1, 1, 1] })]) {
    const m = new Model([1, 8, 8], [conv, new Relu(), pool, new Flatten()]);
    assert.equal(compileCkksModel(m, inputs).stages[0]!.activation!.pool, null);
  }
});

test('splitTask keeps every product once, with its input, in at most the parts asked for', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 3 })), { maxLength: 60 }), fc.integer({ min: 1, max: 6 }), (pairs, parts) => {
      const inputs = Array.from({ length: 10 }, (_, i) => Uint8Array.of(i));
      const task: ProductTask = {
        params: DEFAULT_CKKS_PROTOCOL.ckks, keyId: 'k', inputScale: 1, weightScale: 1, inputs, outputs: 4,
        terms: pairs.map(([input, output], k) => ({ input, output, values: Float64Array.of(k) })),
      };
      const split = splitTask(task, parts);
      assert.ok(split.length <= parts);
      const seen = split.flatMap((p) => p.terms.map((t) => [p.inputs[t.input]![0], t.output, t.values![0]]));
      assert.deepEqual(seen.sort((a, b) => a[2]! - b[2]!), pairs.map(([i, o], k) => [i, o, k]));
    }),
  );
});

test('rounds on worker threads give the same predictions, and a bad ciphertext still gets its typed error', async () => {
  const pool = new CkksProductPool({ threads: 2 });
  const compiled = compileCkksModel(small, calibration, { ...DEFAULT_CKKS_PROTOCOL, stageLayout: 'auto' });
  const diagonal = compileCkksModel(small, calibration, { ...DEFAULT_CKKS_PROTOCOL, stageLayout: 'diagonal' });
  try {
    await pool.prepare(compiled.params.ckks);
    for (const model of [compiled, diagonal]) {
      await withClient(model, { evaluator: pool, parallelProducts: 1 }, async (service, client) => {
        await assertPredictsPlain(client, 2);
        const other = CkksKeyring.generate((client as unknown as { context: CkksKeyring['context'] }).context);
        const foreign = other.encrypt([1], 2 ** model.params.inputScaleBits);
        const bytes = foreign.save();
        foreign.free();
        other.dispose();
        const o = service.open({ version: 1, keyId: client.keyId });
        const inputs = o.routing.groups.map((g) => g.sources.map(() => bytes));
        await assert.rejects(service.round({ version: 1, sessionId: o.sessionId, stage: 0, inputs }), KeyMismatchError);
        assert.equal(service.openSessions, 0);
      });
    }
  } finally {
    await pool.destroy();
  }
});

function softmax(v: Float64Array): Float64Array {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}
