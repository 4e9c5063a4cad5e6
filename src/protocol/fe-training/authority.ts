/**
 * The key authority: runs setup (keeping every master secret key), hands out master public keys,
 * and answers the server's function-key requests — after checking that each request is well
 * formed, authenticated and fresh, and that each vector passes its {@link KeyRequestPolicy}. Every
 * request is logged, answered or not.
 *
 * What the authority sees: the vectors the server asks keys for (quantized first-layer weight
 * rows, per-batch error vectors, the label-decoding vector) — never a ciphertext or a sample.
 *
 * @module
 */
import { FormatError } from '../../errors.js';
import type { FeEngine, FunctionKey, MasterPublicKey, MasterSecretKey, SparseFunctionKey } from '../../schemes/fe/index.js';
import { KeyRequestRefusedError } from '../../schemes/fe/index.js';
import { verifyKeyRequest, type KeyPurpose, type KeyRequest, type ServerSession } from './messages.js';
import { KeyRequestPolicy, type KeyPolicyOptions } from './policy.js';

/** One line of the authority's log. */
export interface KeyLogEntry {
  readonly at: number;
  readonly serverId: string;
  readonly seq: number | undefined;
  readonly setupId: string | undefined;
  readonly purpose: string | undefined;
  readonly vectors: number;
  /** 'answered' (possibly with some vectors refused by policy) or 'rejected' (the whole request). */
  readonly outcome: 'answered' | 'rejected';
  readonly issued: number;
  readonly refused: readonly { readonly index: number; readonly reason: string }[];
  readonly reason?: string;
  /** FNV-1a digests of the vectors, for audit. */
  readonly digests: readonly string[];
}

/** The answer to one vector: a key, or the policy's reason for refusing it. */
export type KeyAnswer = { readonly key: FunctionKey } | { readonly refused: string };

/** The answer to one kernel or error map of a patch request: its expanded keys, or a refusal. */
export type PatchAnswer = { readonly keys: readonly SparseFunctionKey[] } | { readonly refused: string };

/** Geometry of a 'patches' setup: images of height × width, square kernels, stride 1, no padding. */
export interface PatchGeometry {
  readonly height: number;
  readonly width: number;
  readonly kernel: number;
}

interface SetupRecord {
  readonly msk: MasterSecretKey;
  readonly purpose: KeyPurpose;
  readonly maxCoefficient: number;
  readonly patches?: { readonly geometry: PatchGeometry; readonly maxDelta: number; readonly kernelIndices: Int32Array; readonly mapIndices: Int32Array };
}

