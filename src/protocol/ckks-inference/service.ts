/**
 * The service side of the interactive CKKS protocol. It holds the model's weights and, per
 * session, the client's public and Galois keys (never a secret key), the random output orders and
 * the blinding factors. Each round it multiplies every input ciphertext by plaintexts — the
 * weights, with this round's blinding factors, the previous round's unblinding factors and the
 * stage normalization folded in — adds the bias, folds the blocks with rotations, and adds a fresh
 * encryption of zero whose noise is scaled up to drown the computation's noise before anything
 * leaves. Sparse stages (convolutions) use the routed layout (`layout.ts`), dense stages the
 * diagonal method when it is cheaper (`diagonal.ts`).
 *
 * @module
 */
import { BlindmlError, FormatError } from '../../errors.js';
import { randomBits } from '../../math/random.js';
import {
  CkksCiphertext, CkksContext, CkksServiceKeys, addInPlace, free, rotate, type CkksParameters,
} from '../../schemes/ckks/index.js';
import type { CompiledCkksModel } from './compile.js';
import { diagonalSources, diagonalSteps, type DiagonalPlan } from './diagonal.js';
import { encodePlaintexts, sumOfProducts, type ProductEvaluator, type ProductTask, type ProductTerm } from './products.js';
import { foldSteps, nextSourceIndex, outputOrder, routeStage, type GroupLayout, type StageLayout } from './layout.js';
import { sharedCounts, sharedGroups } from './shared.js';
import { planStage, type StagePlan } from './stage-plan.js';
import { stageTerms, type StageDraw } from './stage-terms.js';
import { smudgingZero } from './smudging.js';
import { clientActivations } from './in-process.js';
import { MODEL_INPUT, sourceSize } from '../paillier-inference/plan.js';
import {
  DescribeReply, KeysReply, KeysRequest, OpenReply, OpenRequest, PROTOCOL_VERSION, RoundReply, RoundRequest, parseMessage, type Routing,
} from './messages.js';

/**
 * Rounds with fewer plaintext products than this run on the service's own thread even with a
 * worker pool: a product costs about 1 ms, a trip to the workers a few (the default model's rounds
 * have 1–4 products and got slower on workers: 90 vs 81 ms per image).
 */
export const PARALLEL_PRODUCTS = 32;

/** A key id the service does not hold (never uploaded, or evicted): upload the keys again. */
export class UnknownKeysError extends BlindmlError {
  constructor(id: string) {
    super('ERR_UNKNOWN_KEYS', `no CKKS keys with id ${id} are loaded; upload them again`);
  }
}

/** A session id that is not open (never opened, finished, or dropped). */
export class UnknownSessionError extends BlindmlError {
  constructor(id: string) {
    super('ERR_UNKNOWN_SESSION', `no open CKKS session '${id}'`);
  }
}

/** A round out of order for its session. */
export class OutOfOrderError extends BlindmlError {
  constructor(message: string) {
    super('ERR_OUT_OF_ORDER', message);
  }
}

/** A session's random draws: output orders, routing and blinding factors (independent of the client's keys). */
interface Draw {
  readonly layouts: StageLayout[];
  /** Per stage, per output position: the blinding factor (1 when unblinded). */
  readonly factors: Float64Array[];
  /**
   * Per stage, per index of the client's post-activation vector: the factor that value carries
   * (its blinding factor times the stage's normalization σ).
   */
  readonly carried: Float64Array[];
  /** Per stage: where each map column sits in the client's vector. */
  readonly sourceOf: ((column: number) => number)[];
  /** Per stage: its products built and encoded ahead of time ({@link CkksInferenceService.prepare}), used once. */
  readonly prepared: (PreparedStage | null)[];
}

interface PreparedStage {
  readonly terms: readonly ProductTerm[];
  readonly outputs: number;
}

interface Session extends Draw {
  readonly keys: CkksServiceKeys;
  next: number;
}

function sessionId(): string {
  return randomBits(128).toString(16).padStart(32, '0');
}

