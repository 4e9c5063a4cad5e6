/**
 * The MSCryptoNet configuration as a program of share instructions: 10 inputs, one hidden layer of
 * 8 units, one output, mean squared error, mini-batch SGD, all in fixed point with
 * {@link MultikeyMlpConfig.fracBits} fractional bits in the ring Z_{2^64}.
 *
 * Hidden activation: MSCryptoNet replaces the nonlinearity by a low-degree polynomial trained
 * into the network; here the degree-2 least-squares fit of ReLU on [−4, 4],
 * act(z) = 15/128·z² + z/2 + 3/8, whose derivative 15/64·z + 1/2 is linear. One element-wise
 * product forward (z²) and one backward (δ ⊙ act'(z)) per hidden unit and sample; exact ReLU
 * through a comparison round would need a secure comparison per unit (see docs/security.md for why
 * this was not chosen).
 *
 * The same program runs on the two servers' shares and, in the plaintext twin, on plain ring
 * values, so both runs do the same fixed-point arithmetic (the shared run's truncations may round
 * up by one unit in the last place where the twin's round down).
 *
 * @module
 */
import type { TrainingEngine } from '../../protocol/multikey/engine.js';
import type { InteractiveInstr, RingMatrix } from '../../protocol/multikey/program.js';
import { decodeFixed, encodeFixed } from '../../protocol/multikey/ring.js';

/** Hyperparameters. */
export interface MultikeyMlpConfig {
  readonly inputs: number;
  readonly hidden: number;
  readonly fracBits: number;
  readonly learningRate: number;
  readonly batchSize: number;
  /** L2 weight decay on W1 and W2: each step also subtracts learningRate·weightDecay·W (default 0). */
  readonly weightDecay?: number;
  /** The learning rate of epoch e (1-based) is learningRate·lrDecay^(e−1) (default 1: constant). */
  readonly lrDecay?: number;
}

/** The published configuration: 10-8-1. */
export const MSCRYPTONET_MLP: MultikeyMlpConfig = { inputs: 10, hidden: 8, fracBits: 13, learningRate: 0.05, batchSize: 8 };

/**
 * blindml's defaults for the same network: 3 epochs (the CLI's default) at learning rate 0.1, halved
 * each epoch, with weight decay 0.1. Tuned on the plaintext twin over seeds 1–4: R² 0.38–0.40 after
 * 3 epochs, against 0.29–0.34 for the published constant 0.05 after 1–2 epochs (it oscillates:
 * 0.24–0.38 over 8 epochs); the converged plaintext reference reaches 0.376.
 */
export const DEFAULT_MULTIKEY_MLP: MultikeyMlpConfig = { ...MSCRYPTONET_MLP, learningRate: 0.1, lrDecay: 0.5, weightDecay: 0.1 };

/** Epochs `train --scheme multikey` runs unless told otherwise. */
export const DEFAULT_MULTIKEY_EPOCHS = 3;

/** The learning rate of epoch `epoch` (1-based) under the config's schedule. */
export function epochLearningRate(config: MultikeyMlpConfig, epoch: number): number {
  return config.learningRate * (config.lrDecay ?? 1) ** (epoch - 1);
}

/** Parameter tensors and their shapes. */
export const PARAM_IDS = ['W1', 'b1', 'W2', 'b2'] as const;

/** The activation's polynomial coefficients (c2·z² + c1·z + c0) as real numbers. */
export const ACTIVATION = { c2: 15 / 128, c1: 0.5, c0: 3 / 8 } as const;

/** act(z) in floating point (for evaluating a trained model). */
export function activation(z: number): number {
  return ACTIVATION.c2 * z * z + ACTIVATION.c1 * z + ACTIVATION.c0;
}

/** A model in floating point. */
export interface MlpWeights {
  readonly W1: Float64Array;
  readonly b1: Float64Array;
  readonly W2: Float64Array;
  readonly b2: Float64Array;
}

