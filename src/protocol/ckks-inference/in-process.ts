/**
 * An in-process transport (the service runs in the same process) and the client's view of the
 * model's activation rounds.
 *
 * @module
 */
import type { CompiledCkksModel } from './compile.js';
import type { CkksTransport, ClientActivation } from './client.js';
import type { CkksInferenceService } from './service.js';

/** Calls the service directly (messages still pass through the service's validation). */
export function inProcessCkksTransport(service: CkksInferenceService): CkksTransport {
  return {
    describe: async () => service.describe(),
    registerKeys: async (request) => service.registerKeys(request),
    open: async (request) => service.open(request),
    round: async (request) => service.round(request),
  };
}

/** The activation after each stage but the last: the model's public architecture. */
export function clientActivations(model: CompiledCkksModel): ClientActivation[] {
  return model.stages.slice(0, -1).map((s) => ({ fns: s.activation!.fns, pool: s.activation!.pool }));
}