function digest(v: Int32Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < v.length; i++) h = Math.imul(h ^ (v[i] ?? 0), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** The key authority (holds every msk). */
export class KeyAuthority {
  private readonly setups = new Map<string, SetupRecord>();
  private readonly sessions = new Map<string, { session: ServerSession; lastSeq: number }>();
  private readonly entries: KeyLogEntry[] = [];
  readonly policy: KeyRequestPolicy;

  constructor(
    private readonly engine: FeEngine,
    policy: KeyPolicyOptions = {},
  ) {
    this.policy = new KeyRequestPolicy(policy);
  }

  /** The request log (every request, answered or rejected). */
  get log(): readonly KeyLogEntry[] {
    return this.entries;
  }

  /** Registers a server and returns its session credentials (a fresh 32-byte MAC key). */
  registerServer(serverId: string): ServerSession {
    const macKey = new Uint8Array(32);
    globalThis.crypto.getRandomValues(macKey);
    const session = { serverId, macKey };
    this.sessions.set(serverId, { session, lastSeq: -1 });
    return session;
  }

  /**
   * A fresh setup for vectors of `length`, for one purpose, whose function keys may have entries
   * up to ±maxCoefficient. Returns the master public key; the msk stays here.
   */
  setup(length: number, purpose: KeyPurpose, maxCoefficient: number): MasterPublicKey {
    const { mpk, msk } = this.engine.setup(length);
    this.setups.set(mpk.setupId, { msk, purpose, maxCoefficient });
    return mpk;
  }

  /**
   * A fresh setup for whole images (vectors of height·width) whose function keys are convolution
   * kernels placed at every output position ('patches' requests, entries up to ±maxKernel) and
   * error maps placed at every kernel offset ('patch-gradients' requests, entries up to ±maxDelta).
   *
   * @throws {RangeError} if the kernel does not fit in the image.
   */
  setupPatches(geometry: PatchGeometry, maxKernel: number, maxDelta: number): MasterPublicKey {
    const { height, width, kernel } = geometry;
    if (!(kernel >= 1 && kernel <= height && kernel <= width)) throw new RangeError(`kernel ${kernel} does not fit a ${height}×${width} image`);
    const { mpk, msk } = this.engine.setup(height * width);
    const outH = height - kernel + 1;
    const outW = width - kernel + 1;
    const kernelIndices = Int32Array.from({ length: kernel * kernel }, (_, u) => Math.floor(u / kernel) * width + (u % kernel));
    const mapIndices = Int32Array.from({ length: outH * outW }, (_, p) => Math.floor(p / outW) * width + (p % outW));
    this.setups.set(mpk.setupId, { msk, purpose: 'patches', maxCoefficient: maxKernel, patches: { geometry, maxDelta, kernelIndices, mapIndices } });
    return mpk;
  }

  /**
   * Answers a 'patches' or 'patch-gradients' request. The policy judges each kernel in the
   * kernel·kernel-dimensional patch space (and each error map in the output-map space), per setup
   * — the decisions it would make if every patch were its own ciphertext, as in CryptoNN — and
   * the authority itself expands an accepted vector into its shifted keys, so the server cannot
   * slip other vectors in. See docs/security.md for what this does not protect.
   *
   * @throws {KeyRequestRefusedError} like {@link handle}, and for a setup that is not a patch setup.
   */
  handlePatches(request: KeyRequest): PatchAnswer[] {
    const { verified, setup, log } = this.admit(request, (purpose, record) => {
      if (record.patches === undefined) return `setup is for ${record.purpose}, not ${purpose}`;
      if (purpose !== 'patches' && purpose !== 'patch-gradients') return `setup is for patches, not ${purpose}`;
      const p = record.patches;
      return purpose === 'patches'
        ? { length: p.kernelIndices.length, max: record.maxCoefficient }
        : { length: p.mapIndices.length, max: p.maxDelta };
    });
    const p = setup.patches as NonNullable<SetupRecord['patches']>;
    const gradients = verified.purpose === 'patch-gradients';
    const refused: { index: number; reason: string }[] = [];
    let issued = 0;
    const answers = verified.vectors.map((v, index): PatchAnswer => {
      const decision = this.policy.consider(`${verified.setupId}/${verified.purpose}`, v);
      if (!decision.ok) {
        refused.push({ index, reason: decision.reason });
        return { refused: decision.reason };
      }
      const coeffs = v.slice();
      const shifts = gradients ? p.kernelIndices : p.mapIndices;
      const indices = gradients ? p.mapIndices : p.kernelIndices;
      const keys = Array.from(shifts, (shift) => this.engine.keyDerSparse(setup.msk, indices, coeffs, shift));
      issued += keys.length;
      return { keys };
    });
    log(issued, refused);
    return answers;
  }

  /**
   * Checks a request (session, MAC, freshness, setup, purpose, lengths and ranges); logs and
   * throws on failure. `shape` gives the expected vector length and range for the purpose, or a
   * reason to reject.
   */
  private admit(
    request: KeyRequest,
    shape: (purpose: KeyPurpose, record: SetupRecord) => { length: number; max: number } | string,
  ): { verified: KeyRequest; setup: SetupRecord; log: (issued: number, refused: { index: number; reason: string }[]) => void } {
    const serverId = typeof request?.serverId === 'string' ? request.serverId : '?';
    const vectors = Array.isArray(request?.vectors) ? request.vectors : [];
    const base = {
      at: Date.now(),
      serverId,
      seq: Number.isSafeInteger(request?.seq) ? request.seq : undefined,
      setupId: typeof request?.setupId === 'string' ? request.setupId : undefined,
      purpose: typeof request?.purpose === 'string' ? request.purpose : undefined,
      vectors: vectors.length,
      digests: vectors.map((v) => (v instanceof Int32Array ? digest(v) : 'invalid')),
    };
    const reject = (reason: string): never => {
      this.entries.push({ ...base, outcome: 'rejected', issued: 0, refused: [], reason });
      throw new KeyRequestRefusedError(reason);
    };
    const known = this.sessions.get(serverId);
    if (known === undefined) return reject(`unknown server ${JSON.stringify(serverId)}`);
    let verified: KeyRequest;
    try {
      verified = verifyKeyRequest(request, known.session);
    } catch (err) {
      return reject(err instanceof FormatError ? err.message : 'malformed request');
    }
    if (verified.seq <= known.lastSeq) return reject(`sequence number ${verified.seq} is not fresh (replay?)`);
    const setup = this.setups.get(verified.setupId);
    if (setup === undefined) return reject(`unknown setup ${verified.setupId.slice(0, 8)}…`);
    const expected = shape(verified.purpose, setup);
    if (typeof expected === 'string') return reject(`setup ${verified.setupId.slice(0, 8)}…: ${expected}`);
    if (verified.vectors.length === 0) return reject('request has no vectors');
    for (const [i, v] of verified.vectors.entries()) {
      if (v.length !== expected.length) return reject(`vector ${i} has length ${v.length}, setup has length ${expected.length}`);
      for (let j = 0; j < v.length; j++) {
        const c = v[j] ?? 0;
        if (Math.abs(c) > expected.max) return reject(`vector ${i} entry ${j} = ${c} is outside ±${expected.max}`);
      }
    }
    known.lastSeq = verified.seq;
    return {
      verified,
      setup,
      log: (issued, refused) => this.entries.push({ ...base, outcome: 'answered', issued, refused }),
    };
  }

  /**
   * Answers a function-key request, one answer per vector.
   *
   * @throws {KeyRequestRefusedError} if the request is malformed, tampered, replayed, for an
   * unknown setup or the wrong purpose, or has a vector of the wrong length or with an entry out
   * of range: such a request gets no key at all. Policy refusals of single vectors are answers.
   */
  handle(request: KeyRequest): KeyAnswer[] {
    const { verified, setup, log } = this.admit(request, (purpose, record) => {
      if (record.patches !== undefined) return `setup is for patches, not ${purpose} (use handlePatches)`;
      if (record.purpose !== purpose) return `is for ${record.purpose}, not ${purpose}`;
      return { length: record.msk.length, max: record.maxCoefficient };
    });
    const refused: { index: number; reason: string }[] = [];
    const answers = verified.vectors.map((v, index): KeyAnswer => {
      const decision = this.policy.consider(verified.setupId, v);
      if (!decision.ok) {
        refused.push({ index, reason: decision.reason });
        return { refused: decision.reason };
      }
      return { key: this.engine.keyDer(setup.msk, v) };
    });
    log(answers.length - refused.length, refused);
    return answers;
  }
}
