/**
 * Worker-thread entry (loaded by piscina) that imports and compiles an uploaded model, so a large
 * model's calibration (seconds for the reference CNN) never stalls the sessions the server is
 * running. The compiled model is plain data and travels back by structured clone. Node-only.
 *
 * @module
 */
import { compileUpload, type CompileRequest, type CompiledUpload } from './registry.js';

/** Compiles one upload; a refusal comes back as `{ ok: false }` with its HTTP status. */
export default function handle(request: CompileRequest): { ok: true; value: CompiledUpload } | { ok: false; status: number; message: string } {
  try {
    return { ok: true, value: compileUpload(request) };
  } catch (err) {
    const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 400;
    return { ok: false, status, message: err instanceof Error ? err.message : String(err) };
  }
}
