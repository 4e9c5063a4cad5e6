/**
 * LeNet-5 for CryptoNN on 28×28 images: conv 5×5×6 (the encrypted layer: its products and its
 * kernel gradient come from a {@link PatchSource}) → ReLU → max-pool 2 → conv 5×5×16 → ReLU →
 * max-pool 2 → dense 120 → ReLU → 84 → ReLU → 10 → softmax. Everything after the first layer is
 * plaintext training on the server, with Adam.
 *
 * @module
 */
import { SeededRandom } from './prng.js';
import { productBound, quantizeDelta, quantizeWeights, type QuantConfig } from './quantize.js';
import type { PatchSource } from './patch-source.js';

/** Hyper-parameters of {@link LeNet5}. */
export interface LeNetConfig {
  readonly learningRate: number;
  readonly seed: number;
}

export const DEFAULT_LENET: LeNetConfig = { learningRate: 0.002, seed: 1 };

const H = 28;
const KS = 5;
const C1 = 6;
const O1 = H - KS + 1; // 24
const P1 = O1 / 2; // 12
const C2 = 16;
const O2 = P1 - KS + 1; // 8
const P2 = O2 / 2; // 4
const FLAT = C2 * P2 * P2; // 256
const F3 = 120;
const F4 = 84;
const CLASSES = 10;

function he(rng: SeededRandom, n: number, fanIn: number): Float64Array {
  const s = Math.sqrt(2 / fanIn);
  return Float64Array.from({ length: n }, () => rng.normal() * s);
}

/** 2×2 max-pool of `channels` maps of side `side`; returns pooled values and argmax indices. */
function maxPool(input: Float64Array, channels: number, side: number): { out: Float64Array; arg: Int32Array } {
  const half = side / 2;
  const out = new Float64Array(channels * half * half);
  const arg = new Int32Array(out.length);
  for (let c = 0; c < channels; c++) {
    for (let r = 0; r < half; r++) {
      for (let q = 0; q < half; q++) {
        let best = -Infinity;
        let at = 0;
        for (let a = 0; a < 2; a++) {
          for (let d = 0; d < 2; d++) {
            const i = c * side * side + (2 * r + a) * side + 2 * q + d;
            const v = input[i] ?? 0;
            if (v > best) {
              best = v;
              at = i;
            }
          }
        }
        out[c * half * half + r * half + q] = best;
        arg[c * half * half + r * half + q] = at;
      }
    }
  }
  return { out, arg };
}

/** LeNet-5 parameters with Adam state. */
export class LeNet5 {
  readonly params: Float64Array[];
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private steps = 0;

  constructor(
    readonly config: LeNetConfig,
    readonly quant: QuantConfig,
  ) {
    const rng = new SeededRandom(config.seed);
    this.params = [
      he(rng, C1 * KS * KS, KS * KS),
      new Float64Array(C1),
      he(rng, C2 * C1 * KS * KS, C1 * KS * KS),
      new Float64Array(C2),
      he(rng, F3 * FLAT, FLAT),
      new Float64Array(F3),
      he(rng, F4 * F3, F3),
      new Float64Array(F4),
      he(rng, CLASSES * F4, F4),
      new Float64Array(CLASSES),
    ];
    this.m = this.params.map((p) => new Float64Array(p.length));
    this.v = this.params.map((p) => new Float64Array(p.length));
  }

  /** The quantized kernels (the vectors the server asks 'patches' keys for). */
  quantizedKernels(): Int32Array[] {
    const k1 = this.params[0] as Float64Array;
    return Array.from({ length: C1 }, (_, k) => quantizeWeights(k1, k * KS * KS, KS * KS, this.quant));
  }

  private p(i: number): Float64Array {
    return this.params[i] as Float64Array;
  }

