/**
 * Cheap looks at protocol messages for the server front: the type and session id from the JSON
 * header only (the ciphertexts are never parsed, copied or logged here), and error replies.
 *
 * @module
 */
import { encodeMessage, message } from '../protocol/paillier-inference/messages.js';

/** What the front needs to know about a message: never its ciphertexts. */
export interface FrameHead {
  readonly type: string;
  readonly sessionId?: string;
  readonly modelId?: string;
  readonly code?: string;
}

/** The header's type, session id and model id, or null for anything that is not a message. */
export function peekHeader(bytes: Uint8Array): FrameHead | null {
  if (bytes.length < 8 || bytes[0] !== 0x42 || bytes[1] !== 0x4d || bytes[2] !== 0x4c || bytes[3] !== 0x4d) return null;
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  if (length > 64 * 1024 || 8 + length > bytes.length) return null;
  try {
    const head = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + length))) as Record<string, unknown> | null;
    if (!head || typeof head.type !== 'string') return null;
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length <= 200 ? v : undefined);
    const sessionId = str(head.sessionId);
    const modelId = str(head.modelId);
    const code = str(head.code);
    return { type: head.type.slice(0, 32), ...(sessionId ? { sessionId } : {}), ...(modelId ? { modelId } : {}), ...(code ? { code } : {}) };
  } catch {
    return null;
  }
}

/** An `error` protocol message, as the service itself would send. */
export function errorFrame(code: string, text: string): Uint8Array {
  return encodeMessage(message<'error'>({ type: 'error', code, message: text }), 1);
}

/** A `close` protocol message for a session (what the front sends the service for a vanished client). */
export function closeFrame(sessionId: string): Uint8Array {
  return encodeMessage(message<'close'>({ type: 'close', sessionId }), 1);
}
