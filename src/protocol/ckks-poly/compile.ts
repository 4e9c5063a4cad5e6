/**
 * Compiles a polynomial network for one-round evaluation on CKKS ciphertexts in batch mode: one
 * image per slot, one ciphertext per input value, so every linear stage is a sum of ciphertexts
 * times scalar weights and no rotation is ever needed.
 *
 * **Integer weights.** Multiplying a ciphertext by a real weight costs a plaintext encoding, a
 * plaintext product and a level. blindml instead rounds each output row's weights to signed
 * integers of `weightBits` bits against a per-row factor g (decrypted value × g = real value),
 * multiplies by those integers with additions of doublings (signed binary digits), and carries the
 * factors in plaintext bookkeeping: linear stages consume no level at all. Only the activations
 * do, one square (and one rescale) each.
 *
 * **Degree-2 activations as one square.** p(z) = a₂z² + a₁z + a₀ = a₂(z + β)² + γ with
 * β = a₁/(2a₂): β joins the bias of the stage before, the square is the only ciphertext product,
 * and a₂ and γ fold into the next stage's weights and bias.
 *
 * **Parameters from the depth and the magnitudes.** The integer weights make values grow by a
 * known number of bits per stage. Running the integer pipeline in plaintext on calibration images
 * measures those bits; each rescale prime is sized to bring a square back to `targetBits`, the
 * first prime holds the logits, and the ring is the smallest whose 128-bit bound (SEAL's default
 * table) fits them all.
 *
 * Everything here is plaintext work on the model (no secrets). Browser-safe.
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';
import type { Model } from '../../nn/model.js';
import { MAX_COEFF_BITS_128, type CkksParameters } from '../../schemes/ckks/params.js';
import { planPolyNetwork, type PolyPlan, UnsupportedModelError } from './plan.js';

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
  /** Largest |decrypted value| of the stage's outputs (before the square) over calibration. */
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
  /** Ciphertext squares per batch (one per activation value). */
  readonly squares: number;
  /** Ciphertext additions per batch spent on integer weights (digits of every weight, plus doublings). */
  readonly additions: number;
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
 * @throws ParameterError when no ring up to N = 32768 holds the values at 128-bit security.
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
  const { stages, outputFactor } = quantize(plan, weightBits);
  const { maxima, logits } = runInteger(stages, calibration, plan.inputSize, outputFactor);
  const withMax = stages.map((s, i) => ({ ...s, calibrationMax: maxima[i]! }));
  const { params, inputScaleBits: chosenBits } = chooseRing(maxima, { inputScaleBits, targetBits, headroomBits, minDegree: options.minDegree ?? 8192 });
  let additions = 0;
  for (const s of withMax) {
    for (let t = 0; t < s.weights.length; t++) additions += digits(s.weights[t]!);
    for (let c = 0; c < s.cols; c++) additions += maxDoubling(s, c);
  }
  return {
    plan,
    stages: withMax,
    params,
    inputScale: 2 ** chosenBits,
    outputFactor,
    weightBits,
    squares: withMax.filter((s) => s.square).reduce((n, s) => n + s.rows, 0),
    additions,
    calibrationLogits: logits,
  };
}

type Unmeasured = Omit<IntegerStage, 'calibrationMax'>;

/** Rounds every stage to integers, carrying per-value factors from stage to stage. */
function quantize(plan: PolyPlan, weightBits: number): { stages: Unmeasured[]; outputFactor: number } {
  const kMax = 2 ** (weightBits - 1) - 1;
  let factors = new Float64Array(plan.inputSize).fill(1);
  let carry: { gamma: number } | null = null;
  const stages: Unmeasured[] = [];
  let outputFactor = 1;
  plan.stages.forEach((stage, s) => {
    const { map, activation } = stage;
    const last = activation === null;
    const g = new Float64Array(map.rows);
    for (let r = 0; r < map.rows; r++) {
      let m = 0;
      for (let t = map.offsets[r]!; t < map.offsets[r + 1]!; t++) m = Math.max(m, Math.abs(map.weights[t]! * factors[map.indices[t]!]!));
      g[r] = m > 0 ? m / kMax : 1;
    }
    if (last) {
      // One factor for all logits: the output scale then reveals one number about the model, not one per class.
      outputFactor = Math.max(...g);
      g.fill(outputFactor);
    }
    let beta = 0;
    if (activation) {
      const [, a1 = 0, a2 = 0] = activation;
      if (a2 === 0) throw new UnsupportedModelError(`stage ${s}: a degree-2 activation needs a non-zero x² coefficient`);
      beta = a1 / (2 * a2);
    }
    const bias = new Float64Array(map.rows);
    const rows: number[][] = Array.from({ length: map.cols }, () => []);
    const ks: number[][] = Array.from({ length: map.cols }, () => []);
    for (let r = 0; r < map.rows; r++) {
      let b = map.bias[r]!;
      for (let t = map.offsets[r]!; t < map.offsets[r + 1]!; t++) {
        const c = map.indices[t]!;
        if (carry) b += map.weights[t]! * carry.gamma;
        const k = Math.round((map.weights[t]! * factors[c]!) / g[r]!);
        if (k !== 0) {
          rows[c]!.push(r);
          ks[c]!.push(k);
        }
      }
      bias[r] = (b + beta) / g[r]!;
    }
    stages.push({ rows: map.rows, cols: map.cols, ...byColumn(rows, ks), bias, square: !last });
    if (activation) {
      const [a0 = 0, a1 = 0, a2 = 0] = activation;
      factors = g.map((gr) => a2 * gr * gr);
      carry = { gamma: a0 - (a1 * a1) / (4 * a2) };
    }
  });
  return { stages, outputFactor };
}

