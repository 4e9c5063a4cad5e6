/**
 * Worker-thread entry (loaded by piscina) that compiles a registered model for interactive CKKS
 * ({@link compileCkksUpload}). Node-only.
 *
 * @module
 */
import { compileCkksUpload, type CkksCompileReply } from './ckks-compile.js';
import type { CompileRequest } from './registry.js';

export default function handle(request: CompileRequest): CkksCompileReply {
  return compileCkksUpload(request);
}
