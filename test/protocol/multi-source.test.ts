/**
 * Stages that read several earlier rounds (residual adds, concatenations, a late read of the
 * input), on hand-built plans, through both interactive protocols: results equal the plaintext
 * reference, and a client that decrypts everything it is sent never sees raw pre-activations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyGroup, type ActivationGroup, type Elementwise, type InferencePlan } from '../../src/protocol/paillier-inference/plan.js';
import {
  PaillierInferenceClient, PaillierInferenceService, UnsupportedModelError, calibrate, checkPlan, compilePaillierModel, decodeMessage, simulateProtocol, type Message,
} from '../../src/protocol/paillier-inference/index.js';
import { SlotLayout } from '../../src/schemes/paillier/packing.js';
import { applyMap, buildSparseMap, type SparseLinearMap } from '../../src/tensor/sparse-linear.js';
import { CkksInferenceClient, CkksInferenceService, clientActivations, inProcessCkksTransport } from '../../src/protocol/ckks-inference/index.js';
import { compileCkksPlan } from '../../src/protocol/ckks-inference/compile.js';
import type { Routing } from '../../src/protocol/ckks-inference/messages.js';
import { smallKeys } from '../helpers/keys.js';

/** Deterministic pseudo-random numbers in [−1, 1) (mulberry32). */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  };
}

const rand = generator(7);

function dense(rows: number, cols: number): SparseLinearMap {
  const bias = Float64Array.from({ length: rows }, () => 0.2 * rand());
  return buildSparseMap(rows, cols, bias, (_r, add) => {
    for (let c = 0; c < cols; c++) add(c, rand());
  });
}

/** A residual add: y = skip + W·main + b over [skip (size n) | main (size n)]. */
function residual(n: number): SparseLinearMap {
  const bias = Float64Array.from({ length: n }, () => 0.1 * rand());
  return buildSparseMap(n, 2 * n, bias, (r, add) => {
    add(r, 1);
    for (let c = 0; c < n; c++) add(n + c, 0.5 * rand());
  });
}

function group(fns: Elementwise[], size: number, windows: Int32Array[] | null = null): ActivationGroup {
  return {
    fns, windows, pool: windows ? 'max' : null, inputSize: size, outputSize: windows ? windows.length : size, homogeneous: fns.every((f) => f === 'relu'),
  };
}

/**
 * Input 6 → relu round 0 (8) → relu round 1 (8) → residual add of rounds 0 and 1, relu round 2
 * (8) → logits from rounds 2 and 1 concatenated (3).
 */
const residualPlan: InferencePlan = {
  inputShape: [6],
  stages: [
    { sources: [-1], linears: [dense(8, 6)], activation: group(['relu'], 8) },
    { sources: [0], linears: [dense(8, 8)], activation: group(['relu'], 8) },
    { sources: [0, 1], linears: [residual(8)], activation: group(['relu'], 8) },
    { sources: [2, 1], linears: [dense(3, 16)], activation: null },
  ],
  outputActivation: null,
  outputSize: 3,
};

/**
 * Blinded and public-scale rounds mixed in one stage, max-pool windows, and the input read again
 * at the end: input 6 → relu round 0 (8) → tanh round 1 (8, unblinded) → rounds 1 and 0, relu +
 * max-pool over pairs round 2 (4) → logits from round 2, the input and round 0 (3).
 */
const pairs = Array.from({ length: 4 }, (_, w) => Int32Array.of(2 * w, 2 * w + 1));
const mixedPlan: InferencePlan = {
  inputShape: [6],
  stages: [
    { sources: [-1], linears: [dense(8, 6)], activation: group(['relu'], 8) },
    { sources: [0], linears: [dense(8, 8)], activation: group(['tanh'], 8) },
    { sources: [1, 0], linears: [dense(8, 16)], activation: group(['relu'], 8, pairs) },
    { sources: [2, -1, 0], linears: [dense(3, 18)], activation: null },
  ],
  outputActivation: null,
  outputSize: 3,
};

/** The plan by hand: every stage's sources concatenated, applyMap, applyGroup. Also returns each stage's pre-activations. */
function reference(plan: InferencePlan, input: Float64Array): { logits: Float64Array; pre: Float64Array[] } {
  const returned: Float64Array[] = [];
  const pre: Float64Array[] = [];
  for (const stage of plan.stages) {
    const x = Float64Array.from(stage.sources.flatMap((k) => Array.from(k === -1 ? input : returned[k]!)));
    const y = stage.linears.reduce((v: Float64Array, m) => applyMap(m, v), x);
    pre.push(y);
    if (stage.activation) returned.push(applyGroup(stage.activation, y));
  }
  return { logits: pre[pre.length - 1]!, pre };
}