/** Deterministic initial weights (public: both runs start from them). Scaled normal init, zero biases. */
export function initialWeights(config: MultikeyMlpConfig, seed: number): MlpWeights {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (((z ^ (z >>> 16)) >>> 0) + 0.5) / 4294967296;
  };
  const normal = (): number => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const { inputs, hidden } = config;
  return {
    W1: Float64Array.from({ length: hidden * inputs }, () => normal() / Math.sqrt(inputs)),
    b1: new Float64Array(hidden),
    W2: Float64Array.from({ length: hidden }, () => normal() / Math.sqrt(hidden)),
    b2: new Float64Array(1),
  };
}

/** Parameter tensors as fixed-point ring matrices. */
export function encodeWeights(w: MlpWeights, config: MultikeyMlpConfig): Record<(typeof PARAM_IDS)[number], RingMatrix> {
  const enc = (a: Float64Array) => Array.from(a, (v) => encodeFixed(v, config.fracBits));
  return {
    W1: { rows: config.hidden, cols: config.inputs, data: enc(w.W1) },
    b1: { rows: config.hidden, cols: 1, data: enc(w.b1) },
    W2: { rows: 1, cols: config.hidden, data: enc(w.W2) },
    b2: { rows: 1, cols: 1, data: enc(w.b2) },
  };
}

/** Floating-point weights from fixed-point ring matrices. */
export function decodeWeights(m: Record<(typeof PARAM_IDS)[number], RingMatrix>, config: MultikeyMlpConfig): MlpWeights {
  const dec = (t: RingMatrix) => Float64Array.from(t.data, (v) => decodeFixed(v, config.fracBits));
  return { W1: dec(m.W1), b1: dec(m.b1), W2: dec(m.W2), b2: dec(m.b2) };
}

/** Predictions of a model for records (rows of `inputs` values). */
export function predict(w: MlpWeights, features: readonly Float64Array[], config: MultikeyMlpConfig): Float64Array {
  return Float64Array.from(features, (x) => {
    let y = w.b2[0]!;
    for (let j = 0; j < config.hidden; j++) {
      let z = w.b1[j]!;
      for (let k = 0; k < config.inputs; k++) z += w.W1[j * config.inputs + k]! * x[k]!;
      y += w.W2[j]! * activation(z);
    }
    return y;
  });
}

/** Coefficient of determination of predictions against targets. */
export function r2Score(pred: Float64Array, targets: Float64Array): number {
  const mean = targets.reduce((a, b) => a + b, 0) / targets.length;
  let res = 0;
  let tot = 0;
  for (let i = 0; i < targets.length; i++) {
    res += (targets[i]! - pred[i]!) ** 2;
    tot += (targets[i]! - mean) ** 2;
  }
  return 1 - res / tot;
}

/** Ids of a batch's tensors: features (inputs × B) and targets (1 × B). */
export function batchIds(b: number): { x: string; y: string } {
  return { x: `X${b}`, y: `y${b}` };
}

/**
 * One SGD step on batch `b` (of `size` records): forward, MSE gradient, backward, update. Six
 * interactive rounds: W1·X, z⊙z, W2·H, (e·Hᵀ and W2ᵀ·e), δ⊙act'(z), δ·Xᵀ.
 *
 * @throws whatever the engine throws (a crypto server that stopped answering, a shape error).
 */
