/**
 * The service side of ckks-poly: holds compiled polynomial networks, receives a client's public
 * and relinearization keys (never a secret key), and evaluates a whole network on a batch of
 * ciphertexts in one round. It cannot decrypt anything it sees or computes.
 *
 * {@link CkksPolyService.handle} answers every request with a message; a request it refuses gets
 * an `error` message with a stable code and one line of text (never a stack).
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';
import { CkksCiphertext, CkksContext, CkksServiceKeys, type PublicBundle } from '../../schemes/ckks/index.js';
import type { CompiledPolyNetwork } from './compile.js';
import { evaluatePolyNetwork } from './evaluate.js';
import { decodePolyMessage, encodePolyMessage, expectPolyMessage, ProtocolError, type PolyInfo, type PolyMessage } from './messages.js';

interface Registered {
  readonly net: CompiledPolyNetwork;
  readonly info: PolyInfo;
  context?: Promise<CkksContext>;
}

interface Session {
  readonly model: Registered;
  readonly keys: CkksServiceKeys;
  /** The uploaded keys as bytes, for evaluators on other threads. */
  readonly bundle: PublicBundle;
}

/** Evaluates infer requests elsewhere (worker threads): same messages in and out. */
export interface PolyEvaluator {
  evaluate(net: CompiledPolyNetwork, keys: PublicBundle, request: Uint8Array): Promise<Uint8Array>;
}

/**
 * Evaluates one `infer` message with loaded keys (what the service, or a worker, does).
 *
 * @throws ProtocolError for a malformed request; FormatError / KeyMismatchError /
 *   InvalidCiphertextError for ciphertexts that are truncated, tampered, foreign, or at the wrong
 *   level or scale. Nothing stays allocated when it throws.
 */
export function evaluateRequest(
  net: CompiledPolyNetwork,
  keys: CkksServiceKeys,
  msg: Extract<PolyMessage, { type: 'infer' }>,
  onProgress?: (stage: number, done: number, rows: number) => void,
): PolyMessage {
  expectPolyMessage(msg, 'infer', net.plan.inputSize);
  if (msg.count > keys.context.slots) throw new ProtocolError('ERR_BAD_MESSAGE', `${msg.count} images do not fit ${keys.context.slots} slots`);
  const expect = { levelPrimes: keys.context.topLevel, scale: net.inputScale };
  const outputs = evaluatePolyNetwork(net, keys, (c) => CkksCiphertext.load(keys.context, keys.keyId, msg.blobs[c]!, expect), onProgress);
  try {
    return { type: 'result', session: msg.session, count: msg.count, blobs: outputs.map((ct) => ct.save()) };
  } finally {
    for (const ct of outputs) ct.free();
  }
}

/** Options of {@link CkksPolyService}. */
export interface PolyServiceOptions {
  /** Sessions kept (their keys use WASM memory); the oldest is dropped beyond this (default 8). */
  readonly maxSessions?: number;
  /** Called as rows finish, for progress bars (in-thread evaluation only). */
  readonly onProgress?: (stage: number, done: number, rows: number) => void;
  /** Evaluates on other threads (e.g. {@link CkksPolyWorkerPool}); in this thread when absent. */
  readonly evaluator?: PolyEvaluator;
}

/** The public facts about a compiled network that a client needs. */
export function polyInfoOf(net: CompiledPolyNetwork, inputShape: readonly number[]): PolyInfo {
  return {
    params: { ...net.params, coeffModulusBits: [...net.params.coeffModulusBits] },
    inputScale: net.inputScale,
    inputSize: net.plan.inputSize,
    inputShape: [...inputShape],
    outputSize: net.plan.outputSize,
    outputActivation: net.plan.outputActivation,
    depth: net.depth,
  };
}

/** Evaluates registered polynomial networks for clients. Call {@link dispose} when done. */
export class CkksPolyService {
  private readonly models = new Map<string, Registered>();
  private readonly sessions = new Map<string, Session>();
  private readonly maxSessions: number;

  constructor(private readonly options: PolyServiceOptions = {}) {
    this.maxSessions = options.maxSessions ?? 8;
  }