/** Log-uniform factor in [1, 2^bits) from the CSPRNG (53 random bits). */
function blindFactor(bits: number): number {
  return 2 ** ((Number(randomBits(53)) / 2 ** 53) * bits);
}

/** The service for one compiled model. Call {@link dispose} when done. */
export class CkksInferenceService {
  private readonly sessions = new Map<string, Session>();
  /** Loaded client keys by key id, least recently used first. */
  private readonly keys = new Map<string, CkksServiceKeys>();
  /** Smudging ciphertexts made ahead of time, per key id. */
  private readonly floods = new Map<string, CkksCiphertext[]>();
  private readonly galoisSteps: number[];
  /** Per stage: its layout. */
  private readonly plans: StagePlan[] = [];
  private readonly counts = { input: 0, output: 0 };
  /** How many clients' keys stay loaded (each holds its Galois keys in WASM memory). */
  readonly keyCacheSize = 16;
  /** Open sessions kept; opening one more drops the oldest (its next round gets UnknownSessionError). */
  readonly maxSessions = 64;
  /** Sessions drawn and encoded ahead of time, oldest first; `open` takes the oldest. */
  private readonly ready: Draw[] = [];

  private constructor(
    readonly model: CompiledCkksModel,
    readonly context: CkksContext,
    private readonly evaluator: ProductEvaluator | undefined,
    private readonly parallelProducts: number,
  ) {
    const steps = new Set<number>();
    const slots = context.slots;
    model.stages.forEach((stage, s) => {
      const { rowAt } = outputOrder(stage.map.rows, stage.activation, false);
      const groups = routeStage(stage.map, rowAt, slots, () => 0);
      const cols = model.plan.stages[s]!.sources.reduce((a, k) => a + sourceSize(model.plan, k), 0);
      const plan = planStage(stage.map, groups, rowAt, cols, slots, model.params.stageLayout);
      this.plans.push(plan);
      if (plan.kind === 'diagonal') {
        for (const step of diagonalSteps(plan.plan, slots)) steps.add(step);
        this.counts.input += plan.plan.inputs * plan.plan.baby;
        this.counts.output++;
      } else if (plan.kind === 'shared') {
        const n = sharedCounts(plan.plan);
        this.counts.input += n.uploads;
        this.counts.output += plan.plan.outputs * plan.plan.pages.length;
      } else {
        for (const g of groups) for (const step of foldSteps(g.period, slots)) steps.add(step);
        this.counts.input += groups.reduce((a, g) => a + g.sources.length, 0);
        this.counts.output += groups.length;
      }
    });
    this.galoisSteps = [...steps].sort((a, b) => a - b);
  }

  /**
   * Builds the service (creates the CKKS context).
   *
   * @param options.evaluator - where a round's plaintext products run when there are at least
   *   {@link PARALLEL_PRODUCTS} of them (a `CkksProductPool` spreads them over worker threads);
   *   smaller rounds, and every round without an evaluator, run on this thread.
   * @param options.parallelProducts - that threshold (default {@link PARALLEL_PRODUCTS}).
   * @throws InvalidKeyError for bad parameters.
   */
  static async create(model: CompiledCkksModel, options: { evaluator?: ProductEvaluator; parallelProducts?: number } = {}): Promise<CkksInferenceService> {
    const context = await CkksContext.create(model.params.ckks);
    return new CkksInferenceService(model, context, options.evaluator, options.parallelProducts ?? PARALLEL_PRODUCTS);
  }

  /** Public facts the client needs before it makes keys. */
  describe(): DescribeReply {
    const p: CkksParameters = this.model.params.ckks;
    const last = this.model.stages[this.model.stages.length - 1]!;
    return {
      version: PROTOCOL_VERSION,
      params: { polyModulusDegree: p.polyModulusDegree, coeffModulusBits: [...p.coeffModulusBits], scaleBits: p.scaleBits },
      inputScaleBits: this.model.params.inputScaleBits,
      inputSize: this.model.inputSize,
      outputSize: last.map.rows,
      stages: this.model.stages.length,
      galoisSteps: this.galoisSteps,
      inputCiphertexts: this.counts.input,
      outputCiphertexts: this.counts.output,
      activations: clientActivations(this.model).map((a) => ({ fns: [...a.fns], pool: a.pool })),
      sources: this.model.plan.stages.map((st) => [...st.sources]),
    };
  }

