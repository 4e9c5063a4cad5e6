/**
 * Compiles a polynomial network for one-round evaluation on CKKS ciphertexts in batch mode: one
 * image per slot, one ciphertext per input value, so every linear stage is a sum of ciphertexts
 * times scalar weights and no rotation is ever needed.
 *
 * **Integer weights.** Multiplying a ciphertext by a real weight costs a plaintext encoding, a
 * plaintext product and a level. blindml instead rounds each output row's weights to signed
 * integers of `weightBits` bits against a per-row factor g (decrypted value × g = real value),
 * multiplies by those integers with additions of doublings (signed binary digits), and carries the
 * factors in plaintext bookkeeping: linear stages consume no level at all, whatever they hold
 * (batch norm, input normalization, Add, Concat, grouped convolutions, pools, Transpose, Pad).
 * Only the activations do, one square (and one rescale) each.
 *
 * **Degree-2 activations as one square.** p(z) = a₂z² + a₁z + a₀ = a₂(z + β)² + γ with
 * β = a₁/(2a₂): β joins the bias of the stage before, the square is the only ciphertext product,
 * and a₂ and γ fold into the weights and bias of every stage that reads the activation.
 *
 * **Levels of a graph.** A stage's level is the number of squares on the longest path to it; all
 * stages of one level work at one CKKS scale. A stage that reads a source from a shallower level
 * (the shortcut of a residual block, a concatenated branch with fewer activations, the model
 * input) brings each of its ciphertexts down with one plaintext product by a constant C and a
 * rescale: the plaintext's scale is chosen at run time so the result lands exactly on the stage's
 * scale, and C (a power of two fixed here) makes the source's values as large as the deeper ones',
 * so they share the level's bits. C joins the source's factors; nothing else changes.
 *
 * **Parameters from the depth and the magnitudes.** The integer weights make values grow by a
 * known number of bits per stage. Running the integer pipeline in plaintext on calibration images
 * measures those bits; each rescale prime is sized to bring a square back to `targetBits`, the
 * first prime holds the logits, and the ring is the smallest whose 128-bit bound (SEAL's default
 * table) fits them all. A network too deep for N = 32768 is refused, naming the activation where
 * the bound runs out.
 *
 * Everything here is plaintext work on the model (no secrets). Browser-safe.
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';
import type { Model } from '../../nn/model.js';
import { MAX_COEFF_BITS_128, type CkksParameters } from '../../schemes/ckks/params.js';
import { MODEL_INPUT, planPolyNetwork, type PolyPlan, type PolyStage, UnsupportedModelError } from './plan.js';

/** Options of {@link compilePolyNetwork}. */
export interface PolyCompileOptions {
  /** Bits of each integer weight, sign included (default 10: |k| ≤ 511). */
  readonly weightBits?: number;
  /** log2 of the input encoding scale (default 32; up to 6 bits less if that fits a smaller ring). */
  readonly inputScaleBits?: number;
  /** log2 of the magnitude values are brought back to after each square (default 30, same give as the input scale). */
  readonly targetBits?: number;
  /** Bits of margin above the largest calibration value, for inputs beyond it (default 2: ×4). */
  readonly headroomBits?: number;
  /** Smallest ring degree (default 8192: 4096 images per ciphertext). */
  readonly minDegree?: number;
}

