/**
 * Compiling a registered model for interactive CKKS on a worker thread: importing the stored ONNX,
 * calibrating and planning the layouts take seconds for a large model (15.6 s for the reference
 * CNN), which must not stall the event loop that answers every other client. The compiled model
 * comes back serialized (`v8.serialize`) in a SharedArrayBuffer: the session threads that serve it
 * each deserialize their own copy from the same bytes, and the event loop never walks the model's
 * object graph (a structured clone of it would take the event loop too). Node-only.
 *
 * @module
 */
import { serialize } from 'node:v8';
import { Piscina } from 'piscina';
import { BlindmlError } from '../errors.js';
import { compileCkksModel } from '../protocol/ckks-inference/index.js';
import { siblingModuleUrl } from '../workers/pool-support.js';
import { importUpload, type CompileRequest } from './registry.js';

/** What the compile thread answers: the compiled model's `v8.serialize` bytes, shared. */
export type CkksCompileReply = { ok: true; value: Uint8Array } | { ok: false; code: string; message: string };

/** Imports and compiles (what the thread runs); a typed error comes back as its code and message. */
export function compileCkksUpload(request: CompileRequest): CkksCompileReply {
  try {
    const { model, calibration } = importUpload(request);
    const bytes = serialize(compileCkksModel(model, calibration));
    const shared = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
    shared.set(bytes);
    return { ok: true, value: shared };
  } catch (err) {
    if (err instanceof BlindmlError) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) };
  }
}

/** One compile thread, started on first use and ended when idle. Call {@link destroy} when done. */
export class CkksCompiler {
  private pool: Piscina | undefined;

  /**
   * Compiles the files on the thread.
   *
   * @returns the compiled model's `v8.serialize` bytes, in a SharedArrayBuffer.
   * @throws BlindmlError (the compiler's code) for a model CKKS cannot run; Error otherwise.
   */
  async compile(request: CompileRequest): Promise<Uint8Array> {
    this.pool ??= new Piscina({ filename: siblingModuleUrl(import.meta.url, 'ckks-compile-worker'), minThreads: 0, maxThreads: 1, idleTimeout: 10_000 });
    const reply = (await this.pool.run(request)) as CkksCompileReply;
    if (reply.ok) return reply.value;
    if (reply.code === 'ERR_INTERNAL') throw new Error(`CKKS compilation failed: ${reply.message}`);
    throw new BlindmlError(reply.code, reply.message);
  }

  async destroy(): Promise<void> {
    await this.pool?.destroy();
  }
}