  /** Clients' keys loaded. */
  get loadedKeys(): number {
    return this.keys.size;
  }

  /** Open sessions. */
  get openSessions(): number {
    return this.sessions.size;
  }

  /** The key id of the session a (not yet validated) round request names, if it is open. */
  sessionKeyId(request: unknown): string | undefined {
    const id = (request as { sessionId?: unknown } | null)?.sessionId;
    return typeof id === 'string' ? this.sessions.get(id)?.keys.keyId : undefined;
  }

  /**
   * Loads a client's public and Galois keys (once per client) and caches them under their key id.
   *
   * @throws FormatError for malformed keys or keys lacking a rotation the model needs;
   *   KeyMismatchError for keys of other parameters or mixed key pairs.
   */
  registerKeys(request: unknown): KeysReply {
    const req = parseMessage(KeysRequest, request, 'keys request');
    // A model whose stages need no rotation gets no Galois keys (an empty field).
    const keys = CkksServiceKeys.load(this.context, { publicKey: req.publicKey, ...(req.galoisKeys.length > 0 ? { galoisKeys: req.galoisKeys } : {}) });
    for (const s of this.galoisSteps) {
      if (!keys.canRotate(s)) {
        keys.dispose();
        throw new FormatError(`the Galois keys lack the rotation by ${s} the model needs`);
      }
    }
    const loaded = this.keys.get(keys.keyId);
    this.keys.delete(keys.keyId);
    if (loaded) keys.dispose(); // same keys again: keep the copy open sessions use
    this.keys.set(keys.keyId, loaded ?? keys);
    this.evictKeys();
    return { version: PROTOCOL_VERSION, keyId: keys.keyId };
  }

  private evictKeys(): void {
    const inUse = new Set([...this.sessions.values()].map((s) => s.keys.keyId));
    for (const [id, k] of this.keys) {
      if (this.keys.size <= this.keyCacheSize) break;
      if (inUse.has(id)) continue;
      this.keys.delete(id);
      this.dropFloods(id);
      k.dispose();
    }
  }

  /**
   * Opens a session for loaded keys: takes the oldest prepared session, or draws every stage's
   * output order and blinding factors now.
   *
   * @param options.prepared - whether it may take a prepared session (default true); a front that
   *   accounts for prepared sessions itself says which opens take one.
   * @throws FormatError for a malformed request; UnknownKeysError when the keys are not loaded.
   */
  open(request: unknown, options: { prepared?: boolean } = {}): OpenReply {
    const req = parseMessage(OpenRequest, request, 'open request');
    const keys = this.keys.get(req.keyId);
    if (!keys) throw new UnknownKeysError(req.keyId);
    this.keys.delete(req.keyId);
    this.keys.set(req.keyId, keys); // most recently used
    const draw = options.prepared === false ? undefined : this.ready.shift();
    const session: Session = { ...(draw ?? this.drawSession()), keys, next: 0 };
    const id = sessionId();
    this.sessions.set(id, session);
    // A client that never finishes must not pin memory forever: keep the newest sessions only.
    for (const old of this.sessions.keys()) {
      if (this.sessions.size <= this.maxSessions) break;
      this.sessions.delete(old);
    }
    return { version: PROTOCOL_VERSION, sessionId: id, routing: this.routingOf(session.layouts[0]!) };
  }