/** One stage with integer weights, stored by column (each input ciphertext is visited once). */
export interface IntegerStage {
  /** The sources the columns read, concatenated in this order (as the plan's stage). */
  readonly sources: readonly number[];
  /** Squares on the longest path to the stage: its inputs are read with topLevel − level data primes. */
  readonly level: number;
  /**
   * Per source (in `sources` order): null for a source at the stage's level, else the constant C
   * its ciphertexts are multiplied by as they are brought down to it (a power of two).
   */
  readonly lift: readonly (number | null)[];
  readonly rows: number;
  readonly cols: number;
  /** cols + 1 offsets into rowIndex/weights. */
  readonly colOffsets: Int32Array;
  readonly rowIndex: Int32Array;
  /** Integer weights, |k| < 2^(weightBits − 1). */
  readonly weights: Int32Array;
  /** Bias of each row in decrypted units (the activation's shift β included). */
  readonly bias: Float64Array;
  /** Whether a square follows (every stage but the last). */
  readonly square: boolean;
  /**
   * The squares are read at a scale 2^shift larger than CKKS leaves them (so they decrypt 2^shift
   * smaller): one shift per level keeps decrypted values near 1 however deep the network.
   */
  readonly shift: number;
  /** Largest |decrypted value| over calibration of the stage's outputs (before the square) and lifted inputs. */
  readonly calibrationMax: number;
}

/** A compiled network: what the service evaluates and the parameters both parties use. */
export interface CompiledPolyNetwork {
  readonly plan: PolyPlan;
  readonly stages: readonly IntegerStage[];
  readonly params: CkksParameters;
  /** Scale of the client's input encryptions (2^inputScaleBits). */
  readonly inputScale: number;
  /** Real logit = decrypted output × outputFactor (the service folds it into the output scale). */
  readonly outputFactor: number;
  readonly weightBits: number;
  /** Multiplicative depth: squares on the longest path from the input to the logits. */
  readonly depth: number;
  /** Ciphertext squares per batch (one per activation value). */
  readonly squares: number;
  /** Ciphertext additions per batch spent on integer weights (digits of every weight, plus doublings). */
  readonly additions: number;
  /** Ciphertexts per batch brought down to a deeper level (one plaintext product and a rescale each). */
  readonly lifts: number;
  /** Logits of the calibration images through the integer pipeline (for checking quantization). */
  readonly calibrationLogits: Float64Array;
}

/** The model does not fit CKKS parameters at 128-bit security. */
export class ParameterError extends BlindmlError {
  constructor(message: string) {
    super('ERR_CKKS_PARAMETERS', message);
  }
}

/**
 * Compiles `model` using `calibration` images (model-owner data, `inputSize` values each).
 *
 * @throws UnsupportedModelError for a model ckks-poly cannot evaluate (see {@link planPolyNetwork}).
 * @throws ParameterError naming the node when the network is too deep, or its values too large,
 *   for any ring up to N = 32768 at 128-bit security (or diverge on the calibration inputs).
 * @throws RangeError for bad options or calibration data of the wrong length.
 */
export function compilePolyNetwork(model: Model, calibration: Float32Array | Float64Array, options: PolyCompileOptions = {}): CompiledPolyNetwork {
  const weightBits = intOption(options.weightBits, 10, 4, 20, 'weightBits');
  const inputScaleBits = intOption(options.inputScaleBits, 32, 20, 50, 'inputScaleBits');
  const targetBits = intOption(options.targetBits, 30, 20, 50, 'targetBits');
  const headroomBits = intOption(options.headroomBits, 2, 0, 16, 'headroomBits');
  const plan = planPolyNetwork(model);
  if (calibration.length === 0 || calibration.length % plan.inputSize !== 0) {
    throw new RangeError(`calibration holds ${calibration.length} values, not a positive multiple of ${plan.inputSize}`);
  }
  const { stages, outputFactor, logits } = quantize(plan, calibration, weightBits);
  const depth = stages[stages.length - 1]!.level;
  const levels = Array.from({ length: depth + 1 }, (_, l) => levelInfo(plan, stages, l));
  const { params, inputScaleBits: chosenBits, scaleBits } = chooseRing(levels, { inputScaleBits, targetBits, headroomBits, minDegree: options.minDegree ?? 8192 });
  checkLifts(plan, stages, scaleBits, params.coeffModulusBits);
  let additions = 0;
  let lifts = 0;
  for (const s of stages) {
    for (let t = 0; t < s.weights.length; t++) additions += digits(s.weights[t]!);
    for (let c = 0; c < s.cols; c++) additions += maxDoubling(s, c);
    s.lift.forEach((C, j) => (lifts += C === null ? 0 : sourceSize(plan, s.sources[j]!)));
  }
  return {
    plan,
    stages,
    params,
    inputScale: 2 ** chosenBits,
    outputFactor,
    weightBits,
    depth,
    squares: stages.filter((s) => s.square).reduce((n, s) => n + s.rows, 0),
    additions,
    lifts,
    calibrationLogits: logits,
  };
}