function byColumn(rows: number[][], ks: number[][]): Pick<IntegerStage, 'colOffsets' | 'rowIndex' | 'weights'> {
  const colOffsets = new Int32Array(rows.length + 1);
  rows.forEach((r, c) => (colOffsets[c + 1] = colOffsets[c]! + r.length));
  return { colOffsets, rowIndex: Int32Array.from(rows.flat()), weights: Int32Array.from(ks.flat()) };
}

/**
 * The integer pipeline in double precision: what the service computes, without the noise.
 * Returns each stage's largest |output| and the logits (already × outputFactor).
 */
export function runInteger(
  stages: readonly Unmeasured[],
  inputs: Float32Array | Float64Array,
  inputSize: number,
  outputFactor: number,
): { maxima: number[]; logits: Float64Array } {
  const count = inputs.length / inputSize;
  const maxima = stages.map(() => 0);
  const outSize = stages[stages.length - 1]!.rows;
  const logits = new Float64Array(count * outSize);
  for (let n = 0; n < count; n++) {
    let x: Float64Array = Float64Array.from(inputs.subarray(n * inputSize, (n + 1) * inputSize));
    stages.forEach((s, i) => {
      const y = Float64Array.from(s.bias);
      for (let c = 0; c < s.cols; c++) {
        const v = x[c]!;
        for (let t = s.colOffsets[c]!; t < s.colOffsets[c + 1]!; t++) y[s.rowIndex[t]!] = y[s.rowIndex[t]!]! + s.weights[t]! * v;
      }
      for (const v of y) maxima[i] = Math.max(maxima[i]!, Math.abs(v));
      x = s.square ? y.map((v) => v * v) : y;
    });
    for (let j = 0; j < outSize; j++) logits[n * outSize + j] = x[j]! * outputFactor;
  }
  return { maxima, logits };
}

/**
 * Sizes the primes. With decrypted magnitude bits L_s = log2(max_s) + headroom and scale S_s, the
 * values of stage s occupy a_s = log2 S_s + L_s bits; a square doubles that and the rescale prime
 * q brings it back to the target; the first prime holds the last stage plus a sign bit, and the
 * special prime is as large as the largest other. The smallest ring (from `minDegree`) that fits
 * at 128-bit security wins; within a ring, up to {@link PRECISION_GIVE} bits of input scale and
 * target are given up before moving to the next ring (twice the memory per ciphertext).
 */
function chooseRing(
  maxima: readonly number[],
  o: { inputScaleBits: number; targetBits: number; headroomBits: number; minDegree: number },
): { params: CkksParameters; inputScaleBits: number } {
  let why = '';
  for (const degree of [1024, 2048, 4096, 8192, 16384, 32768]) {
    if (degree < o.minDegree) continue;
    for (let give = 0; give <= PRECISION_GIVE; give++) {
      const t0 = o.inputScaleBits - give;
      const target = o.targetBits - give;
      if (t0 < 20 || target < 20) break;
      const bits = primeBits(maxima, t0, target, o.headroomBits);
      if (typeof bits === 'string') {
        why = bits;
        continue;
      }
      const total = bits.reduce((x, y) => x + y, 0);
      if (total <= (MAX_COEFF_BITS_128[degree] ?? 0)) {
        return { params: { polyModulusDegree: degree, coeffModulusBits: bits, scaleBits: t0 }, inputScaleBits: t0 };
      }
      why = `a ${total}-bit coefficient modulus`;
    }
  }
  throw new ParameterError(`no ring up to N = 32768 holds this network at 128-bit security (${why})`);
}

/** Bits given up (input scale and target each) before a larger ring is tried. */
export const PRECISION_GIVE = 6;

function primeBits(maxima: readonly number[], t0: number, target: number, headroom: number): number[] | string {
  const rescales: number[] = [];
  let scaleBits = t0;
  let a = 0;
  for (let s = 0; s < maxima.length; s++) {
    a = scaleBits + Math.log2(Math.max(maxima[s]!, 1e-300)) + headroom;
    if (s === maxima.length - 1) break;
    const q = Math.min(60, Math.max(20, Math.round(2 * a - target)));
    if (2 * a - q > 59) return `stage ${s} needs ${Math.ceil(2 * a)} bits after its square`;
    rescales.push(q);
    scaleBits = 2 * scaleBits - q;
  }
  const first = Math.max(20, Math.ceil(a + 1));
  if (first > 60) return `the logits need ${first} bits, more than one 60-bit prime`;
  // SEAL drops the prime just before the special one first: the first rescale's prime goes last.
  const data = [first, ...rescales.reverse()];
  return [...data, Math.max(...data)];
}

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

function intOption(v: number | undefined, fallback: number, min: number, max: number, name: string): number {
  const x = v ?? fallback;
  if (!Number.isSafeInteger(x) || x < min || x > max) throw new RangeError(`${name} must be an integer in ${min}–${max}, got ${x}`);
  return x;
}