  private drawSession(): Draw {
    const { stages, params } = this.model;
    const layouts: StageLayout[] = [];
    const factors: Float64Array[] = [];
    const carried: Float64Array[] = [];
    const sources: ((column: number) => number)[] = [];
    // Per round: where each of its outputs sits in the client's vector of that round.
    const rounds: ((j: number) => number)[] = [];
    stages.forEach((stage, s) => {
      const isLast = s === stages.length - 1;
      const order = outputOrder(stage.map.rows, stage.activation, !isLast);
      const plan = this.plans[s]!;
      const slots = this.context.slots;
      const sourceOf = this.clientIndex(s, rounds);
      const groups =
        plan.kind === 'diagonal' ? [inOrder(plan.plan, slots)]
        : plan.kind === 'shared' ? sharedGroups(plan.plan, stage.map, order.rowAt, slots, sourceOf)
        : routeStage(stage.map, order.rowAt, slots, sourceOf);
      sources.push(sourceOf);
      const layout: StageLayout = { ...order, groups };
      layouts.push(layout);
      const { perPosition, perClientValue } = this.drawFactors(layout, stage.blinded, params.blindBits);
      factors.push(perPosition);
      carried.push(Float64Array.from(perClientValue, (f) => f * stage.sigma));
      if (stage.activation) rounds[s] = nextSourceIndex(layout, stage.activation);
    });
    return { layouts, factors, carried, sourceOf: sources, prepared: stages.map(() => null) };
  }

  /**
   * Where column j of stage s's map sits in the vector the client uploads for it: its sources'
   * vectors concatenated in the plan's order (the model input as given, each round's values in
   * that round's order), so a source's block starts where its columns start.
   */
  private clientIndex(s: number, rounds: readonly ((j: number) => number)[]): (column: number) => number {
    const { plan } = this.model;
    const sources = plan.stages[s]!.sources;
    const within = sources.map((k) => (k === MODEL_INPUT ? (j: number) => j : rounds[k]!));
    if (sources.length === 1) return within[0]!;
    const starts: number[] = [];
    let at = 0;
    for (const k of sources) {
      starts.push(at);
      at += sourceSize(plan, k);
    }
    return (j) => {
      let i = starts.length - 1;
      while (j < starts[i]!) i--;
      return starts[i]! + within[i]!(j - starts[i]!);
    };
  }

  /** One factor per position; a max-pool window's cells share theirs (max commutes only with a common factor). */
  private drawFactors(layout: StageLayout, blinded: boolean, bits: number): { perPosition: Float64Array; perClientValue: Float64Array } {
    const n = layout.rowAt.length;
    const perPosition = new Float64Array(n).fill(1);
    if (!layout.windowSizes) {
      if (blinded) for (let p = 0; p < n; p++) perPosition[p] = blindFactor(bits);
      return { perPosition, perClientValue: perPosition };
    }
    const perWindow = new Float64Array(layout.windowSizes.length).fill(1);
    let p = 0;
    layout.windowSizes.forEach((size, k) => {
      if (blinded) perWindow[k] = blindFactor(bits);
      for (let c = 0; c < size; c++) perPosition[p++] = perWindow[k]!;
    });
    return { perPosition, perClientValue: perWindow };
  }

  private routingOf(layout: StageLayout): Routing {
    return {
      groups: layout.groups.map((g) => ({ size: g.size, sources: [...g.sources], ...(g.outputs ? { outputs: [...g.outputs] } : {}) })),
      windowSizes: layout.windowSizes,
    };
  }

  /**
   * Evaluates one stage on the client's input ciphertexts.
   *
   * @throws UnknownSessionError, OutOfOrderError, FormatError (malformed request or ciphertexts),
   *   KeyMismatchError (ciphertexts under another key), InvalidCiphertextError (wrong level/scale).
   *   A failed round closes the session.
   */
  async round(request: unknown): Promise<RoundReply> {
    const req = parseMessage(RoundRequest, request, 'round request');
    const session = this.sessions.get(req.sessionId);
    if (!session) throw new UnknownSessionError(req.sessionId);
    try {
      if (req.stage !== session.next) throw new OutOfOrderError(`round for stage ${req.stage}, expected stage ${session.next}`);
      const outputs = await this.evaluateStage(session, req.stage, req.inputs);
      session.next++;
      const layout = session.layouts[req.stage]!;
      const nextLayout = session.layouts[req.stage + 1];
      if (!nextLayout) this.close(req.sessionId);
      return { version: PROTOCOL_VERSION, stage: req.stage, outputs, windowSizes: layout.windowSizes, ...(nextLayout ? { next: this.routingOf(nextLayout) } : {}) };
    } catch (e) {
      this.close(req.sessionId);
      throw e;
    }
  }