function sourceSize(plan: PolyPlan, k: number): number {
  return k === MODEL_INPUT ? plan.inputSize : plan.stages[k]!.map.rows;
}

/** What the compiler knows of a source: its values over calibration (decrypted units) and how to read them. */
interface Source {
  /** count × size decrypted values, image after image. */
  readonly values: Float64Array;
  readonly size: number;
  /** Real value = factor · decrypted + gamma, per value. */
  readonly factors: Float64Array;
  readonly gamma: Float64Array;
  /** Squares behind it. */
  readonly depth: number;
  /** Largest |decrypted value| over calibration. */
  readonly max: number;
}

/**
 * Rounds every stage to integers, carrying per-value factors from stage to stage, and runs each
 * on the calibration images as soon as it is rounded (the lifts of a stage depend on the measured
 * magnitudes of what it reads).
 */
function quantize(plan: PolyPlan, calibration: Float32Array | Float64Array, weightBits: number): { stages: IntegerStage[]; outputFactor: number; logits: Float64Array } {
  const kMax = 2 ** (weightBits - 1) - 1;
  const count = calibration.length / plan.inputSize;
  const input: Source = {
    values: Float64Array.from(calibration),
    size: plan.inputSize,
    factors: new Float64Array(plan.inputSize).fill(1),
    gamma: new Float64Array(plan.inputSize),
    depth: 0,
    max: maxAbs(calibration),
  };
  const sources: Source[] = [];
  const stages: IntegerStage[] = [];
  const shifts = new Map<number, number>();
  let outputFactor = 1;
  let logits = new Float64Array(0);
  plan.stages.forEach((stage, s) => {
    const reads = stage.sources.map((k) => (k === MODEL_INPUT ? input : sources[k]!));
    const level = Math.max(...reads.map((r) => r.depth));
    const reference = Math.max(...reads.filter((r) => r.depth === level).map((r) => r.max));
    const lift = reads.map((r) => (r.depth === level ? null : liftConstant(r.max, reference)));
    const columns = columnsOf(reads, lift);
    const last = stage.activation === null;
    const { weights, g, bias } = roundStage(stage, columns, kMax, last, s);
    const run = runStage(weights, bias, columns, count);
    const overflow = (): ParameterError =>
      new ParameterError(`node '${stage.node}': its values overflow double precision on the calibration inputs (the network diverges there)`);
    if (!Number.isFinite(run.max)) throw overflow();
    const liftedMax = Math.max(0, ...reads.map((r, j) => (lift[j] === null ? 0 : r.max * lift[j]!)));
    const square = run.values.map((v) => v * v);
    // Set by the first stage to reach the level; its peers share it (their outputs get added together).
    const shift = last ? 0 : (shifts.get(level + 1) ?? Math.round(Math.log2(maxAbs(square) || 1)));
    shifts.set(level + 1, shift);
    stages.push({ sources: stage.sources, level, lift, ...weights, bias, square: !last, shift, calibrationMax: Math.max(run.max, liftedMax) });
    if (last) {
      outputFactor = g[0]!;
      logits = run.values.map((v) => v * outputFactor);
      return;
    }
    const [a0 = 0, a1 = 0, a2 = 0] = stage.activation!;
    const squares = square.map((v) => v / 2 ** shift);
    const factors = g.map((gr) => a2 * gr * gr * 2 ** shift);
    // Decrypted values stay near 1; the real values they stand for are what grows.
    if (!factors.every(Number.isFinite) || !squares.every(Number.isFinite)) throw overflow();
    sources.push({
      values: squares,
      size: stage.map.rows,
      factors,
      gamma: new Float64Array(stage.map.rows).fill(a0 - (a1 * a1) / (4 * a2)),
      depth: level + 1,
      max: maxAbs(squares),
    });
  });
  return { stages, outputFactor, logits };
}