  /** Forward pass of one sample from its conv1 integer products (C1 × 24 × 24). */
  private forward(products: Float64Array, offset: number) {
    const scale = 1 / (this.quant.wScale * this.quant.xScale);
    const b1 = this.p(1);
    const z1 = new Float64Array(C1 * O1 * O1);
    for (let c = 0; c < C1; c++) {
      for (let i = 0; i < O1 * O1; i++) {
        const z = (products[offset + c * O1 * O1 + i] ?? 0) * scale + (b1[c] ?? 0);
        z1[c * O1 * O1 + i] = z > 0 ? z : 0;
      }
    }
    const pool1 = maxPool(z1, C1, O1);
    const w2 = this.p(2);
    const b2 = this.p(3);
    const z2 = new Float64Array(C2 * O2 * O2);
    for (let o = 0; o < C2; o++) {
      for (let r = 0; r < O2; r++) {
        for (let q = 0; q < O2; q++) {
          let s = b2[o] ?? 0;
          for (let c = 0; c < C1; c++) {
            const wb = ((o * C1 + c) * KS) * KS;
            const ib = c * P1 * P1;
            for (let a = 0; a < KS; a++) {
              const row = ib + (r + a) * P1 + q;
              const wr = wb + a * KS;
              for (let d = 0; d < KS; d++) s += (w2[wr + d] ?? 0) * (pool1.out[row + d] ?? 0);
            }
          }
          z2[o * O2 * O2 + r * O2 + q] = s > 0 ? s : 0;
        }
      }
    }
    const pool2 = maxPool(z2, C2, O2);
    const dense = (inp: Float64Array, w: Float64Array, bias: Float64Array, n: number, relu: boolean) => {
      const out = new Float64Array(n);
      const m = inp.length;
      for (let j = 0; j < n; j++) {
        let s = bias[j] ?? 0;
        for (let i = 0; i < m; i++) s += (w[j * m + i] ?? 0) * (inp[i] ?? 0);
        out[j] = relu && s < 0 ? 0 : s;
      }
      return out;
    };
    const h3 = dense(pool2.out, this.p(4), this.p(5), F3, true);
    const h4 = dense(h3, this.p(6), this.p(7), F4, true);
    const logits = dense(h4, this.p(8), this.p(9), CLASSES, false);
    let max = -Infinity;
    for (const l of logits) max = Math.max(max, l);
    let sum = 0;
    const prob = logits.map((l) => {
      const e = Math.exp(l - max);
      sum += e;
      return e;
    });
    for (let c = 0; c < CLASSES; c++) prob[c] = (prob[c] ?? 0) / sum;
    return { z1, pool1, z2, pool2, h3, h4, prob };
  }