  private async evaluateStage(session: Session, s: number, inputs: Uint8Array[][]): Promise<Uint8Array[]> {
    const layout = session.layouts[s]!;
    if (inputs.length !== layout.groups.length) throw new FormatError(`stage ${s}: ${inputs.length} input groups, expected ${layout.groups.length}`);
    layout.groups.forEach((group, o) => {
      if (inputs[o]!.length !== group.sources.length) throw new FormatError(`stage ${s}, group ${o}: ${inputs[o]!.length} ciphertexts, expected ${group.sources.length}`);
    });
    const { terms, outputs } = session.prepared[s] ?? stageTerms(this.model.stages[s]!, this.plans[s]!, this.stageDraw(session, s), this.context.slots);
    session.prepared[s] = null; // single use
    const sums = await this.products(this.task(session, inputs.flat(), terms, outputs));
    try {
      return this.finishStage(session, s, sums);
    } finally {
      for (const c of sums) c?.free();
    }
  }

  private stageDraw(draw: Draw, s: number): StageDraw {
    return { layout: draw.layouts[s]!, factor: draw.factors[s]!, unblind: this.unblinding(draw, s), sourceOf: draw.sourceOf[s]! };
  }

  /**
   * The factor each value of the client's vector for stage s carries: per source, that round's
   * (the model input carries none), so each source's factors are removed from its own columns
   * only; null when the stage reads the model input alone.
   */
  private unblinding(draw: Draw, s: number): Float64Array | null {
    const { plan } = this.model;
    const sources = plan.stages[s]!.sources;
    if (sources.length === 1) return sources[0] === MODEL_INPUT ? null : draw.carried[sources[0]!]!;
    const out = new Float64Array(sources.reduce((a, k) => a + sourceSize(plan, k), 0)).fill(1);
    let at = 0;
    for (const k of sources) {
      if (k !== MODEL_INPUT) out.set(draw.carried[k]!, at);
      at += sourceSize(plan, k);
    }
    return out;
  }

  /** From the stage's sums to the ciphertexts that go back: per layout, rotations, bias, smudging. */
  private finishStage(session: Session, s: number, sums: (CkksCiphertext | null)[]): Uint8Array[] {
    const plan = this.plans[s]!;
    const layout = session.layouts[s]!;
    const { slots } = this.context;
    switch (plan.kind) {
      case 'routed':
        return sums.map((acc, o) => {
          if (!acc) throw new FormatError(`stage ${s}, group ${o} has no weights`);
          const group = layout.groups[o]!;
          return this.finish(acc, session, s, firstSlots(group), group.period);
        });
      case 'shared':
        return sums.map((acc, o) => {
          const positions = layout.groups[Math.floor(o / plan.plan.outputs)]!.outputs![o % plan.plan.outputs]!;
          // An output ciphertext with no row (possible on a page's last cells) still goes back, smudged.
          const sum = acc ?? session.keys.encrypt(new Float64Array(0), this.productScale);
          sums[o] = sum;
          return this.finish(sum, session, s, positions, slots);
        });
      case 'diagonal':
        return [this.finishDiagonal(session, s, plan.plan, sums)];
    }
  }

  /** The diagonal method's giant steps by Horner's rule over the partial sums, then bias, fold, smudging. */
  private finishDiagonal(session: Session, s: number, plan: DiagonalPlan, inner: (CkksCiphertext | null)[]): Uint8Array {
    let acc: CkksCiphertext | undefined;
    try {
      for (let g = plan.giant - 1; g >= 0; g--) {
        if (acc) {
          const turned = rotate(acc, plan.baby, session.keys);
          acc.free();
          acc = turned;
        }
        const part = inner[g];
        if (!part) continue;
        if (!acc) {
          acc = part;
          inner[g] = null;
        } else addInPlace(acc, part);
      }
      if (!acc) throw new FormatError(`stage ${s} has no weights`);
      return this.finish(acc, session, s, firstSlots(session.layouts[s]!.groups[0]!), plan.period);
    } finally {
      acc?.free();
    }
  }

