/**
 * Compiles a model for the interactive CKKS protocol. The plan is the Paillier protocol's (linear
 * stages the service evaluates, activation rounds the client evaluates); here each stage's linear
 * maps are composed into one, and each stage gets a normalization so its outputs stay within a
 * known range (|y| ≤ 1 on calibration data), which fixes the CKKS scale budget.
 *
 * @module
 */
import type { Model } from '../../nn/model.js';
import { sizeOf } from '../../nn/shape.js';
import { composeMaps, type SparseLinearMap } from '../../tensor/sparse-linear.js';
import { checkPlan, evaluatePlan, type ActivationGroup, type InferencePlan } from '../paillier-inference/plan.js';
import { planCalibrated } from '../paillier-inference/graph-plan.js';
import { MAX_COEFF_BITS_128, type CkksParameters } from '../../schemes/ckks/index.js';
import type { StageLayoutMode } from './stage-plan.js';

/** Scales and limits of the interactive CKKS protocol. */
export interface CkksProtocolParams {
  readonly ckks: CkksParameters;
  /** log2 of the scale the client encodes its values at. */
  readonly inputScaleBits: number;
  /** log2 of the scale of the service's per-session weight plaintexts. */
  readonly weightScaleBits: number;
  /** Blinding factors are log-uniform in [1, 2^blindBits). */
  readonly blindBits: number;
  /** Outputs may exceed the calibrated range by this factor before the scale budget overflows. */
  readonly headroom: number;
  /** log2 of the factor the service multiplies a fresh encryption of zero's noise by (smudging). */
  readonly floodBits: number;
  /**
   * Each stage's layout: whichever the cost model says is cheapest ('auto', the default), or
   * 'routed', 'diagonal' (dense stages) or 'shared' (convolutions) wherever that one applies.
   */
  readonly stageLayout?: StageLayoutMode;
  /**
   * Let the client evaluate an average pool with disjoint windows right after a ReLU (default
   * true): far fewer values for the next stage, but the client sees the ratios of the values inside
   * each window (docs/security.md); false keeps the pool in the service's next linear stage.
   */
  readonly avgPoolAtClient?: boolean;
  /**
   * Non-homogeneous activations (sigmoid, tanh, GELU, SiLU, HardSwish): evaluated by the client on
   * permuted values ('client', the default) or as blinded ReLU splines ('spline'); see
   * `PlanOptions.nonHomogeneous`.
   */
  readonly nonHomogeneous?: 'client' | 'spline';
}

/**
 * The defaults. One plaintext multiplication per stage and no rescaling: inputs at 2^86, weights
 * at 2^40, product 2^126, plus the largest value (blinding 2^6 × calibrated range × headroom 8 ≈
 * 2^9 for normalized stages, more for logits); {@link compileCkksModel} sizes the data primes from
 * that and picks the smallest ring at 128-bit security — three ~46-bit primes and N = 8192 for the
 * committed models (`ckks` below is only the starting ring). Smudging: every ciphertext that
 * leaves gets an encryption of zero whose noise is 2^98 times a fresh encryption's
 * (`smudging.ts`), 2^51 times the computation's noise on the committed models: statistical
 * distance below 2^-40 for any model whose effective weights have Σ w² ≤ 2^25 per output
 * (docs/security.md says what this does and does not cover); decoded, that noise has a standard
 * deviation of about 10^-5.
 */
export const DEFAULT_CKKS_PROTOCOL: CkksProtocolParams = {
  ckks: { polyModulusDegree: 8192, coeffModulusBits: [60, 60, 60], scaleBits: 45 },
  inputScaleBits: 86,
  weightScaleBits: 40,
  blindBits: 6,
  headroom: 8,
  floodBits: 98,
};

/**
 * The smudging margin blindml used before the statistical default, for comparisons only: inputs
 * and weights at 2^45, noise 2^66 times a fresh encryption's — only 2^14 to 2^20 above the
 * computation's noise on the committed models, a heuristic margin with no statistical-distance
 * guarantee. Pass it (or parts of it) explicitly to `compileCkksModel`.
 */
export const HEURISTIC_SMUDGING: Pick<CkksProtocolParams, 'inputScaleBits' | 'weightScaleBits' | 'floodBits'> = {
  inputScaleBits: 45,
  weightScaleBits: 45,
  floodBits: 66,
};