function inputs(count: number, seed: number): Float64Array {
  const r = generator(seed);
  return Float64Array.from({ length: 6 * count }, () => Math.round((r() + 1) * 127.5) / 255);
}

/**
 * Share of `seen` values (what the client decrypted, divided by `scale`) that equal some raw
 * pre-activation to within 1e-3 of the largest: 1 if values travelled unblinded.
 */
function rawShare(seen: readonly number[], pre: Float64Array, scale: number): number {
  const tol = 1e-3 * Math.max(...Array.from(pre, Math.abs));
  const hits = seen.filter((v) => pre.some((y) => Math.abs(v / scale - y) <= tol)).length;
  return hits / seen.length;
}

test('plans whose stages read unknown, later or repeated sources are refused', () => {
  const broken = (sources: number[][]): InferencePlan => ({ ...residualPlan, stages: residualPlan.stages.map((st, s) => ({ ...st, sources: sources[s]! })) });
  checkPlan(residualPlan);
  assert.throws(() => checkPlan(broken([[-1], [0], [0, 2], [2, 1]])), /stage 2 reads source 2/);
  assert.throws(() => checkPlan(broken([[-1], [0], [0, 0], [2, 1]])), /reads a source twice/);
  assert.throws(() => checkPlan(broken([[-1], [0], [1, 0], [2]])), /its map takes 16 values, its sources hold 8/);
  assert.throws(() => checkPlan(broken([[-1], [-1], [0, 1], [2, 1]])), UnsupportedModelError);
});

test('Paillier: residual and mixed multi-source plans agree with the plaintext reference, and sources are freed after their last reader', async () => {
  for (const [name, plan] of [['residual', residualPlan], ['mixed', mixedPlan]] as const) {
    const calibration = inputs(40, 3);
    const compiled = compilePaillierModel(plan, calibrate(plan, calibration, 6));
    const service = new PaillierInferenceService({ allowInsecureKeys: true });
    service.register(name, compiled);
    // Which sources the session still holds when each round is sent (index source + 1).
    const held: boolean[][] = [];
    const sessions = (service as unknown as { sessions: Map<string, { held: unknown[] }> }).sessions;
    const client = new PaillierInferenceClient(
      {
        send: async (b) => {
          const reply = await service.handle(b);
          const msg = decodeMessage(reply);
          if (msg.type === 'activate') held.push(Array.from({ length: plan.stages.length }, (_, i) => Boolean(sessions.get(msg.sessionId)!.held[i])));
          return reply;
        },
      },
      { keys: smallKeys() },
    );
    const x = inputs(3, 11);
    const simulated = simulateProtocol(compiled, x);
    for (let i = 0; i < 3; i++) {
      const sample = x.subarray(6 * i, 6 * i + 6);
      const want = reference(plan, sample).logits;
      const { logits, stats } = await client.predict(name, sample);
      const tol = 2e-3 * Math.max(1, ...Array.from(want, Math.abs));
      logits[0]!.forEach((v, j) => assert.ok(Math.abs(v - want[j]!) < tol, `${name} sample ${i} logit ${j}: ${v} vs ${want[j]}`));
      want.forEach((v, j) => assert.ok(Math.abs(simulated.logits[3 * i + j]! - v) < tol, `${name} simulated logit ${j}`));
      assert.equal(stats.rounds, 3);
    }
    assert.equal(service.sessionCount, 0);
    if (name === 'residual') {
      // Round 0 is read by stages 1 and 2, round 1 by stages 2 and 3; the input by stage 0 only.
      assert.deepEqual(held.slice(0, 3), [
        [false, false, false, false],
        [false, true, false, false],
        [false, false, true, false],
      ]);
    } else {
      assert.deepEqual(held.slice(0, 3), [
        [true, false, false, false],
        [true, true, false, false],
        [true, true, false, false],
      ], 'the input and round 0 are kept for the last stage');
    }
  }
});

