/**
 * Where a convolutional first layer's products come from (CryptoNN's LeNet-5). The data owner
 * encrypts each image once per batch under a 'patches' setup; the server sends kernels and,
 * for the gradient, error maps; the key authority judges each kernel in the 25-dimensional patch
 * space (each error map in the output-map space) and expands an accepted one into its shifted
 * keys; the server decrypts exactly those products. The plaintext twin computes the same
 * integers and replays the same policy.
 *
 * @module
 */
import { KeyAuthority, type PatchAnswer, type PatchGeometry } from '../../protocol/fe-training/authority.js';
import type { FeCompute, SparseJob } from '../../protocol/fe-training/compute.js';
import type { FixedPointSamples } from '../../protocol/fe-training/data-owner.js';
import { signKeyRequest, type KeyPurpose, type ServerSession } from '../../protocol/fe-training/messages.js';
import type { KeyPolicyOptions } from '../../protocol/fe-training/policy.js';
import type { Ciphertext, FeEngine, MasterPublicKey, SparseFunctionKey } from '../../schemes/fe/index.js';
import { PlainBatch } from './plain-batch.js';

/** Products of one request and which vectors were refused. */
export interface PatchProducts {
  readonly products: Float64Array;
  readonly refused: readonly boolean[];
}

/** The first-layer oracle of a convolutional training run. */
export interface PatchSource {
  readonly geometry: PatchGeometry;
  beginBatch(indices: readonly number[]): Promise<void>;
  labels(): Promise<Uint8Array>;
  /**
   * conv: products[(b·K + k)·P + p] = Σ_u kernel_k[u]·x_b[p + u] for every sample b of the batch,
   * kernel k and output position p (P = outH·outW).
   */
  convolve(kernels: readonly Int32Array[], bound: number): Promise<PatchProducts>;
  /**
   * Kernel gradient terms: products[m·k² + u] = Σ_p map_m[p]·x_{sample_m}[p + u] for each error
   * map m (length P) of sample `samples[m]` (an index into the batch).
   */
  correlate(samples: readonly number[], maps: readonly Int32Array[], bound: number): Promise<PatchProducts>;
}

function outSize(g: PatchGeometry): { outH: number; outW: number; P: number; kk: number } {
  const outH = g.height - g.kernel + 1;
  const outW = g.width - g.kernel + 1;
  return { outH, outW, P: outH * outW, kk: g.kernel * g.kernel };
}

/** The plaintext twin: same integers, same policy decisions, no encryption. */
export class PlainPatchSource extends PlainBatch implements PatchSource {
  constructor(
    samples: FixedPointSamples,
    readonly geometry: PatchGeometry,
    policy: KeyPolicyOptions = {},
  ) {
    super(samples, policy);
  }

  private screen(purpose: KeyPurpose, vectors: readonly Int32Array[]): boolean[] {
    return this.refused(`${this.batch}/${purpose}`, vectors);
  }

  convolve(kernels: readonly Int32Array[], _bound: number): Promise<PatchProducts> {
    const refused = this.screen('patches', kernels);
    const { outH, outW, P } = outSize(this.geometry);
    const { width, kernel } = this.geometry;
    const { x, features } = this.samples;
    const K = kernels.length;
    const out = new Float64Array(this.indices.length * K * P);
    this.indices.forEach((n, b) => {
      const off = n * features;
      kernels.forEach((kv, k) => {
        if (refused[k]) return;
        const base = (b * K + k) * P;
        for (let r = 0; r < outH; r++) {
          for (let c = 0; c < outW; c++) {
            let s = 0;
            for (let a = 0; a < kernel; a++) {
              const row = off + (r + a) * width + c;
              for (let d = 0; d < kernel; d++) s += (kv[a * kernel + d] ?? 0) * (x[row + d] ?? 0);
            }
            out[base + r * outW + c] = s;
          }
        }
      });
    });
    return Promise.resolve({ products: out, refused });
  }

  correlate(samples: readonly number[], maps: readonly Int32Array[], _bound: number): Promise<PatchProducts> {
    const refused = this.screen('patch-gradients', maps);
    const { outH, outW, kk } = outSize(this.geometry);
    const { width, kernel } = this.geometry;
    const { x, features } = this.samples;
    const out = new Float64Array(maps.length * kk);
    maps.forEach((mv, m) => {
      if (refused[m]) return;
      const off = (this.indices[samples[m] ?? 0] ?? 0) * features;
      for (let a = 0; a < kernel; a++) {
        for (let d = 0; d < kernel; d++) {
          let s = 0;
          for (let r = 0; r < outH; r++) {
            const row = off + (r + a) * width + d;
            for (let c = 0; c < outW; c++) s += (mv[r * outW + c] ?? 0) * (x[row + c] ?? 0);
          }
          out[m * kk + a * kernel + d] = s;
        }
      }
    });
    return Promise.resolve({ products: out, refused });
  }
}

/** Time and counts of the encrypted convolutional run. */
export interface PatchTimings {
  setupMs: number;
  encryptMs: number;
  encryptedSamples: number;
  keyMs: number;
  convDecryptMs: number;
  convProducts: number;
  gradDecryptMs: number;
  gradProducts: number;
  labelMs: number;
  refusedVectors: number;
  dlogMs: number;
  dlogCount: number;
}