/** One stage: y = W·x + b (composed), then the client's activation group (none for the last). */
export interface CkksStage {
  readonly map: SparseLinearMap;
  readonly activation: ActivationGroup | null;
  /** The factor σ the client's view of this stage's outputs carries (besides blinding). */
  readonly sigma: number;
  /** Whether outputs may be blinded by random positive factors (ReLU / max-pool + ReLU rounds). */
  readonly blinded: boolean;
}

/** A model compiled for the interactive CKKS protocol. */
export interface CompiledCkksModel {
  readonly plan: InferencePlan;
  readonly stages: readonly CkksStage[];
  readonly params: CkksProtocolParams;
  readonly inputSize: number;
}

function composeAll(maps: readonly SparseLinearMap[]): SparseLinearMap {
  let m = maps[0]!;
  for (const next of maps.slice(1)) m = composeMaps(m, next);
  return m;
}

/**
 * Plans, composes and calibrates the model.
 *
 * @param calibrationInputs - samples one after another, each `inputSize` long.
 * @throws UnsupportedModelError (from the planner) for models the interactive protocol cannot place.
 */
export function compileCkksModel(model: Model, calibrationInputs: Float32Array | Float64Array, params: CkksProtocolParams = DEFAULT_CKKS_PROTOCOL): CompiledCkksModel {
  const options = { avgPoolAtClient: params.avgPoolAtClient ?? true, nonHomogeneous: params.nonHomogeneous ?? 'client' };
  return compileCkksPlan(planCalibrated(model, calibrationInputs, options), calibrationInputs, params);
}

/**
 * Composes and calibrates a plan (stages may read several earlier rounds; see `Stage.sources`).
 *
 * @param calibrationInputs - samples one after another, each the plan's input size long.
 * @throws UnsupportedModelError for a plan whose stages do not fit together (`checkPlan`).
 */
export function compileCkksPlan(plan: InferencePlan, calibrationInputs: Float32Array | Float64Array, params: CkksProtocolParams = DEFAULT_CKKS_PROTOCOL): CompiledCkksModel {
  checkPlan(plan);
  const inputSize = sizeOf(plan.inputShape);
  const maps = plan.stages.map((s) => composeAll(s.linears));
  const maxAbs = maps.map(() => 0);
  const samples = Math.floor(calibrationInputs.length / inputSize);
  for (let k = 0; k < samples; k++) {
    evaluatePlan(plan, calibrationInputs.subarray(k * inputSize, (k + 1) * inputSize), {
      map: (s, m, y) => {
        if (m === plan.stages[s]!.linears.length - 1) for (const v of y) maxAbs[s] = Math.max(maxAbs[s]!, Math.abs(v));
      },
    });
  }
  const stages = plan.stages.map((stage, s): CkksStage => {
    const homogeneous = stage.activation !== null && stage.activation.homogeneous;
    // Only a homogeneous activation lets the client's values carry a factor the service removes later.
    const sigma = homogeneous && maxAbs[s]! > 0 ? 1 / maxAbs[s]! : 1;
    return { map: maps[s]!, activation: stage.activation, sigma, blinded: homogeneous };
  });
  // The largest value any ciphertext holds, in units of its scale: calibrated range × headroom × blinding.
  const valueBound = Math.max(
    1,
    ...stages.map((st, s) => (st.sigma !== 1 ? 1 : maxAbs[s]!) * params.headroom * (st.blinded ? 2 ** params.blindBits : 1)),
  );
  const ckks = ringFor(params.inputScaleBits + params.weightScaleBits + Math.ceil(Math.log2(valueBound)) + 2, params.ckks.polyModulusDegree);
  return { plan, stages, params: { ...params, ckks }, inputSize };
}

/**
 * The parameters for one plaintext multiplication per round (no rescaling): data primes of at
 * most 60 bits adding up to `bits`, a 60-bit special prime, and the smallest ring (at least
 * `minDegree`) whose 128-bit bound holds them.
 *
 * @throws RangeError when no ring up to N = 32768 fits.
 */
export function ringFor(bits: number, minDegree: number): CkksParameters {
  const count = Math.ceil(bits / 60);
  const each = Math.ceil(bits / count);
  const coeffModulusBits = [...Array.from({ length: count }, () => each), 60];
  const total = coeffModulusBits.reduce((a, b) => a + b, 0);
  for (const degree of [4096, 8192, 16384, 32768]) {
    if (degree >= minDegree && total <= MAX_COEFF_BITS_128[degree]!) return { polyModulusDegree: degree, coeffModulusBits, scaleBits: each };
  }
  throw new RangeError(`a ${total}-bit modulus fits no ring at 128-bit security`);
}
