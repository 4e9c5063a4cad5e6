/**
 * `blindml predict --server URL --model-id ID` without a local model: a user who holds no copy of
 * the model's weights predicts through the service's public record (input shape, class names, the
 * input standardisation) and the client SDK, under Paillier or interactive CKKS. Without the model
 * there is no plaintext check.
 *
 * @module
 */
import { connect } from '../client/sdk.js';
import { connectCkks } from '../client/ckks.js';
import { getModel, type PublicModelInfo } from '../client/owner.js';
import type { NamedInput } from '../data/inputs.js';
import { standardizeInputs } from '../data/onnx-labels.js';
import { UsageError } from './usage-error.js';

/** What a remote-only run needs. */
export interface RemoteOnlyOptions {
  readonly server: string;
  readonly modelId: string;
  readonly scheme: 'paillier' | 'ckks' | 'ckks-poly';
  readonly transport: 'websocket' | 'http';
  readonly keyBits: number;
  readonly insecure: boolean;
}

/** Decrypted outputs per input and the online cost per input. */
export interface RemoteOnlyResult {
  readonly logits: Float64Array[];
  readonly msPerInput: number;
  readonly bytesPerInput: number;
  readonly rounds: number;
}

/**
 * The service's public record of a model, for a run without the model file.
 *
 * @throws UsageError when the service has no such model or the scheme needs the model locally.
 */
export async function servedRecord(options: RemoteOnlyOptions): Promise<PublicModelInfo> {
  if (options.scheme === 'ckks-poly') throw new UsageError('--scheme ckks-poly with --model-id also needs --model FILE (its batches are prepared from the model)');
  const record = await getModel(options.server, options.modelId);
  if (!record) throw new UsageError(`the service at ${options.server} has no model ${options.modelId} (see blindml models list)`);
  return record;
}

/** Standardises inputs in place as the service's record states (feature models), else leaves them. */
export function standardizeAsServed(inputs: readonly NamedInput[], record: PublicModelInfo): void {
  if (record.standardization) for (const input of inputs) standardizeInputs(input.values, record.standardization);
}

/**
 * Encrypts each input, has the service evaluate it, decrypts the outputs: one session per input.
 *
 * @throws ServiceError/TransportError from the SDK.
 */
export async function runRemoteOnly(options: RemoteOnlyOptions, inputs: readonly NamedInput[], onDone: (done: number) => void, onPhase: (phase: string) => void): Promise<RemoteOnlyResult> {
  const logits: Float64Array[] = [];
  let ms = 0;
  let bytes = 0;
  let rounds = 0;
  if (options.scheme === 'ckks') {
    onPhase('generating CKKS keys');
    const ckks = await connectCkks(options.server, options.modelId, { transport: options.transport });
    try {
      for (const input of inputs) {
        const started = performance.now();
        const p = await ckks.predict(input.values);
        ms += performance.now() - started;
        logits.push(Float64Array.from(p.logits));
        bytes += p.stats.bytesUp + p.stats.bytesDown;
        rounds = p.stats.rounds;
        onDone(logits.length);
      }
    } finally {
      ckks.close();
    }
  } else {
    onPhase(`generating a ${options.keyBits}-bit Paillier key`);
    const client = await connect(options.server, { transport: options.transport, keyBits: options.keyBits, insecure: options.insecure });
    try {
      for (const input of inputs) {
        const p = await client.predict(options.modelId, input.values);
        logits.push(p.logits);
        ms += p.stats.totalMs;
        bytes += p.stats.bytesSent + p.stats.bytesReceived;
        rounds = p.stats.rounds;
        onDone(logits.length);
      }
    } finally {
      client.close();
    }
  }
  return { logits, msPerInput: ms / inputs.length, bytesPerInput: bytes / inputs.length, rounds };
}