/** All parties of an encrypted convolutional run, in process. */
export class EncryptedPatchSource implements PatchSource {
  readonly authority: KeyAuthority;
  readonly timings: PatchTimings = {
    setupMs: 0,
    encryptMs: 0,
    encryptedSamples: 0,
    keyMs: 0,
    convDecryptMs: 0,
    convProducts: 0,
    gradDecryptMs: 0,
    gradProducts: 0,
    labelMs: 0,
    refusedVectors: 0,
    dlogMs: 0,
    dlogCount: 0,
  };
  private readonly session: ServerSession;
  private seq = 0;
  private current: { images: readonly Ciphertext[]; labels: readonly Ciphertext[]; patches: MasterPublicKey; labelKey: MasterPublicKey } | undefined;

  constructor(
    engine: FeEngine,
    private readonly compute: FeCompute,
    private readonly samples: FixedPointSamples,
    readonly geometry: PatchGeometry,
    policy: KeyPolicyOptions = {},
    private readonly maxWeight = 127,
    private readonly maxDelta = 31,
  ) {
    this.authority = new KeyAuthority(engine, policy);
    this.session = this.authority.registerServer('server');
  }

  async beginBatch(indices: readonly number[]): Promise<void> {
    let t = performance.now();
    const patches = this.authority.setupPatches(this.geometry, this.maxWeight, this.maxDelta);
    const labelKey = this.authority.setup(this.samples.classes, 'labels', this.samples.classes - 1);
    this.timings.setupMs += performance.now() - t;
    // The data owner: each image once, as one vector, and each label as a one-hot vector.
    const { x, features, labels, classes } = this.samples;
    t = performance.now();
    const images = await this.compute.encrypt(patches, indices.map((n) => x.subarray(n * features, (n + 1) * features)));
    this.timings.encryptMs += performance.now() - t;
    this.timings.encryptedSamples += indices.length;
    const oneHots = indices.map((n) => {
      const v = new Int32Array(classes);
      v[labels[n] ?? 0] = 1;
      return v;
    });
    const labelCts = await this.compute.encrypt(labelKey, oneHots);
    this.current = { images, labels: labelCts, patches, labelKey };
  }

  private batch() {
    if (this.current === undefined) throw new Error('no batch started');
    return this.current;
  }

  async labels(): Promise<Uint8Array> {
    const { labels, labelKey } = this.batch();
    const t = performance.now();
    const classes = this.samples.classes;
    const req = signKeyRequest(this.session, this.seq++, labelKey.setupId, 'labels', [Int32Array.from({ length: classes }, (_, i) => i)]);
    const [answer] = this.authority.handle(req);
    if (answer === undefined || !('key' in answer)) throw new Error('the key authority refused the label key');
    const r = await this.compute.decryptMany(labels, [answer.key], classes - 1);
    this.timings.labelMs += performance.now() - t;
    return Uint8Array.from(r.values);
  }

  private request(purpose: 'patches' | 'patch-gradients', vectors: readonly Int32Array[]): PatchAnswer[] {
    const t = performance.now();
    const answers = this.authority.handlePatches(signKeyRequest(this.session, this.seq++, this.batch().patches.setupId, purpose, vectors));
    this.timings.keyMs += performance.now() - t;
    for (const a of answers) if ('refused' in a) this.timings.refusedVectors++;
    return answers;
  }

  async convolve(kernels: readonly Int32Array[], bound: number): Promise<PatchProducts> {
    const { images } = this.batch();
    const answers = this.request('patches', kernels);
    const refused = answers.map((a) => 'refused' in a);
    const keys: SparseFunctionKey[] = answers.flatMap((a) => ('keys' in a ? [...a.keys] : []));
    const { P } = outSize(this.geometry);
    const K = kernels.length;
    const t = performance.now();
    const r = await this.compute.decryptSparse(images.map((ct) => ({ ct, keys })), bound);
    this.timings.convDecryptMs += performance.now() - t;
    this.timings.convProducts += r.values.length;
    this.timings.dlogMs += r.dlogMs;
    this.timings.dlogCount += r.dlogCount;
    const out = new Float64Array(images.length * K * P);
    const accepted = answers.map((_, k) => k).filter((k) => !refused[k]);
    for (let b = 0; b < images.length; b++) {
      accepted.forEach((k, j) => {
        out.set(r.values.subarray((b * accepted.length + j) * P, (b * accepted.length + j + 1) * P), (b * K + k) * P);
      });
    }
    return { products: out, refused };
  }

  async correlate(samples: readonly number[], maps: readonly Int32Array[], bound: number): Promise<PatchProducts> {
    const { images } = this.batch();
    const answers = this.request('patch-gradients', maps);
    const refused = answers.map((a) => 'refused' in a);
    const { kk } = outSize(this.geometry);
    // One job per sample: the keys of that sample's error maps, applied to its ciphertext only.
    const jobs: SparseJob[] = [];
    const owners: number[][] = [];
    images.forEach((ct, b) => {
      const mine: number[] = [];
      const keys: SparseFunctionKey[] = [];
      answers.forEach((a, m) => {
        if (samples[m] === b && 'keys' in a) {
          mine.push(m);
          keys.push(...a.keys);
        }
      });
      if (keys.length > 0) {
        jobs.push({ ct, keys });
        owners.push(mine);
      }
    });
    const t = performance.now();
    const r = await this.compute.decryptSparse(jobs, bound);
    this.timings.gradDecryptMs += performance.now() - t;
    this.timings.gradProducts += r.values.length;
    this.timings.dlogMs += r.dlogMs;
    this.timings.dlogCount += r.dlogCount;
    const out = new Float64Array(maps.length * kk);
    let at = 0;
    for (const mine of owners) {
      for (const m of mine) {
        out.set(r.values.subarray(at, at + kk), m * kk);
        at += kk;
      }
    }
    return { products: out, refused };
  }
}