/**
 * C for a source read below its level: the power of two nearest to reference / max, so its
 * lifted values are as large as those already at the level (1 for a source that is all zeros).
 */
function liftConstant(max: number, reference: number): number {
  if (!(max > 0) || !(reference > 0)) return 1;
  return 2 ** Math.round(Math.log2(reference / max));
}

/** The stage's columns: their calibration values (lifted), and per column factor and gamma. */
interface Columns {
  readonly parts: readonly { readonly source: Source; readonly scale: number }[];
  readonly factors: Float64Array;
  readonly gamma: Float64Array;
}

function columnsOf(reads: readonly Source[], lift: readonly (number | null)[]): Columns {
  const cols = reads.reduce((n, r) => n + r.size, 0);
  const factors = new Float64Array(cols);
  const gamma = new Float64Array(cols);
  let at = 0;
  reads.forEach((r, j) => {
    // A lifted value decrypts C times larger: its factor is C times smaller.
    const C = lift[j] ?? 1;
    for (let i = 0; i < r.size; i++) factors[at + i] = r.factors[i]! / C;
    gamma.set(r.gamma, at);
    at += r.size;
  });
  return { parts: reads.map((source, j) => ({ source, scale: lift[j] ?? 1 })), factors, gamma };
}

type StageWeights = Pick<IntegerStage, 'rows' | 'cols' | 'colOffsets' | 'rowIndex' | 'weights'>;

/** The stage's integer weights, row factors g and biases (decrypted units, β included). */
function roundStage(stage: PolyStage, columns: Columns, kMax: number, last: boolean, s: number): { weights: StageWeights; g: Float64Array; bias: Float64Array } {
  const { map, activation } = stage;
  const g = new Float64Array(map.rows);
  for (let r = 0; r < map.rows; r++) {
    let m = 0;
    for (let t = map.offsets[r]!; t < map.offsets[r + 1]!; t++) m = Math.max(m, Math.abs(map.weights[t]! * columns.factors[map.indices[t]!]!));
    g[r] = m > 0 ? m / kMax : 1;
  }
  // One factor for all logits: the output scale then reveals one number about the model, not one per class.
  if (last) g.fill(Math.max(...g));
  let beta = 0;
  if (activation) {
    const [, a1 = 0, a2 = 0] = activation;
    if (a2 === 0) throw new UnsupportedModelError(`node '${stage.node}' (stage ${s}): a degree-2 activation needs a non-zero x² coefficient`);
    beta = a1 / (2 * a2);
  }
  const bias = new Float64Array(map.rows);
  const rows: number[][] = Array.from({ length: map.cols }, () => []);
  const ks: number[][] = Array.from({ length: map.cols }, () => []);
  for (let r = 0; r < map.rows; r++) {
    let b = map.bias[r]!;
    for (let t = map.offsets[r]!; t < map.offsets[r + 1]!; t++) {
      const c = map.indices[t]!;
      b += map.weights[t]! * columns.gamma[c]!;
      const k = Math.round((map.weights[t]! * columns.factors[c]!) / g[r]!);
      if (k !== 0) {
        rows[c]!.push(r);
        ks[c]!.push(k);
      }
    }
    bias[r] = (b + beta) / g[r]!;
  }
  return { weights: { rows: map.rows, cols: map.cols, ...byColumn(rows, ks) }, g, bias };
}

