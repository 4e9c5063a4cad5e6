/**
 * Large messages over WebSocket in bounded frames: each frame is
 *
 *     "BMCH" | u32 header length | UTF-8 JSON header | a chunk of the message
 *
 * with the header `{ id, total, offset, ... }` (the message's id on the connection, its whole
 * length, where this chunk starts) plus what the carrier adds (the step and model of a request,
 * the HTTP-like status of a reply). A reader learns a message's total size from its first frame,
 * before any of the rest arrives, and so can refuse it early; it keeps only the chunks received.
 *
 * @module
 */
import { FormatError } from '../errors.js';

const MAGIC = [0x42, 0x4d, 0x43, 0x48]; // "BMCH"
const MAX_HEADER = 4096;

/** What every chunk frame's header carries. */
export interface ChunkHeader {
  readonly id: number;
  readonly total: number;
  readonly offset: number;
  readonly step?: string;
  readonly model?: string;
  readonly status?: number;
}

/** A message cut into frames of at most `chunkBytes` payload bytes each (at least one frame, even when empty). */
export function encodeChunks(head: Omit<ChunkHeader, 'total' | 'offset'>, message: Uint8Array, chunkBytes: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let offset = 0; offset === 0 || offset < message.length; offset += chunkBytes) {
    const json = new TextEncoder().encode(JSON.stringify({ ...head, total: message.length, offset }));
    const chunk = message.subarray(offset, offset + chunkBytes);
    const frame = new Uint8Array(8 + json.length + chunk.length);
    frame.set(MAGIC, 0);
    new DataView(frame.buffer).setUint32(4, json.length);
    frame.set(json, 8);
    frame.set(chunk, 8 + json.length);
    frames.push(frame);
  }
  return frames;
}

/**
 * Reads one frame's header and chunk (a view, no copy).
 *
 * @throws FormatError for anything that is not a chunk frame with a sound header.
 */
export function decodeChunk(frame: Uint8Array): { head: ChunkHeader; chunk: Uint8Array } {
  if (frame.length < 8 || MAGIC.some((b, i) => frame[i] !== b)) throw new FormatError('not a chunk frame (bad magic or too short)');
  const length = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(4);
  if (length > MAX_HEADER || 8 + length > frame.length) throw new FormatError('chunk frame: header too long or truncated');
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray(8, 8 + length)));
  } catch {
    throw new FormatError('chunk frame: the header is not JSON');
  }
  const h = raw as Record<string, unknown> | null;
  const int = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const text = (v: unknown) => v === undefined || (typeof v === 'string' && v.length <= 200);
  if (!h || typeof h !== 'object' || !int(h['id']) || !int(h['total']) || !int(h['offset']) || !text(h['step']) || !text(h['model']) || !(h['status'] === undefined || int(h['status']))) {
    throw new FormatError('chunk frame: the header needs integer id, total and offset (and short step, model)');
  }
  const chunk = frame.subarray(8 + length);
  if ((h['offset'] as number) + chunk.length > (h['total'] as number)) throw new FormatError('chunk frame: the chunk runs past the message\'s total');
  const head: ChunkHeader = {
    id: h['id'] as number,
    total: h['total'] as number,
    offset: h['offset'] as number,
    ...(typeof h['step'] === 'string' ? { step: h['step'] } : {}),
    ...(typeof h['model'] === 'string' ? { model: h['model'] } : {}),
    ...(typeof h['status'] === 'number' ? { status: h['status'] } : {}),
  };
  return { head, chunk };
}

/**
 * Puts one message back together from its frames, in order. Holds only the chunks received so far.
 */
export class ChunkAssembly {
  private readonly parts: Uint8Array[] = [];
  private received = 0;

  constructor(readonly head: ChunkHeader) {}

  /**
   * Adds the next chunk. @returns the whole message once complete, else undefined.
   *
   * @throws FormatError for a chunk of another message or out of order.
   */
  add(head: ChunkHeader, chunk: Uint8Array): Uint8Array | undefined {
    if (head.id !== this.head.id || head.total !== this.head.total || head.offset !== this.received) {
      throw new FormatError(`chunk frame out of order: message ${head.id} at ${head.offset}, expected message ${this.head.id} at ${this.received}`);
    }
    this.parts.push(chunk.slice());
    this.received += chunk.length;
    if (this.received < this.head.total) return undefined;
    if (this.parts.length === 1) return this.parts[0]!;
    const whole = new Uint8Array(this.head.total);
    let at = 0;
    for (const p of this.parts) {
      whole.set(p, at);
      at += p.length;
    }
    return whole;
  }
}
