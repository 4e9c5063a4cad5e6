/**
 * A party's share store as checkpoint text: JSON with the epoch it was taken after, each tensor's
 * shape and its ring elements in decimal.
 *
 * @module
 */
import { z } from 'zod';
import { FormatError } from '../../errors.js';
import type { RingMatrix, ShareStore } from './program.js';
import { RING } from './ring.js';

const StateSchema = z.object({
  format: z.literal('blindml-multikey-shares'),
  version: z.literal(1),
  epoch: z.number().int().min(0),
  tensors: z.array(z.object({ id: z.string(), rows: z.number().int().min(1), cols: z.number().int().min(1), data: z.array(z.string().regex(/^[0-9]{1,20}$/)) })),
});

/** The store as checkpoint text. */
export function serializeStore(store: ShareStore, epoch: number): string {
  const tensors = [...store].map(([id, t]) => ({ id, rows: t.rows, cols: t.cols, data: t.data.map(String) }));
  return JSON.stringify({ format: 'blindml-multikey-shares', version: 1, epoch, tensors });
}

/**
 * Parses checkpoint text.
 *
 * @throws FormatError if it is malformed, of another epoch, or a value is outside the ring.
 */
export function deserializeStore(text: string, epoch: number): ShareStore {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new FormatError('checkpoint is not JSON (truncated?)', { cause: err });
  }
  const r = StateSchema.safeParse(raw);
  if (!r.success) throw new FormatError(`malformed checkpoint: ${r.error.issues[0]?.message ?? 'invalid'}`);
  if (r.data.epoch !== epoch) throw new FormatError(`checkpoint is for epoch ${r.data.epoch}, expected ${epoch}`);
  const store: ShareStore = new Map();
  for (const t of r.data.tensors) {
    if (t.data.length !== t.rows * t.cols) throw new FormatError(`checkpoint tensor '${t.id}' has ${t.data.length} values for ${t.rows}×${t.cols}`);
    const data = t.data.map(BigInt);
    if (data.some((v) => v >= RING)) throw new FormatError(`checkpoint tensor '${t.id}' holds a value outside the ring`);
    const m: RingMatrix = { rows: t.rows, cols: t.cols, data };
    store.set(t.id, m);
  }
  return store;
}