  /**
   * One Adam step on a batch; returns the mean loss.
   *
   * @throws (rejects) whatever the source throws (KeyRequestRefusedError, InnerProductOutOfBoundError).
   */
  async trainBatch(source: PatchSource, indices: readonly number[]): Promise<number> {
    const B = indices.length;
    await source.beginBatch(indices);
    const labels = await source.labels();
    const kernels = this.quantizedKernels();
    const conv = await source.convolve(kernels, productBound(kernels, this.quant.xScale));
    const grads = this.params.map((p) => new Float64Array(p.length));
    const [, g1, g2, gb2, g3, gb3, g4, gb4, g5, gb5] = grads as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
    const maps: Int32Array[] = [];
    const mapScales: number[] = [];
    const mapSamples: number[] = [];
    const mapKernels: number[] = [];
    let loss = 0;
    const w2 = this.p(2);
    for (let b = 0; b < B; b++) {
      const f = this.forward(conv.products, b * C1 * O1 * O1);
      const y = labels[b] ?? 0;
      loss -= Math.log(Math.max(f.prob[y] ?? 0, 1e-12));
      const d5 = f.prob.map((p, c) => (p - (c === y ? 1 : 0)) / B);
      const back = (d: Float64Array, inp: Float64Array, w: Float64Array, gw: Float64Array, gb: Float64Array, reluOf?: Float64Array) => {
        const m = inp.length;
        const din = new Float64Array(m);
        for (let j = 0; j < d.length; j++) {
          const dj = d[j] ?? 0;
          if (dj === 0) continue;
          gb[j] = (gb[j] ?? 0) + dj;
          for (let i = 0; i < m; i++) {
            gw[j * m + i] = (gw[j * m + i] ?? 0) + dj * (inp[i] ?? 0);
            din[i] = (din[i] ?? 0) + dj * (w[j * m + i] ?? 0);
          }
        }
        if (reluOf) for (let i = 0; i < m; i++) if ((reluOf[i] ?? 0) <= 0) din[i] = 0;
        return din;
      };
      const d4 = back(d5, f.h4, this.p(8), g5, gb5, f.h4);
      const d3 = back(d4, f.h3, this.p(6), g4, gb4, f.h3);
      const dp2 = back(d3, f.pool2.out, this.p(4), g3, gb3);
      const dz2 = new Float64Array(C2 * O2 * O2);
      dp2.forEach((d, i) => {
        const at = f.pool2.arg[i] ?? 0;
        if ((f.z2[at] ?? 0) > 0) dz2[at] = (dz2[at] ?? 0) + d;
      });
      const dpool1 = new Float64Array(C1 * P1 * P1);
      for (let o = 0; o < C2; o++) {
        for (let r = 0; r < O2; r++) {
          for (let q = 0; q < O2; q++) {
            const d = dz2[o * O2 * O2 + r * O2 + q] ?? 0;
            if (d === 0) continue;
            gb2[o] = (gb2[o] ?? 0) + d;
            for (let c = 0; c < C1; c++) {
              const wb = (o * C1 + c) * KS * KS;
              const ib = c * P1 * P1;
              for (let a = 0; a < KS; a++) {
                for (let e = 0; e < KS; e++) {
                  const ii = ib + (r + a) * P1 + q + e;
                  g2[wb + a * KS + e] = (g2[wb + a * KS + e] ?? 0) + d * (f.pool1.out[ii] ?? 0);
                  dpool1[ii] = (dpool1[ii] ?? 0) + d * (w2[wb + a * KS + e] ?? 0);
                }
              }
            }
          }
        }
      }
      const dz1 = new Float64Array(C1 * O1 * O1);
      dpool1.forEach((d, i) => {
        const at = f.pool1.arg[i] ?? 0;
        if ((f.z1[at] ?? 0) > 0) dz1[at] = (dz1[at] ?? 0) + d;
      });
      for (let k = 0; k < C1; k++) {
        if (conv.refused[k]) continue; // a refused kernel contributed nothing: no gradient either
        const map = dz1.subarray(k * O1 * O1, (k + 1) * O1 * O1);
        let s = 0;
        for (const d of map) s += d;
        g1[k] = (g1[k] ?? 0) + s;
        const { vector, scale } = quantizeDelta(Float64Array.from(map), this.quant);
        if (scale === 0) continue;
        maps.push(vector);
        mapScales.push(scale);
        mapSamples.push(b);
        mapKernels.push(k);
      }
    }
    const gk = grads[0] as Float64Array;
    if (maps.length > 0) {
      const corr = await source.correlate(mapSamples, maps, productBound(maps, this.quant.xScale));
      const kk = KS * KS;
      maps.forEach((_, m) => {
        if (corr.refused[m]) return;
        const s = 1 / ((mapScales[m] ?? 1) * this.quant.xScale);
        const k = mapKernels[m] ?? 0;
        for (let u = 0; u < kk; u++) gk[k * kk + u] = (gk[k * kk + u] ?? 0) + (corr.products[m * kk + u] ?? 0) * s;
      });
    }
    this.adam(grads);
    return loss / B;
  }

  private adam(grads: readonly Float64Array[]): void {
    const lr = this.config.learningRate;
    this.steps++;
    const c1 = 1 - 0.9 ** this.steps;
    const c2 = 1 - 0.999 ** this.steps;
    this.params.forEach((param, n) => {
      const g = grads[n] as Float64Array;
      const m = this.m[n] as Float64Array;
      const v = this.v[n] as Float64Array;
      for (let i = 0; i < param.length; i++) {
        const gi = g[i] ?? 0;
        const mi = 0.9 * (m[i] ?? 0) + 0.1 * gi;
        const vi = 0.999 * (v[i] ?? 0) + 0.001 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        param[i] = (param[i] ?? 0) - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + 1e-8);
      }
    });
  }

  /** Predicted classes for fixed-point images, through the same quantized first layer. */
  predict(x: Int32Array, count: number): Uint8Array {
    const kernels = this.quantizedKernels();
    const out = new Uint8Array(count);
    const products = new Float64Array(C1 * O1 * O1);
    for (let b = 0; b < count; b++) {
      const off = b * H * H;
      kernels.forEach((kv, k) => {
        for (let r = 0; r < O1; r++) {
          for (let c = 0; c < O1; c++) {
            let s = 0;
            for (let a = 0; a < KS; a++) for (let d = 0; d < KS; d++) s += (kv[a * KS + d] ?? 0) * (x[off + (r + a) * H + c + d] ?? 0);
            products[k * O1 * O1 + r * O1 + c] = s;
          }
        }
      });
      const { prob } = this.forward(products, 0);
      let best = 0;
      for (let c = 1; c < CLASSES; c++) if ((prob[c] ?? 0) > (prob[best] ?? 0)) best = c;
      out[b] = best;
    }
    return out;
  }
}

/** The patch geometry of LeNet-5's first layer on 28×28 images. */
export const LENET_GEOMETRY = { height: H, width: H, kernel: KS } as const;
