/**
 * Worker-thread entry point for {@link CkksEncryptPool} (loaded by piscina): per public key, the
 * loaded key and a pool of encryptions of zero. Holds no secret key.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { BlindmlError } from '../errors.js';
import { CkksCiphertext, CkksContext, CkksServiceKeys, parameterFingerprint, type CkksParameters } from '../schemes/ckks/index.js';
import type { EncryptReply, EncryptTask } from './ckks-encrypt-pool.js';

interface KeyState {
  readonly keys: CkksServiceKeys;
  readonly zeros: CkksCiphertext[];
}

const contexts = new Map<string, Promise<CkksContext>>();
const states = new Map<string, KeyState>();
const MAX_KEYS = 4;

function idOf(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex');
}

async function stateFor(params: CkksParameters, publicKey: Uint8Array): Promise<KeyState> {
  const id = idOf(publicKey);
  let state = states.get(id);
  if (state) return state;
  const fp = parameterFingerprint(params);
  let ctx = contexts.get(fp);
  if (!ctx) {
    ctx = CkksContext.create(params);
    contexts.set(fp, ctx);
  }
  state = { keys: CkksServiceKeys.load(await ctx, { publicKey }), zeros: [] };
  states.set(id, state);
  while (states.size > MAX_KEYS) drop(states.keys().next().value as string);
  return state;
}

function drop(id: string): void {
  const state = states.get(id);
  if (!state) return;
  states.delete(id);
  for (const z of state.zeros.splice(0)) z.free();
  state.keys.dispose();
}

function encryptOne(state: KeyState, values: Float64Array, scale: number): Uint8Array {
  const zero = state.zeros.pop();
  const ct = zero ?? state.keys.encrypt(values, scale);
  try {
    if (zero) {
      const { context } = state.keys;
      const plain = context.encode(values, scale);
      try {
        context.evaluator.addPlain(zero.seal, plain, zero.seal);
      } finally {
        plain.delete();
      }
    }
    return ct.save();
  } finally {
    ct.free();
  }
}

export default async function handle(task: EncryptTask): Promise<EncryptReply> {
  try {
    if (task.kind === 'drop') {
      drop(idOf(task.publicKey));
      return { outputs: [] };
    }
    const state = await stateFor(task.params, task.publicKey);
    if (task.kind === 'precompute') {
      for (let i = 0; i < task.count; i++) state.zeros.push(state.keys.encrypt(new Float64Array(0), task.scale));
      return { outputs: [] };
    }
    return { outputs: task.vectors.map((v) => encryptOne(state, v, task.scale)) };
  } catch (e) {
    const known = e instanceof BlindmlError;
    return { error: { code: known ? e.code : 'ERR_INTERNAL', message: known ? e.message.slice(0, 2000) : 'internal error in a CKKS encryption worker' } };
  }
}
