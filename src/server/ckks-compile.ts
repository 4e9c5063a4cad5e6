/**
 * Compiling a registered model for interactive CKKS on a worker thread: importing the stored ONNX,
 * calibrating and planning the layouts take seconds for a large model (15.6 s for the reference
 * CNN), which must not stall the event loop that answers every other client. The compiled model is
 * plain data and comes back by structured clone. Node-only.
 *
 * @module
 */
import { Piscina } from 'piscina';
import { BlindmlError } from '../errors.js';
import { compileCkksModel, type CompiledCkksModel } from '../protocol/ckks-inference/index.js';
import { siblingModuleUrl } from '../workers/pool-support.js';
import { importUpload, type CompileRequest } from './registry.js';

/** What the compile thread answers. */
export type CkksCompileReply = { ok: true; value: CompiledCkksModel } | { ok: false; code: string; message: string };

/** Imports and compiles (what the thread runs); a typed error comes back as its code and message. */
export function compileCkksUpload(request: CompileRequest): CkksCompileReply {
  try {
    const { model, calibration } = importUpload(request);
    return { ok: true, value: compileCkksModel(model, calibration) };
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
   * @throws BlindmlError (the compiler's code) for a model CKKS cannot run; Error otherwise.
   */
  async compile(request: CompileRequest): Promise<CompiledCkksModel> {
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
