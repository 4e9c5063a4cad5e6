/**
 * Fixed-point scales for the interactive Paillier protocol, chosen from the weights and a
 * calibration pass and recorded with the compiled model.
 *
 * Every value on the wire is an integer v ≈ σ·x for a real value x and a scale σ:
 *
 * - The client's input: σ = `inputScale` (255 for byte images: exact).
 * - A linear map's output: σ = Q, chosen so the largest weight's exponent e = round(Q·w/σ_in) has
 *   `weightBits` bits for the largest input scale (most strongly blinded input), and
 *   weightBits + blindBits + 1 bits for the smallest.
 * - Before a ReLU / LeakyReLU / max-pool round the service multiplies each value (or each window) by a fresh
 *   random r in [2^M, 2^(M+1+blindBits)) (M = blindMantissaBits) and adds noise |e| < r/2 (which
 *   keeps signs and orders); the client returns ⌊f(r·v + e)/2^shift⌋, so the next stage's
 *   inputs have per-value scales σ_j = r_j·Q/2^shift, which the service folds into that stage's
 *   exponents (no division under encryption is ever needed).
 * - Before a round of functions that are not positively homogeneous (sigmoid, tanh, GELU, SiLU,
 *   HardSwish, Clip) values travel unblinded with Q public; the client returns
 *   round(f(x)·2^precisionBits).
 * - A stage reading several rounds folds each column's own scale into its exponents.
 *
 * @module
 */
import { maxAbsWeight, type SparseLinearMap } from '../../tensor/sparse-linear.js';
import type { Model } from '../../nn/model.js';
import { planCalibrated } from './graph-plan.js';
import { checkPlan, evaluatePlan, isBoundedByOne, sourceSize, type InferencePlan, type PlanOptions, type Stage } from './plan.js';

/**
 * Tunable precision and privacy knobs. The defaults keep the largest logit error near 1e-3 on the
 * bundled models; a model owner can trade precision for narrower slots (more samples per
 * ciphertext) after checking with `simulateProtocol` that no prediction changes.
 */
export interface QuantizationParams {
  /**
   * Bits of precision of every integer exponent (the exponent of the largest weight, for the most
   * strongly blinded input). Exponents reach weightBits + blindBits + 1 bits. Default 16.
   */
  readonly weightBits: number;
  /**
   * Exponent bits of maps whose rows each have equal weights (average pooling), for the most
   * strongly blinded input. Their exponents only carry the inputs' scales, so rounding moves each
   * term by at most 2^-(bits+1) of its value, with no small weights losing precision: they need
   * fewer bits than `weightBits` for the same error. Default 6.
   */
  readonly uniformWeightBits: number;
  /** Random factors span 2^blindBits in magnitude (log-uniform). Default 3. */
  readonly blindBits: number;
  /**
   * Random bits of a blinding factor's mantissa: factors are m·2^s with m in
   * [2^blindMantissaBits, 2^(blindMantissaBits+1)). Default 8.
   */
  readonly blindMantissaBits: number;
  /** Significant bits the client keeps when it shifts its outputs. Default 18. */
  readonly precisionBits: number;
  /**
   * Scale of the client's input quantization (x ↦ round(x·inputScale)). By default 255 when every
   * calibration input is a multiple of 1/255 (byte images: exact), else 2^precisionBits / max|x|.
   */
  readonly inputScale: number;
  /** Calibrated maxima are multiplied by this before sizing slots. Default 4. */
  readonly headroom: number;
  /** Guard bits per packing slot (overflow detection). Default 6. */
  readonly guardBits: number;
}

export const DEFAULT_QUANTIZATION: Omit<QuantizationParams, 'inputScale'> = {
  weightBits: 16,
  uniformWeightBits: 6,
  blindBits: 3,
  blindMantissaBits: 8,
  precisionBits: 18,
  headroom: 4,
  guardBits: 6,
};

/** Scales of one linear map. */
export interface MapScales {
  /** Output scale Q. */
  readonly q: number;
  /** Smallest input scale the exponents are sized for. */
  readonly inputScaleMin: number;
  /** Bound on |output integer|. */
  readonly outputBound: number;
}

/** Scales of one stage. */
export interface StageScales {
  readonly maps: readonly MapScales[];
  /** For a homogeneous activation: the client's right shift. */
  readonly shift: number;
  /** Bound on |value sent to the client| (after blinding). */
  readonly sentBound: number;
  /** Bound on |value the client returns|. */
  readonly returnedBound: number;
}

/** Largest magnitudes seen when running the plan in floating point on calibration inputs. */
export interface Calibration {
  readonly inputMaxAbs: number;
  /** Every calibration input is k/255 for an integer k (byte images). */
  readonly byteInputs: boolean;
  /** Per stage, per linear map: max |output|. */
  readonly mapMaxAbs: readonly (readonly number[])[];
  /** Per stage: max |activation output| (0 for the last stage). */
  readonly activationMaxAbs: readonly number[];
  readonly samples: number;
}