  /** Scale of a product's result: input scale × weight scale. */
  private get productScale(): number {
    return 2 ** (this.model.params.inputScaleBits + this.model.params.weightScaleBits);
  }

  private task(session: Session, inputs: readonly Uint8Array[], terms: readonly ProductTerm[], outputs: number): ProductTask {
    const { params } = this.model;
    return {
      params: this.context.params, keyId: session.keys.keyId, inputScale: 2 ** params.inputScaleBits, weightScale: 2 ** params.weightScaleBits,
      inputs, terms, outputs,
    };
  }

  /**
   * The task's sums, one per output (null where no term had it): on the evaluator when the task is
   * big enough to repay the threads, else here (no serialization). The caller frees them.
   */
  private async products(task: ProductTask): Promise<(CkksCiphertext | null)[]> {
    if (this.evaluator && task.terms.length >= this.parallelProducts) {
      return this.sumParts(task.keyId, await this.evaluator.products(task), task.outputs, task.inputScale * task.weightScale);
    }
    return sumOfProducts(this.context, task);
  }

  /** Adds the parts the evaluator returned for each output (null where no part had a term). */
  private sumParts(keyId: string, parts: Uint8Array[][], outputs: number, scale: number): (CkksCiphertext | null)[] {
    const { context } = this;
    const sums: (CkksCiphertext | null)[] = new Array(outputs).fill(null);
    try {
      for (const part of parts) {
        part.forEach((bytes, o) => {
          if (bytes.length === 0) return;
          const ct = CkksCiphertext.load(context, keyId, bytes, { levelPrimes: context.topLevel, scale });
          const sum = sums[o];
          if (!sum) sums[o] = ct;
          else {
            addInPlace(sum, ct);
            ct.free();
          }
        });
      }
      return sums;
    } catch (e) {
      for (const c of sums) c?.free();
      throw e;
    }
  }

  /** Bias (per slot, for the stage position it holds), fold to the group's period, smudging, serialization. */
  private finish(acc: CkksCiphertext, session: Session, s: number, positions: Int32Array, period: number): Uint8Array {
    this.addBias(acc, session, s, positions, this.productScale);
    for (const step of foldSteps(period, this.context.slots)) {
      const r = rotate(acc, step, session.keys);
      addInPlace(acc, r);
      r.free();
    }
    if (this.model.params.floodBits > 0) this.flood(acc, session.keys);
    return acc.save();
  }

  private addBias(acc: CkksCiphertext, session: Session, s: number, positions: Int32Array, scale: number): void {
    const stage = this.model.stages[s]!;
    const layout = session.layouts[s]!;
    const values = new Float64Array(this.context.slots);
    positions.forEach((pos, slot) => {
      if (pos >= 0) values[slot] = stage.map.bias[layout.rowAt[pos]!]! * stage.sigma * session.factors[s]![pos]!;
    });
    const plain = this.context.encode(values, scale);
    try {
      this.context.evaluator.addPlain(acc.seal, plain, acc.seal);
    } finally {
      free(plain);
    }
  }