/** Splits the values of an 'activate' message as the client decrypts them. */
function decryptActivate(msg: Extract<Message, { type: 'activate' }>, guardBits: number): number[] {
  const keys = smallKeys();
  const layout = SlotLayout.fromSlotBits(keys.publicKey.bits, msg.spec.slotBits, guardBits, msg.spec.valuesPerCiphertext);
  const out: number[] = [];
  for (const c of msg.ciphertexts) {
    const m = keys.privateKey.decrypt(keys.publicKey.ciphertext(c));
    for (const v of layout.unpack(m, keys.publicKey.n, Math.min(msg.spec.values - out.length, msg.spec.valuesPerCiphertext))) out.push(Number(v));
  }
  return out;
}

test('Paillier: a client decrypting every round of a residual network never sees raw pre-activations', async () => {
  const compiled = compilePaillierModel(residualPlan, calibrate(residualPlan, inputs(40, 3), 6));
  const service = new PaillierInferenceService({ allowInsecureKeys: true });
  service.register('residual', compiled);
  const x = inputs(4, 19);
  for (let i = 0; i < 4; i++) {
    const sample = x.subarray(6 * i, 6 * i + 6);
    const { pre } = reference(residualPlan, sample);
    let guardBits = 0;
    const seen: number[][] = [];
    const client = new PaillierInferenceClient(
      {
        send: async (b) => {
          const reply = await service.handle(b);
          const msg = decodeMessage(reply);
          if (msg.type === 'opened') guardBits = msg.info.guardBits;
          if (msg.type === 'activate') seen.push(decryptActivate(msg, guardBits));
          return reply;
        },
      },
      { keys: smallKeys() },
    );
    await client.predict('residual', sample);
    assert.equal(seen.length, 3);
    seen.forEach((values, round) => {
      const q = compiled.stages[round]!.maps.at(-1)!.q;
      // Signs survive (ReLU needs them); magnitudes carry a fresh factor r ≥ 256 per value.
      const positives = values.filter((v) => v > 0).length;
      assert.equal(positives, pre[round]!.filter((v) => v > 0).length, `round ${round}: sign count`);
      assert.ok(rawShare(values, pre[round]!, q) < 0.5, `round ${round} (${round === 2 ? 'the residual add' : 'a chain stage'}): the client saw raw pre-activations`);
    });
  }
});

test('CKKS: residual and mixed multi-source plans agree with the plaintext reference; the client never sees raw pre-activations', async () => {
  for (const [name, plan] of [['residual', residualPlan], ['mixed', mixedPlan]] as const) {
    const compiled = compileCkksPlan(plan, inputs(40, 3));
    const service = await CkksInferenceService.create(compiled);
    try {
      assert.deepEqual(service.describe().sources, plan.stages.map((s) => s.sources));
      // The client decrypts every reply (as the protocol has it do) and keeps what it saw.
      const seen: Float64Array[] = [];
      let client: CkksInferenceClient | undefined;
      let routing: Routing | undefined;
      const inner = inProcessCkksTransport(service);
      const spy = {
        ...inner,
        open: async (r: Parameters<typeof inner.open>[0]) => {
          const reply = service.open(r);
          routing = reply.routing;
          return reply;
        },
        round: async (r: Parameters<typeof inner.round>[0]) => {
          const reply = await service.round(r);
          const decrypt = (client as unknown as { decryptGroups(routing: Routing, outputs: Uint8Array[]): Float64Array }).decryptGroups.bind(client);
          seen.push(decrypt(routing!, reply.outputs));
          routing = reply.next;
          return reply;
        },
      };
      client = await CkksInferenceClient.connect(spy, clientActivations(compiled));
      try {
        const x = inputs(3, 23);
        for (let i = 0; i < 3; i++) {
          seen.length = 0;
          const sample = x.subarray(6 * i, 6 * i + 6);
          const { logits: want, pre } = reference(plan, sample);
          const { logits } = await client.predict(sample);
          const tol = 1e-3 * Math.max(1, ...Array.from(want, Math.abs));
          logits.forEach((v, j) => assert.ok(Math.abs(v - want[j]!) < tol, `${name} sample ${i} logit ${j}: ${v} vs ${want[j]}`));
          compiled.stages.slice(0, -1).forEach((stage, s) => {
            if (!stage.blinded) return;
            assert.ok(rawShare(Array.from(seen[s]!), pre[s]!, stage.sigma) < 0.5, `${name} round ${s}: the client saw raw pre-activations`);
          });
        }
      } finally {
        client.dispose();
      }
    } finally {
      service.dispose();
    }
  }
});