function byColumn(rows: number[][], ks: number[][]): Pick<IntegerStage, 'colOffsets' | 'rowIndex' | 'weights'> {
  const colOffsets = new Int32Array(rows.length + 1);
  rows.forEach((r, c) => (colOffsets[c + 1] = colOffsets[c]! + r.length));
  return { colOffsets, rowIndex: Int32Array.from(rows.flat()), weights: Int32Array.from(ks.flat()) };
}

/** One stage of the integer pipeline in double precision (what the service computes, without the noise). */
function runStage(stage: StageWeights, bias: Float64Array, columns: Columns, count: number): { values: Float64Array; max: number } {
  const values = new Float64Array(count * stage.rows);
  let max = 0;
  for (let n = 0; n < count; n++) {
    const y = values.subarray(n * stage.rows, (n + 1) * stage.rows);
    y.set(bias);
    let c = 0;
    for (const { source, scale } of columns.parts) {
      const x = source.values.subarray(n * source.size, (n + 1) * source.size);
      for (let i = 0; i < source.size; i++, c++) {
        const v = x[i]! * scale;
        for (let t = stage.colOffsets[c]!; t < stage.colOffsets[c + 1]!; t++) {
          const r = stage.rowIndex[t]!;
          y[r] = y[r]! + stage.weights[t]! * v;
        }
      }
    }
    for (const v of y) max = Math.max(max, Math.abs(v));
  }
  return { values, max };
}

/**
 * The compiled integer pipeline on `inputs` (images one after another), in double precision:
 * what the service computes, without the noise. Returns the logits (× outputFactor).
 *
 * @throws RangeError when `inputs` is not a whole number of images.
 */
export function runInteger(net: CompiledPolyNetwork, inputs: Float32Array | Float64Array): Float64Array {
  const size = net.plan.inputSize;
  if (inputs.length % size !== 0) throw new RangeError(`${inputs.length} values are not a whole number of inputs of ${size}`);
  const count = inputs.length / size;
  const none = new Float64Array(0);
  const input = { values: Float64Array.from(inputs), size, factors: none, gamma: none, depth: 0, max: 0 };
  const outputs: Source[] = [];
  let last: Float64Array = none;
  for (const stage of net.stages) {
    const reads = stage.sources.map((k) => (k === MODEL_INPUT ? input : outputs[k]!));
    const { values } = runStage(stage, stage.bias, { parts: reads.map((source, j) => ({ source, scale: stage.lift[j] ?? 1 })), factors: none, gamma: none }, count);
    last = values;
    outputs.push({ ...input, values: stage.square ? values.map((v) => (v * v) / 2 ** stage.shift) : values, size: stage.rows });
  }
  return last.map((v) => v * net.outputFactor);
}

/** Per level: the largest decrypted magnitude there, the activation nodes whose squares leave it, and their shift. */
interface LevelInfo {
  readonly max: number;
  readonly nodes: readonly string[];
  readonly shift: number;
}

function levelInfo(plan: PolyPlan, stages: readonly IntegerStage[], level: number): LevelInfo {
  const at = stages.map((s, i) => ({ s, node: plan.stages[i]!.node })).filter(({ s }) => s.level === level);
  const squaring = at.filter(({ s }) => s.square);
  return { max: Math.max(0, ...at.map(({ s }) => s.calibrationMax)), nodes: squaring.map(({ node }) => node), shift: squaring[0]?.s.shift ?? 0 };
}

/**
 * Sizes the primes. With decrypted magnitude bits L_ℓ = log2(max_ℓ) + headroom and scale S_ℓ at
 * level ℓ (S_ℓ₊₁ = S_ℓ² / q · 2^shift), the values there occupy a_ℓ = log2 S_ℓ + L_ℓ bits; a square doubles that and the
 * rescale prime q brings it back to the target; the first prime holds the logits plus a sign bit
 * (and whatever a level's values still need above the primes below it), and the special prime is
 * as large as the largest other. The smallest ring (from `minDegree`) that fits at 128-bit
 * security wins; within a ring, up to {@link precisionGive} bits of input scale and target are
 * given up before moving to the next ring (twice the memory per ciphertext).
 */