  /**
   * Draws `count` sessions ahead of time (idle work before clients arrive) and encodes every
   * stage's per-session plaintexts, on the evaluator's threads when there is one; `open` then takes
   * a prepared session, and its rounds only load those plaintexts instead of building and encoding
   * them. Prepared sessions hold no key and are not tied to a client. Each holds one serialized
   * plaintext per product (about 128 KiB at N = 8192; {@link preparedBytes} says how much in all).
   *
   * @returns the bytes the new sessions' plaintexts take.
   */
  async prepare(count = 1): Promise<number> {
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const draw = this.drawSession();
      for (let s = 0; s < this.model.stages.length; s++) {
        const { terms, outputs } = stageTerms(this.model.stages[s]!, this.plans[s]!, this.stageDraw(draw, s), this.context.slots);
        const encoded = await this.encodeAll(terms.map((t) => t.values!));
        for (const e of encoded) bytes += e.byteLength;
        draw.prepared[s] = { terms: terms.map((t, k) => ({ input: t.input, output: t.output, encoded: encoded[k]! })), outputs };
      }
      this.ready.push(draw);
    }
    return bytes;
  }

  /** Prepared sessions not yet opened. */
  get preparedSessions(): number {
    return this.ready.length;
  }

  /** Bytes the prepared sessions' plaintexts take (JavaScript memory, outside SEAL's heap). */
  get preparedBytes(): number {
    let bytes = 0;
    for (const d of this.ready) for (const st of d.prepared) for (const t of st?.terms ?? []) bytes += t.encoded?.byteLength ?? 0;
    return bytes;
  }

  private async encodeAll(values: Float64Array[]): Promise<Uint8Array[]> {
    const scale = 2 ** this.model.params.weightScaleBits;
    if (this.evaluator) return this.evaluator.encode({ params: this.context.params, scale, values });
    return encodePlaintexts(this.context, scale, values);
  }

  /**
   * Makes `count` smudging ciphertexts for a client's keys ahead of time (idle work between
   * requests), so rounds only add them.
   *
   * @throws UnknownKeysError when the keys are not loaded.
   */
  precompute(keyId: string, count: number): void {
    const keys = this.keys.get(keyId);
    if (!keys) throw new UnknownKeysError(keyId);
    const pool = this.floods.get(keyId) ?? [];
    this.floods.set(keyId, pool);
    for (let i = 0; i < count; i++) pool.push(this.makeFlood(keys));
  }

  private makeFlood(keys: CkksServiceKeys): CkksCiphertext {
    const { floodBits, inputScaleBits, weightScaleBits } = this.model.params;
    return smudgingZero(this.context, keys, 2 ** (inputScaleBits + weightScaleBits), floodBits);
  }

  /**
   * Adds an encryption of zero whose noise is 2^floodBits times a fresh encryption's and spreads
   * over every integer (`smudging.ts`), so it dominates the noise the computation left.
   */
  private flood(acc: CkksCiphertext, keys: CkksServiceKeys): void {
    const big = this.floods.get(keys.keyId)?.pop() ?? this.makeFlood(keys);
    try {
      addInPlace(acc, big);
    } finally {
      big.free();
    }
  }

  private dropFloods(keyId: string): void {
    for (const c of this.floods.get(keyId) ?? []) c.free();
    this.floods.delete(keyId);
  }

  /** Closes a session (idempotent); the client's keys stay cached. */
  close(id: string): void {
    this.sessions.delete(id);
  }

  /**
   * Unloads a client's keys and smudging ciphertexts (a front's memory budget let them go).
   * Keys an open session uses stay. @returns whether they were unloaded.
   */
  dropKeys(keyId: string): boolean {
    const keys = this.keys.get(keyId);
    if (!keys || [...this.sessions.values()].some((s) => s.keys === keys)) return false;
    this.keys.delete(keyId);
    this.dropFloods(keyId);
    keys.dispose();
    return true;
  }

  /** Drops up to `count` prepared sessions, oldest first (the next `open`s then work online). */
  discardPrepared(count = 1): void {
    this.ready.splice(0, count);
  }

  /** Closes every session, frees every key and the context. */
  dispose(): void {
    this.sessions.clear();
    this.ready.length = 0;
    for (const id of [...this.floods.keys()]) this.dropFloods(id);
    for (const k of this.keys.values()) k.dispose();
    this.keys.clear();
    this.context.dispose();
  }
}

/** The stage position in each slot of a group with one output ciphertext (slots 0..size−1), −1 elsewhere. */
function firstSlots(group: GroupLayout): Int32Array {
  return Int32Array.from({ length: group.size }, (_, p) => group.start + p);
}

/** The routing of a diagonal stage: the client's vector in order, each chunk rotated by every baby step. */
function inOrder(plan: DiagonalPlan, slots: number): GroupLayout {
  return { start: 0, size: plan.rows, period: plan.period, sources: diagonalSources(plan, slots), terms: [] };
}
