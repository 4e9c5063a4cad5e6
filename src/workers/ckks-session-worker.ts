/**
 * Worker-thread entry for {@link CkksSessionPool} (loaded by piscina): the interactive CKKS
 * service of every model this thread serves, with the client keys, open sessions, prepared
 * sessions and smudging ciphertexts it holds. SEAL objects never leave the thread: requests come in
 * and replies go out as wire-format bytes (`protocol/ckks-inference/wire.ts`), moved, not copied.
 *
 * @module
 */
import { deserialize } from 'node:v8';
import { BlindmlError } from '../errors.js';
import { CkksInferenceService, type CompiledCkksModel } from '../protocol/ckks-inference/index.js';
import { decodeCkksMessage, encodeCkksMessage } from '../protocol/ckks-inference/wire.js';
import type { SessionReply, SessionTask } from './ckks-session-pool.js';
import { RelayedProducts } from './ckks-product-relay.js';
import { moveReply } from './pool-support.js';

/** Each model's service (being made, or made). */
const services = new Map<string, Promise<CkksInferenceService>>();
/** Where large rounds' products go (the main thread's product pool), once attached. */
let relay: RelayedProducts | undefined;

class NotLoadedError extends BlindmlError {
  constructor(model: string) {
    super('ERR_MODEL_NOT_LOADED', `model ${model} is not loaded on this thread`);
  }
}

function moved(reply: SessionReply, bytes: Uint8Array): unknown {
  return moveReply(reply, [bytes]);
}

/** Bytes of a request, decoded in place (they were moved here). */
function decoded(body: Uint8Array): unknown {
  return decodeCkksMessage(body, { copy: false });
}

async function run(task: SessionTask): Promise<unknown> {
  if (task.op === 'attach') {
    relay = new RelayedProducts(task.port);
    return { ok: true, value: null };
  }
  if (task.op === 'load') {
    if (!services.has(task.model)) {
      const compiled = deserialize(task.compiled) as CompiledCkksModel;
      const made = CkksInferenceService.create(compiled, relay ? { evaluator: relay } : {});
      services.set(task.model, made);
      made.catch(() => services.get(task.model) === made && services.delete(task.model));
    }
    return { ok: true, value: { describe: (await services.get(task.model)!).describe() } };
  }
  // Every other task waits for its model the same way, so they go on in the order they started
  // (a discard sent after an open applies after it).
  const loaded = await services.get(task.model)?.catch(() => undefined);
  const service = (): CkksInferenceService => {
    if (!loaded) throw new NotLoadedError(task.model);
    return loaded;
  };
  switch (task.op) {
    case 'keys': {
      const { keyId } = service().registerKeys(decoded(task.body));
      const body = encodeCkksMessage({ version: 1, keyId });
      return moved({ ok: true, value: { body, keyId } }, body);
    }
    case 'open': {
      const out = service().open(decoded(task.body), { prepared: task.prepared });
      const body = encodeCkksMessage(out);
      return moved({ ok: true, value: { body, sessionId: out.sessionId } }, body);
    }
    case 'round': {
      const request = decoded(task.body);
      // Read before the last round closes the session (the idle work after it needs the keys).
      const keyId = service().sessionKeyId(request);
      const out = await service().round(request);
      const body = encodeCkksMessage(out);
      return moved({ ok: true, value: { body, done: out.next === undefined, ...(keyId ? { keyId } : {}) } }, body);
    }
    case 'precompute':
      service().precompute(task.keyId, 1);
      return { ok: true, value: null };
    case 'prepare':
      return { ok: true, value: { bytes: await service().prepare(1) } };
    case 'drop-keys':
      loaded?.dropKeys(task.keyId);
      return { ok: true, value: null };
    case 'close':
      loaded?.close(task.sessionId);
      return { ok: true, value: null };
    case 'discard-prepared':
      loaded?.discardPrepared(task.count);
      return { ok: true, value: null };
    case 'stats':
      return { ok: true, value: { keys: loaded?.loadedKeys ?? 0, sessions: loaded?.openSessions ?? 0, prepared: loaded?.preparedSessions ?? 0 } };
    case 'forget':
      services.delete(task.model);
      loaded?.dispose();
      return { ok: true, value: null };
  }
}

/** One task; a typed error comes back as its code and message, anything else as ERR_INTERNAL. */
export default async function handle(task: SessionTask): Promise<unknown> {
  try {
    return await run(task);
  } catch (e) {
    const known = e instanceof BlindmlError;
    const reply: SessionReply = { ok: false, code: known ? e.code : 'ERR_INTERNAL', message: known ? e.message.slice(0, 2000) : e instanceof Error ? e.message.slice(0, 500) : 'internal error' };
    return reply;
  }
}