  /** Makes a compiled network available under `id`. */
  register(id: string, net: CompiledPolyNetwork, inputShape: readonly number[]): void {
    this.models.set(id, { net, info: polyInfoOf(net, inputShape) });
  }

  /** Answers one request (never throws for a bad request: the answer is an `error` message). */
  async handle(request: Uint8Array): Promise<Uint8Array> {
    try {
      return encodePolyMessage(await this.dispatch(decodePolyMessage(request), request));
    } catch (e) {
      const known = e instanceof BlindmlError;
      return encodePolyMessage({
        type: 'error',
        code: known ? e.code : 'ERR_INTERNAL',
        message: known ? e.message.slice(0, 2000) : 'internal error',
        blobs: [],
      });
    }
  }

  /** `raw`: the request's bytes, handed to the evaluator as they came (a full batch is about 155 MB; no re-encoding). */
  private async dispatch(msg: PolyMessage, raw: Uint8Array): Promise<PolyMessage> {
    switch (msg.type) {
      case 'info': {
        const model = this.model(msg.model);
        return { type: 'info-reply', model: msg.model, info: model.info, blobs: [] };
      }
      case 'keys': {
        const model = this.model(msg.model);
        const { blobs } = expectPolyMessage(msg, 'keys', 2);
        const context = await this.contextOf(model);
        const bundle = { publicKey: Uint8Array.from(blobs[0]!), relinKeys: Uint8Array.from(blobs[1]!) };
        const keys = CkksServiceKeys.load(context, bundle);
        if (!keys.relinKeys) {
          keys.dispose();
          throw new ProtocolError('ERR_BAD_MESSAGE', 'the keys message lacks relinearization keys');
        }
        const session = globalThis.crypto.randomUUID();
        this.sessions.set(session, { model, keys, bundle });
        this.evict();
        return { type: 'session', session, blobs: [] };
      }
      case 'infer':
        return this.infer(msg, raw);
      default:
        throw new ProtocolError('ERR_BAD_MESSAGE', `the service does not accept ${msg.type} messages`);
    }
  }

  private async infer(msg: Extract<PolyMessage, { type: 'infer' }>, raw: Uint8Array): Promise<PolyMessage> {
    const session = this.sessions.get(msg.session);
    if (!session) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'unknown or expired session: send your keys again');
    if (this.options.evaluator) {
      return decodePolyMessage(await this.options.evaluator.evaluate(session.model.net, session.bundle, raw));
    }
    return evaluateRequest(session.model.net, session.keys, msg, this.options.onProgress);
  }

  /** Frees a session's keys (a front expiring idle sessions). @returns whether it existed. */
  closeSession(id: string): boolean {
    const session = this.sessions.get(id);
    if (!session) return false;
    session.keys.dispose();
    this.sessions.delete(id);
    return true;
  }

  /** Forgets a model and every session on it (the model was removed). */
  unregister(id: string): void {
    const model = this.models.get(id);
    if (!model) return;
    this.models.delete(id);
    for (const [sid, s] of this.sessions) if (s.model === model) this.closeSession(sid);
    void model.context?.then((c) => c.dispose(), () => undefined);
  }

  private model(id: string): Registered {
    const model = this.models.get(id);
    if (!model) throw new ProtocolError('ERR_UNKNOWN_MODEL', `no model '${id}' on this service`);
    return model;
  }

  private contextOf(model: Registered): Promise<CkksContext> {
    model.context ??= CkksContext.create(model.net.params);
    return model.context;
  }

  private evict(): void {
    while (this.sessions.size > this.maxSessions) {
      const [oldest, session] = this.sessions.entries().next().value as [string, Session];
      session.keys.dispose();
      this.sessions.delete(oldest);
    }
  }

  /** Frees every key and context (idempotent). */
  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) s.keys.dispose();
    this.sessions.clear();
    for (const m of this.models.values()) {
      const ctx = await m.context?.catch(() => undefined);
      ctx?.dispose();
      delete m.context;
    }
  }
}