export async function sgdStep(engine: TrainingEngine, config: MultikeyMlpConfig, b: number, size: number): Promise<void> {
  const f = config.fracBits;
  const fx = (v: number) => String(Math.round(v * 2 ** f));
  const { x, y } = batchIds(b);
  const mm = (out: string, a: string, bb: string): InteractiveInstr => ({ op: 'matmul', out, a, b: bb });
  const run = engine.run.bind(engine);
  const trunc = (out: string, a: string, bits = f) => run({ op: 'trunc', out, a, bits });

  await engine.interact([mm('t.z0', 'W1', x)]);
  trunc('t.z1', 't.z0');
  run({ op: 'addCol', out: 't.z', a: 't.z1', b: 'b1' });
  await engine.interact([{ op: 'mul', out: 't.q0', a: 't.z', b: 't.z' }]);
  trunc('t.q', 't.q0');
  run({ op: 'scale', out: 't.hq', a: 't.q', k: fx(ACTIVATION.c2) });
  run({ op: 'scale', out: 't.hz', a: 't.z', k: fx(ACTIVATION.c1) });
  run({ op: 'add', out: 't.h0', a: 't.hq', b: 't.hz' });
  trunc('t.h1', 't.h0');
  run({ op: 'addConst', out: 't.h', a: 't.h1', k: fx(ACTIVATION.c0) });
  await engine.interact([mm('t.y0', 'W2', 't.h')]);
  trunc('t.y1', 't.y0');
  run({ op: 'addCol', out: 't.yh', a: 't.y1', b: 'b2' });
  run({ op: 'sub', out: 't.e', a: 't.yh', b: y });
  run({ op: 'transpose', out: 't.ht', a: 't.h' });
  run({ op: 'transpose', out: 't.w2t', a: 'W2' });
  await engine.interact([mm('t.gw2', 't.e', 't.ht'), mm('t.dh0', 't.w2t', 't.e')]);
  trunc('t.dh', 't.dh0');
  run({ op: 'sumCols', out: 't.gb2', a: 't.e' });
  run({ op: 'scale', out: 't.ap0', a: 't.z', k: fx(2 * ACTIVATION.c2) });
  trunc('t.ap1', 't.ap0');
  run({ op: 'addConst', out: 't.ap', a: 't.ap1', k: fx(ACTIVATION.c1) });
  await engine.interact([{ op: 'mul', out: 't.dz0', a: 't.dh', b: 't.ap' }]);
  trunc('t.dz', 't.dz0');
  run({ op: 'transpose', out: 't.xt', a: x });
  await engine.interact([mm('t.gw1', 't.dz', 't.xt')]);
  run({ op: 'sumCols', out: 't.gb1', a: 't.dz' });
  // Gradients of W are at scale 2^2f, of b at 2^f: bring them to 2^f first, then apply learning
  // rate / batch size, so no truncated value exceeds about 2^34 (truncation fails with
  // probability about 2^(bits+1−64), see ring.ts).
  const step = config.learningRate / size;
  // Weight decay, W −= lr·wd·W, joins the gradient as size·wd·W (both at 2^2f, so no truncation of
  // W itself: its shares are not random at the start, and truncating them would be wrong).
  const wd = config.weightDecay ?? 0;
  const grads = { W1: 't.gw1', W2: 't.gw2' };
  if (wd > 0) {
    for (const [param, grad] of Object.entries(grads)) {
      run({ op: 'scale', out: `${param}.wd`, a: param, k: fx(wd * size) });
      run({ op: 'add', out: `${grad}.t`, a: grad, b: `${param}.wd` });
    }
  }
  const update = (param: string, grad: string, scaleBits: number) => {
    if (scaleBits > 0) trunc(`${grad}.r`, grad, scaleBits);
    run({ op: 'scale', out: `${grad}.s`, a: scaleBits > 0 ? `${grad}.r` : grad, k: fx(step) });
    trunc(`${grad}.u`, `${grad}.s`, f);
    run({ op: 'sub', out: param, a: param, b: `${grad}.u` });
  };
  update('W1', wd > 0 ? 't.gw1.t' : 't.gw1', f);
  update('b1', 't.gb1', 0);
  update('W2', wd > 0 ? 't.gw2.t' : 't.gw2', f);
  update('b2', 't.gb2', 0);
  run({
    op: 'free',
    ids: [...(wd > 0 ? ['W1.wd', 'W2.wd', 't.gw1.t', 't.gw2.t'] : []), 't.z0', 't.z1', 't.z', 't.q0', 't.q', 't.hq', 't.hz', 't.h0', 't.h1', 't.h', 't.y0', 't.y1', 't.yh', 't.e', 't.ht', 't.w2t', 't.gw2', 't.dh0', 't.dh', 't.gb2', 't.ap0', 't.ap1', 't.ap', 't.dz0', 't.dz', 't.xt', 't.gw1', 't.gb1']
      .flatMap((id) => (id.startsWith('t.g') ? [id, `${id}.r`, `${id}.s`, `${id}.u`] : [id])),
  });
}