/** Everything the protocol needs about a model besides its weights. */
export interface CompiledPaillierModel {
  readonly plan: InferencePlan;
  readonly params: QuantizationParams;
  readonly stages: readonly StageScales[];
  readonly calibration: Calibration;
  /** Largest |integer| anywhere: what a packing slot must hold (guard bits come on top). */
  readonly valueBound: number;
  /** Bits of the widest integer anywhere (sign included, guard bits excluded). */
  readonly valueBits: number;
}

/**
 * Runs the plan in floating point on calibration inputs and records the largest magnitudes.
 *
 * @param inputs - samples one after another, each `plan.inputShape` in size, values as the model expects.
 */
export function calibrate(plan: InferencePlan, inputs: Float32Array | Float64Array, inputSize: number): Calibration {
  const samples = inputs.length / inputSize;
  const mapMaxAbs = plan.stages.map((s) => s.linears.map(() => 0));
  const activationMaxAbs = plan.stages.map(() => 0);
  for (let k = 0; k < samples; k++) {
    evaluatePlan(plan, inputs.subarray(k * inputSize, (k + 1) * inputSize), {
      map: (s, m, y) => (mapMaxAbs[s]![m] = Math.max(mapMaxAbs[s]![m]!, maxAbs(y))),
      activation: (s, y) => (activationMaxAbs[s] = Math.max(activationMaxAbs[s]!, maxAbs(y))),
    });
  }
  const byteInputs = inputs.every((v) => Math.abs(Math.round(v * 255) - v * 255) < 1e-4);
  return { inputMaxAbs: maxAbs(inputs), byteInputs, mapMaxAbs, activationMaxAbs, samples };
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/**
 * Chooses every scale from the weights and the calibration.
 *
 * @throws RangeError for parameters outside sensible ranges.
 */
export function compilePaillierModel(
  plan: InferencePlan,
  calibration: Calibration,
  params: Partial<QuantizationParams> = {},
): CompiledPaillierModel {
  const precisionBits = params.precisionBits ?? DEFAULT_QUANTIZATION.precisionBits;
  const autoScale = calibration.byteInputs ? 255 : 2 ** precisionBits / Math.max(calibration.inputMaxAbs, 1e-12);
  const p: QuantizationParams = { ...DEFAULT_QUANTIZATION, inputScale: autoScale, ...params };
  if (p.weightBits < 4 || p.weightBits > 30) throw new RangeError('weightBits must be in [4, 30]');
  if (p.uniformWeightBits < 4 || p.uniformWeightBits > 30) throw new RangeError('uniformWeightBits must be in [4, 30]');
  if (p.blindBits < 0 || p.blindBits > 24) throw new RangeError('blindBits must be in [0, 24]');
  if (p.precisionBits < 8 || p.precisionBits > 48) throw new RangeError('precisionBits must be in [8, 48]');
  if (p.blindMantissaBits < 4 || p.blindMantissaBits + 1 + p.blindBits > 30) throw new RangeError('blindMantissaBits must be at least 4, and factors below 2^30');
  const rMin = 2 ** p.blindMantissaBits;
  const rMax = 2 ** (p.blindMantissaBits + 1 + p.blindBits);
  checkPlan(plan);
  const stages: StageScales[] = [];
  // Per source (index source + 1): the scales its integers carry and a bound on them.
  const inputBound = p.inputScale * Math.max(calibration.inputMaxAbs, 1) * p.headroom;
  const sources: SourceScales[] = [{ min: p.inputScale, max: p.inputScale, bound: inputBound }];
  let widest = bitsOf(inputBound);
  let largest = inputBound;
  plan.stages.forEach((stage, s) => {
    const maps: MapScales[] = [];
    const read = stage.sources.map((k) => sources[k + 1]!);
    // The next map's inputs: scales between scaleMin and scaleMax, |integer| ≤ bound.
    let scaleMin = Math.min(...read.map((r) => r.min));
    let bound = Math.max(...read.map((r) => r.bound));
    stage.linears.forEach((map: SparseLinearMap, m) => {
      const bits = uniformRows(map) ? p.uniformWeightBits : p.weightBits;
      const reach = m === 0 ? firstMapReach(plan, stage, map, read) : scaleMin / Math.max(maxAbsWeight(map), 1e-30);
      const q = 2 ** bits * reach;
      const a = Math.max(calibration.mapMaxAbs[s]![m]!, 1e-12) * p.headroom;
      // Rounding each exponent moves each term by at most half an input integer.
      const outputBound = q * a + 0.5 * widestRow(map) * bound;
      maps.push({ q, inputScaleMin: scaleMin, outputBound });
      widest = Math.max(widest, bitsOf(outputBound));
      largest = Math.max(largest, outputBound);
      scaleMin = q;
      bound = outputBound;
    });
    const q = maps[maps.length - 1]!.q;
    const out = maps[maps.length - 1]!.outputBound;
    let shift = 0;
    let sentBound = out;
    let returnedBound = out;
    if (stage.activation?.homogeneous) {
      sentBound = out * rMax + rMax / 2; // r·v + e with |e| < r/2
      const a = Math.max(calibration.activationMaxAbs[s]!, 1e-12) * p.headroom;
      shift = Math.max(0, Math.floor(Math.log2(rMin * q * a)) - p.precisionBits);
      returnedBound = sentBound / 2 ** shift + 1;
      sources.push({ min: (rMin * q) / 2 ** shift, max: (rMax * q) / 2 ** shift, bound: returnedBound });
    } else if (stage.activation) {
      // Returned as round(f(x)·2^precisionBits): |f| ≤ 1 for sigmoid/tanh, else as calibrated.
      const reach = isBoundedByOne(stage.activation.fns) ? 1 : Math.max(1, calibration.activationMaxAbs[s]! * p.headroom);
      returnedBound = 2 ** p.precisionBits * reach;
      sources.push({ min: 2 ** p.precisionBits, max: 2 ** p.precisionBits, bound: returnedBound });
    }
    widest = Math.max(widest, bitsOf(sentBound), bitsOf(returnedBound));
    largest = Math.max(largest, sentBound, returnedBound);
    stages.push({ maps, shift, sentBound, returnedBound });
  });
  return { plan, params: p, stages, calibration, valueBound: Math.ceil(largest), valueBits: widest + 1 };
}

/** The scales one source's integers carry (min ≠ max when blinding factors differ per value) and a bound on them. */
interface SourceScales {
  readonly min: number;
  readonly max: number;
  readonly bound: number;
}

/**
 * q / 2^bits for a stage's first map: the largest weight in each source's columns gets `bits`
 * bits at that source's largest scale (e = q·w/σ), so no source's terms lose precision to
 * another's scale; exponents reach bits + log2(max/min) bits for that source's smallest scale. A
 * chain has one source: q = 2^bits·σ_max/max|w|.
 */
function firstMapReach(plan: InferencePlan, stage: Stage, map: SparseLinearMap, read: readonly SourceScales[]): number {
  const ends: number[] = [];
  let at = 0;
  for (const k of stage.sources) ends.push((at += sourceSize(plan, k)));
  const weights = new Float64Array(ends.length);
  for (let t = 0; t < map.indices.length; t++) {
    const col = map.indices[t]!;
    let i = 0;
    while (col >= ends[i]!) i++;
    weights[i] = Math.max(weights[i]!, Math.abs(map.weights[t]!));
  }
  let reach = 0;
  weights.forEach((w, i) => {
    if (w > 0) reach = Math.max(reach, read[i]!.max / w);
  });
  return reach > 0 ? reach : Math.max(...read.map((r) => r.max)) / 1e-30;
}

/** True if every row's weights are all equal (average pooling), to within rounding. */
function uniformRows(map: SparseLinearMap): boolean {
  for (let r = 0; r < map.rows; r++) {
    const from = map.offsets[r]!;
    const w = map.weights[from];
    for (let t = from + 1; t < map.offsets[r + 1]!; t++) if (Math.abs(map.weights[t]! - w!) > 1e-9 * Math.abs(w!)) return false;
  }
  return true;
}

/** Most terms in one row. */
function widestRow(map: SparseLinearMap): number {
  let most = 0;
  for (let r = 0; r < map.rows; r++) most = Math.max(most, map.offsets[r + 1]! - map.offsets[r]!);
  return most;
}

function bitsOf(x: number): number {
  return Math.max(1, Math.ceil(Math.log2(Math.max(2, x))));
}

/**
 * Plans, calibrates and compiles a model in one step (what a model owner runs once).
 *
 * @param calibrationInputs - samples one after another, as the model expects them.
 * @param planOptions - how activations are placed (e.g. `nonHomogeneous: 'spline'`).
 * @throws UnsupportedModelError if the protocol cannot place a node.
 */
export function compileModel(
  model: Model,
  calibrationInputs: Float32Array | Float64Array,
  params: Partial<QuantizationParams> = {},
  planOptions: PlanOptions = {},
): CompiledPaillierModel {
  const plan = planCalibrated(model, calibrationInputs, planOptions);
  return compilePaillierModel(plan, calibrate(plan, calibrationInputs, model.inputSize), params);
}
