/**
 * The integer arithmetic of the interactive Paillier protocol without the encryption: the same
 * exponents, biases, blinding factors, client shifts and roundings as the service and client, on
 * doubles instead of plaintexts. Model owners use it to choose quantization parameters (how much
 * precision a model needs for its predictions not to change) and to check the compiled bounds
 * against the values that really occur; tests use it to compare with the encrypted run.
 *
 * Values are carried as doubles (53-bit mantissas), so for integers wider than 2^53 the result is
 * the protocol's to within a relative 2^-53, far below the quantization error it measures.
 *
 * @module
 */
import { applyGroup, lastReaders, MODEL_INPUT, sourceSize, type ActivationGroup } from './plan.js';
import type { CompiledPaillierModel } from './compile.js';
import { blindingFactor, blindingNoise, integerExponents, joinScales } from './session-math.js';

/** What {@link simulateProtocol} reports. */
export interface SimulationResult {
  /** Output values per sample, samples one after another (logits before any final activation). */
  readonly logits: Float64Array;
  /**
   * Per stage: the largest |integer| seen after each linear map, sent to the client (blinded) and
   * returned by it — compare with the compiled bounds.
   */
  readonly maxAbs: readonly { readonly maps: readonly number[]; readonly sent: number; readonly returned: number }[];
}

/**
 * Runs the protocol's integer pipeline on `inputs` (samples one after another, as the model
 * expects them), with fresh random blinding as the service would draw it; `batch` samples at a
 * time share their blinding factors, as in a batch-mode session.
 *
 * @throws RangeError if `inputs` is not a whole number of samples.
 */
export function simulateProtocol(model: CompiledPaillierModel, inputs: Float32Array | Float64Array, batch = 1): SimulationResult {
  const inputSize = sourceSize(model.plan, MODEL_INPUT);
  if (inputs.length === 0 || inputs.length % inputSize !== 0) throw new RangeError(`simulateProtocol: samples have ${inputSize} values`);
  const samples = inputs.length / inputSize;
  const maxAbs = model.plan.stages.map((s) => ({ maps: s.linears.map(() => 0), sent: 0, returned: 0 }));
  const outputSize = model.plan.outputSize;
  const logits = new Float64Array(samples * outputSize);
  const readers = lastReaders(model.plan.stages);
  for (let first = 0; first < samples; first += batch) {
    const group = Math.min(batch, samples - first);
    const scale = model.params.inputScale;
    // Per source (index source + 1): each sample's integers, and their scales.
    const held: (Held | null)[] = [
      {
        xs: Array.from({ length: group }, (_, k) =>
          Float64Array.from(inputs.subarray((first + k) * inputSize, (first + k + 1) * inputSize), (v) => Math.round(v * scale)),
        ),
        scales: scale,
      },
    ];
    model.plan.stages.forEach((stage, s) => {
      const scales = model.stages[s]!;
      const read = stage.sources.map((k) => held[k + 1]!);
      let xs = Array.from({ length: group }, (_, k) => concat(read.map((h) => h.xs[k]!)));
      let sigma = joinScales(read.map((h) => ({ values: h.xs[0]!, scales: h.scales })));
      stage.sources.forEach((k) => {
        if (readers[k + 1] === s) held[k + 1] = null;
      });
      stage.linears.forEach((map, m) => {
        const { q } = scales.maps[m]!;
        const e = integerExponents(map, q, sigma);
        const bias = Float64Array.from(map.bias, (b) => Math.round(b * q));
        xs = xs.map((x) => {
          const y = new Float64Array(map.rows);
          for (let r = 0; r < map.rows; r++) {
            let acc = bias[r]!;
            for (let t = map.offsets[r]!; t < map.offsets[r + 1]!; t++) acc += e[t]! * x[map.indices[t]!]!;
            y[r] = acc;
          }
          maxAbs[s]!.maps[m] = Math.max(maxAbs[s]!.maps[m]!, largest(y));
          return y;
        });
        sigma = q;
      });
      const q = scales.maps[scales.maps.length - 1]!.q;
      if (!stage.activation) {
        xs.forEach((x, k) => logits.set(x.map((v) => v / q), (first + k) * outputSize));
        return;
      }
      const round = activationRound(model, stage.activation, xs, q, scales.shift);
      maxAbs[s]!.sent = Math.max(maxAbs[s]!.sent, round.sentMax);
      for (const v of round.values) maxAbs[s]!.returned = Math.max(maxAbs[s]!.returned, largest(v));
      held[s + 1] = { xs: round.values, scales: round.scales };
    });
  }
  return { logits, maxAbs };
}

/** A source's integers per sample and their scales. */
interface Held {
  readonly xs: Float64Array[];
  readonly scales: Float64Array | number;
}

function concat(parts: readonly Float64Array[]): Float64Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One client round as the service blinds it (one factor per unit for all samples) and the client evaluates it. */
function activationRound(
  model: CompiledPaillierModel,
  group: ActivationGroup,
  xs: Float64Array[],
  q: number,
  shift: number,
): { values: Float64Array[]; scales: Float64Array | number; sentMax: number } {
  const { precisionBits, blindBits, blindMantissaBits } = model.params;
  if (!group.homogeneous) {
    const values = xs.map((x) => applyGroup(group, Float64Array.from(x, (v) => v / q)).map((v) => Math.round(v * 2 ** precisionBits)));
    return { values, scales: 2 ** precisionBits, sentMax: Math.max(...xs.map(largest)) };
  }
  const windows = group.windows ?? Array.from({ length: group.outputSize }, (_, j) => Int32Array.of(j));
  const values = xs.map(() => new Float64Array(group.outputSize));
  const scales = new Float64Array(group.outputSize);
  const divisor = 2 ** shift;
  let sentMax = 0;
  windows.forEach((cells, w) => {
    const r = blindingFactor(blindBits, blindMantissaBits);
    const rn = Number(r);
    const noise = blindingNoise(r, cells.length * xs.length);
    xs.forEach((x, k) => {
      let best = -Infinity;
      for (let i = 0; i < cells.length; i++) {
        const sent = rn * x[cells[i]!]! + noise[k * cells.length + i]!;
        sentMax = Math.max(sentMax, Math.abs(sent));
        best = Math.max(best, sent);
      }
      values[k]![w] = best <= 0 ? 0 : Math.floor(best / divisor + 0.5);
    });
    scales[w] = (rn * q) / divisor;
  });
  return { values, scales, sentMax };
}

function largest(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}
