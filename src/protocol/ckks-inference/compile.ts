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
import { applyMap, composeMaps, type SparseLinearMap } from '../../tensor/sparse-linear.js';
import { applyGroup, planModel, type ActivationGroup, type InferencePlan } from '../paillier-inference/plan.js';
import type { CkksParameters } from '../../schemes/ckks/index.js';

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
}

/**
 * The default: N = 8192 (4096 slots), two 60-bit data primes and a 60-bit special prime (180 bits,
 * within the 218-bit bound for 128-bit security). One plaintext multiplication per stage and no
 * rescaling: inputs at 2^45, weights at 2^45, product 2^90; values stay below 2^12 (blinding 2^6,
 * calibrated range × headroom), so 2^102 < 2^119. The computation's noise is about 2^65; the
 * smudging noise added before results leave is a fresh encryption's (≈ 2^13) times 2^floodBits.
 */
export const DEFAULT_CKKS_PROTOCOL: CkksProtocolParams = {
  ckks: { polyModulusDegree: 8192, coeffModulusBits: [60, 60, 60], scaleBits: 45 },
  inputScaleBits: 45,
  weightScaleBits: 45,
  blindBits: 6,
  headroom: 8,
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
  const plan = planModel(model);
  const inputSize = sizeOf(plan.inputShape);
  const maps = plan.stages.map((s) => composeAll(s.linears));
  const maxAbs = maps.map(() => 0);
  const samples = Math.floor(calibrationInputs.length / inputSize);
  for (let k = 0; k < samples; k++) {
    let x: ArrayLike<number> = calibrationInputs.subarray(k * inputSize, (k + 1) * inputSize);
    plan.stages.forEach((stage, s) => {
      const y = applyMap(maps[s]!, x);
      for (const v of y) maxAbs[s] = Math.max(maxAbs[s]!, Math.abs(v));
      x = stage.activation ? applyGroup(stage.activation, y) : y;
    });
  }
  const stages = plan.stages.map((stage, s): CkksStage => {
    const homogeneous = stage.activation !== null && stage.activation.homogeneous;
    // Only a homogeneous activation lets the client's values carry a factor the service removes later.
    const sigma = homogeneous && maxAbs[s]! > 0 ? 1 / maxAbs[s]! : 1;
    return { map: maps[s]!, activation: stage.activation, sigma, blinded: homogeneous };
  });
  return { plan, stages, params, inputSize };
}
