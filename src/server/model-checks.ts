/**
 * Checks an uploaded model must pass before the registry stores it, so the service never serves a
 * model every session would fail on, or one it would answer wrongly without saying so:
 *
 * - every weight and bias is finite (NaN or ±Infinity break every session);
 * - every weight, bias, input and calibrated intermediate value is at most {@link MAX_MAGNITUDE}
 *   in magnitude: CKKS encodes a ciphertext's slots in double precision, so a value of magnitude
 *   M adds roughly M·2^-50 of error to every other value it travels with (a 1e38 bias turns the
 *   other logits into ±1e21); below 2^32 that error stays under 10^-5;
 * - every activation round passes the schema the client validates `activate` messages with
 *   (e.g. at most 16 functions applied in one round: a chain of 2,000 ReLUs is refused by every
 *   client), and the session description passes the client's `opened` schema.
 *
 * @module
 */
import type { InferencePlan } from '../protocol/paillier-inference/plan.js';
import type { CompiledPaillierModel } from '../protocol/paillier-inference/compile.js';
import { activationSpecSchema, sessionInfoSchema } from '../protocol/paillier-inference/messages.js';

/** Largest magnitude of any weight, bias or calibrated value the service accepts (2^32). */
export const MAX_MAGNITUDE = 2 ** 32;

/** Why a model cannot be served: one line for the owner. */
export class ModelCheckError extends Error {}

/**
 * Checks the weights of a planned model.
 *
 * @throws ModelCheckError naming the stage and what is wrong.
 */
export function checkWeights(plan: InferencePlan): void {
  plan.stages.forEach((stage, s) => {
    stage.linears.forEach((map, m) => {
      const where = `stage ${s + 1}${stage.linears.length > 1 ? `, linear map ${m + 1}` : ''}`;
      checkValues(map.weights, `a weight in ${where}`);
      checkValues(map.bias, `a bias in ${where}`);
    });
  });
}

function checkValues(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw new ModelCheckError(`${what} is ${v} (weights must be finite numbers)`);
    if (Math.abs(v) > MAX_MAGNITUDE) throw new ModelCheckError(`${what} is ${v.toExponential(3)}, beyond ±2^32, the largest magnitude the encrypted protocols carry accurately`);
  }
}

/**
 * Checks the calibrated ranges and what a client will be sent.
 *
 * @throws ModelCheckError naming the stage and what is wrong.
 */
export function checkCompiled(model: CompiledPaillierModel): void {
  const c = model.calibration;
  const ranges: [string, number][] = [
    ['the calibration inputs', c.inputMaxAbs],
    ...c.mapMaxAbs.flatMap((maps, s) => maps.map((v): [string, number] => [`the values after stage ${s + 1}'s linear layers`, v])),
    ...c.activationMaxAbs.map((v, s): [string, number] => [`the values after stage ${s + 1}'s activation`, v]),
  ];
  for (const [what, v] of ranges) {
    if (!Number.isFinite(v)) throw new ModelCheckError(`${what} are not finite on the calibration inputs`);
    if (v > MAX_MAGNITUDE) throw new ModelCheckError(`${what} reach ${v.toExponential(3)} on the calibration inputs, beyond ±2^32, the largest magnitude the encrypted protocols carry accurately`);
  }
  const last = model.stages[model.stages.length - 1]!;
  const info = sessionInfoSchema.safeParse({
    inputShape: [...model.plan.inputShape],
    inputScale: model.params.inputScale,
    batch: 1,
    slotBits: Math.min(4096, model.valueBits + model.params.guardBits),
    guardBits: model.params.guardBits,
    rounds: model.plan.stages.length - 1,
    outputSize: model.plan.outputSize,
    outputScale: last.maps[last.maps.length - 1]!.q,
    outputActivation: model.plan.outputActivation,
  });
  if (!info.success) throw new ModelCheckError(`clients cannot run this model: ${issue(info.error)}`);
  model.plan.stages.forEach((stage, s) => {
    const group = stage.activation;
    if (!group) return;
    const homogeneous = group.homogeneous;
    // What the service will send in this round (sizes as in a latency session, one value per ciphertext).
    const spec = activationSpecSchema.safeParse({
      fns: [...group.fns],
      unitSizes: group.windows ? group.windows.map((w) => w.length) : null,
      units: group.outputSize,
      scale: homogeneous ? null : model.stages[s]!.maps[model.stages[s]!.maps.length - 1]!.q,
      shift: homogeneous ? model.stages[s]!.shift : 0,
      returnScale: homogeneous ? null : 2 ** model.params.precisionBits,
      slotBits: Math.min(4096, model.valueBits + model.params.guardBits),
      valuesPerCiphertext: 1,
      values: group.inputSize,
    });
    if (!spec.success) throw new ModelCheckError(`clients would refuse activation round ${s + 1} of this model: ${issue(spec.error)}`);
  });
}

function issue(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  const first = error.issues[0];
  return first ? `${first.path.map(String).join('.') || '(root)'}: ${first.message}` : 'invalid';
}
