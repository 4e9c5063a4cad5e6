/**
 * Folding an inference-mode batch normalization into the linear layer before it, so no backend
 * ever sees batch norm: y = γ (W x + b − μ) / √(σ² + ε) + β is again W' x + b' with
 * W' = s·W and b' = s·(b − μ) + β, per output channel, where s = γ / √(σ² + ε).
 *
 * @module
 */
import { Conv2d, Dense } from './layers.js';

/** The four per-channel vectors and epsilon of a BatchNormalization node. */
export interface BatchNormParams {
  readonly scale: Float32Array;
  readonly bias: Float32Array;
  readonly mean: Float32Array;
  readonly variance: Float32Array;
  readonly epsilon: number;
}

/**
 * Returns a new layer equal to `layer` followed by the batch normalization; `layer` is unchanged.
 * The folding is done in double precision and rounded once to float32.
 *
 * @throws {RangeError} if a vector's length differs from the layer's number of output channels,
 *   or a variance + epsilon is not positive.
 */
export function foldBatchNorm<L extends Conv2d | Dense>(layer: L, bn: BatchNormParams): L {
  const channels = layer.kind === 'conv2d' ? layer.outChannels : layer.outFeatures;
  for (const [name, v] of Object.entries({
    scale: bn.scale,
    bias: bn.bias,
    mean: bn.mean,
    variance: bn.variance,
  })) {
    if (v.length !== channels) {
      throw new RangeError(`batch norm ${name} has ${v.length} values for ${channels} channels`);
    }
  }
  const perChannel = layer.weights.length / channels;
  const weights = new Float32Array(layer.weights.length);
  const bias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const denom = (bn.variance[c] as number) + bn.epsilon;
    if (!(denom > 0)) throw new RangeError(`batch norm variance + epsilon is ${denom} at channel ${c}`);
    const s = (bn.scale[c] as number) / Math.sqrt(denom);
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) weights[i] = (layer.weights[i] as number) * s;
    bias[c] = s * ((layer.bias[c] as number) - (bn.mean[c] as number)) + (bn.bias[c] as number);
  }
  const folded =
    layer.kind === 'conv2d'
      ? new Conv2d({ ...configOf(layer), weights, bias })
      : new Dense({ inFeatures: layer.inFeatures, outFeatures: layer.outFeatures, weights, bias });
  return folded as L;
}

function configOf(conv: Conv2d) {
  return {
    outChannels: conv.outChannels,
    inChannels: conv.inChannels,
    kernel: conv.kernel,
    stride: conv.stride,
    pads: conv.pads,
    group: conv.group,
  };
}