function chooseRing(
  levels: readonly LevelInfo[],
  o: { inputScaleBits: number; targetBits: number; headroomBits: number; minDegree: number },
): { params: CkksParameters; inputScaleBits: number; scaleBits: number[] } {
  let why = '';
  let widest: number[] | undefined;
  const most = precisionGive(levels.length - 1);
  for (const degree of [1024, 2048, 4096, 8192, 16384, 32768]) {
    if (degree < o.minDegree) continue;
    for (let give = 0; give <= most; give++) {
      const t0 = o.inputScaleBits - give;
      const target = o.targetBits - give;
      if (t0 < 20 || target < 20) break;
      const sized = primeBits(levels, t0, target, o.headroomBits);
      if (typeof sized === 'string') {
        why = sized;
        continue;
      }
      const total = sized.bits.reduce((x, y) => x + y, 0);
      if (total <= (MAX_COEFF_BITS_128[degree] ?? 0)) {
        return { params: { polyModulusDegree: degree, coeffModulusBits: sized.bits, scaleBits: t0 }, inputScaleBits: t0, scaleBits: sized.scaleBits };
      }
      widest = sized.bits;
      why = '';
    }
  }
  if (why === '' && widest) why = tooDeep(levels, widest);
  throw new ParameterError(`no ring up to N = 32768 holds this network at 128-bit security: ${why}`);
}

/**
 * Bits given up (input scale and target each) before a larger ring is tried: 6 at depth 1, 2 less
 * per further square, none from depth 4. Every square doubles the relative error a bit of give
 * adds: on a depth-3 residual network (models/zoo/poly-residual.onnx), 6 bits at N = 8192 made
 * the CKKS error of the logits 29× that at none and N = 16384 (95 of 100 argmax agreeing with
 * plaintext instead of 100).
 */
export function precisionGive(depth: number): number {
  return Math.max(0, 8 - 2 * depth);
}

/** The largest ring's 128-bit bound. */
const MAX_BITS = MAX_COEFF_BITS_128[32768]!;

/** Names the activation whose square takes the primes past N = 32768's bound (bits: SEAL's order). */
function tooDeep(levels: readonly LevelInfo[], bits: readonly number[]): string {
  const depth = levels.length - 1;
  // bits = [first, q_depth, …, q_1, special]: the primes of the first ℓ squares are the last ℓ data primes.
  const rescales = bits.slice(1, -1).reverse();
  const fixed = bits[0]! + bits[bits.length - 1]!;
  let used = fixed;
  let level = 1;
  for (; level <= depth; level++) {
    used += rescales[level - 1]!;
    if (used > MAX_BITS) break;
  }
  const node = levels[Math.min(level, depth) - 1]!.nodes[0] ?? '?';
  return (
    `it is too deep — node '${node}' is square ${Math.min(level, depth)} of ${depth} on the longest path, and the coefficient modulus ` +
    `would need ${bits.reduce((x, y) => x + y, 0)} bits where N = 32768 allows ${MAX_BITS}; remove activations on the longest path ` +
    '(or make some degree 1), or use --scheme ckks'
  );
}

function primeBits(levels: readonly LevelInfo[], t0: number, target: number, headroom: number): { bits: number[]; scaleBits: number[] } | string {
  const rescales: number[] = [];
  const scaleBits = [t0];
  const a: number[] = [];
  const depth = levels.length - 1;
  for (let l = 0; l <= depth; l++) {
    a.push(scaleBits[l]! + Math.log2(Math.max(levels[l]!.max, 1e-300)) + headroom);
    if (l === depth) break;
    const q = Math.min(60, Math.max(20, Math.round(2 * a[l]! - target)));
    if (2 * a[l]! - q > 59) return `node '${levels[l]!.nodes[0] ?? '?'}' needs ${Math.ceil(2 * a[l]!)} bits after its square (more than a 60-bit prime brings back)`;
    rescales.push(q);
    scaleBits.push(2 * scaleBits[l]! - q + levels[l]!.shift);
  }
  // The first prime holds the logits, and every level's values (and squares, before their
  // rescale) beyond what the primes still there hold.
  let first = Math.max(20, Math.ceil(a[depth]! + 1));
  for (let l = 0; l < depth; l++) {
    const below = rescales.slice(l + 1).reduce((x, y) => x + y, 0);
    first = Math.max(first, Math.ceil(a[l]! + 1 - below - rescales[l]!), Math.ceil(2 * a[l]! - rescales[l]! + 1 - below));
  }
  if (first > 60) return `the logits need ${first} bits, more than one 60-bit prime (compile with fewer weightBits)`;
  // SEAL drops the prime just before the special one first: the first rescale's prime goes last.
  const data = [first, ...rescales.reverse()];
  return { bits: [...data, Math.max(...data)], scaleBits };
}

/**
 * A lifted ciphertext is multiplied by C encoded at scale S_ℓ·q/S_d, a plaintext integer of about
 * log2 C + s_ℓ + q − s_d bits: below {@link MIN_LIFT_BITS} its rounding would show in the result.
 *
 * @throws ParameterError naming the stage's node.
 */
function checkLifts(plan: PolyPlan, stages: readonly IntegerStage[], scaleBits: readonly number[], bits: readonly number[]): void {
  // bits = [first, q_depth, …, q_1, special]: q_ℓ is the prime a square at level ℓ − 1 drops.
  const q = (level: number): number => bits[bits.length - 1 - level]!;
  stages.forEach((s, i) => {
    s.lift.forEach((C, j) => {
      if (C === null) return;
      const k = s.sources[j]!;
      const from = k === MODEL_INPUT ? 0 : stages[k]!.level + 1;
      const plainBits = Math.log2(C) + scaleBits[s.level]! + q(s.level) - scaleBits[from]!;
      if (plainBits < MIN_LIFT_BITS) {
        throw new ParameterError(`node '${plan.stages[i]!.node}': bringing a shallower input down to level ${s.level} would lose precision (a ${plainBits.toFixed(0)}-bit constant)`);
      }
    });
  });
}

/** Least bits of the plaintext constant that brings a ciphertext down a level. */
const MIN_LIFT_BITS = 20;

/** Non-zero digits of k in non-adjacent form: additions needed to multiply by k. */
export function nafDigits(k: number): Array<[power: number, sign: 1 | -1]> {
  const out: Array<[number, 1 | -1]> = [];
  let n = k;
  let power = 0;
  while (n !== 0) {
    if (n % 2 !== 0) {
      const d = 2 - (((n % 4) + 4) % 4); // 1 or −1
      out.push([power, d === 1 ? 1 : -1]);
      n -= d;
    }
    n /= 2;
    power++;
  }
  return out;
}

function digits(k: number): number {
  return nafDigits(k).length;
}

/** Highest power of two any weight of column c needs (doublings of that input). */
export function maxDoubling(stage: Pick<IntegerStage, 'colOffsets' | 'weights'>, c: number): number {
  let top = 0;
  for (let t = stage.colOffsets[c]!; t < stage.colOffsets[c + 1]!; t++) {
    const d = nafDigits(stage.weights[t]!);
    top = Math.max(top, d[d.length - 1]![0]);
  }
  return top;
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
}

function intOption(v: number | undefined, fallback: number, min: number, max: number, name: string): number {
  const x = v ?? fallback;
  if (!Number.isSafeInteger(x) || x < min || x > max) throw new RangeError(`${name} must be an integer in ${min}–${max}, got ${x}`);
  return x;
}

