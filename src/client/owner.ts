/**
 * Model owner calls to a blindml service (fetch, so Node and browsers): register, list, remove.
 *
 * @module
 */
import { bytesToBase64Url } from '../math/bigint.js';
import { TransportError } from './http-transport.js';

/** What anyone may know about a registered model. */
export interface PublicModelInfo {
  id: string;
  name: string;
  inputShape: number[];
  outputSize: number;
  rounds: number;
  /** Class names from the model's `labels` metadata, when it has them. */
  classNames?: string[];
  /** Feature models: the standardisation (x − mean) / std, clipped to ±clip when given, clients apply to raw inputs before encrypting. */
  standardization?: { mean: number[]; std: number[]; clip?: number };
}

/** What the owner sees (with the API key). */
export interface ModelInfo extends PublicModelInfo {
  bytes?: number;
  createdAt?: string;
  calibration?: 'sample' | 'upload';
  calibrationSamples?: number;
}

/** The service refused an owner request (HTTP status and its error code). */
export class ServiceRequestError extends TransportError {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

const base = (url: string) => url.replace(/\/+$/, '');

async function request(url: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new TransportError(`cannot reach ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!res.ok && res.status !== 404) {
    let code = `HTTP_${res.status}`;
    let text = `${init.method ?? 'GET'} ${url} answered HTTP ${res.status}`;
    try {
      const body = (await res.json()) as { error?: string; message?: string };
      if (body.error) code = body.error;
      if (body.message) text = `${text}: ${body.message}`;
    } catch {
      // not JSON
    }
    throw new ServiceRequestError(res.status, code, text);
  }
  return res;
}

const auth = (apiKey?: string): Record<string, string> => (apiKey ? { authorization: `Bearer ${apiKey}` } : {});

/**
 * Lists the service's models (full records with the owner key).
 *
 * @throws TransportError when the service is unreachable; ServiceRequestError on an HTTP error.
 */
export async function listModels(serverUrl: string, apiKey?: string): Promise<ModelInfo[]> {
  const res = await request(`${base(serverUrl)}/v1/models`, { headers: auth(apiKey) });
  return ((await res.json()) as { models: ModelInfo[] }).models;
}

/**
 * One model's record, or undefined when the service has no model with that id.
 *
 * @throws TransportError when the service is unreachable; ServiceRequestError on an HTTP error.
 */
export async function getModel(serverUrl: string, modelId: string, apiKey?: string): Promise<ModelInfo | undefined> {
  const res = await request(`${base(serverUrl)}/v1/models/${encodeURIComponent(modelId)}`, { headers: auth(apiKey) });
  if (res.status === 404) return undefined;
  return (await res.json()) as ModelInfo;
}

/**
 * Uploads an ONNX model (and optionally calibration images as an IDX file); the service compiles
 * it. Registering the same bytes twice returns the existing model with `created: false`.
 *
 * @throws ServiceRequestError (401 without a valid key, 400 for a model the protocol cannot run);
 *   TransportError when the service is unreachable.
 */
export async function registerModel(
  serverUrl: string,
  apiKey: string,
  onnx: Uint8Array,
  options: { name?: string; calibration?: Uint8Array } = {},
): Promise<{ model: ModelInfo; created: boolean }> {
  const url = `${base(serverUrl)}/v1/models`;
  const init: RequestInit = options.calibration
    ? {
        method: 'POST',
        headers: { ...auth(apiKey), 'content-type': 'application/json' },
        body: JSON.stringify({ onnx: bytesToBase64Url(onnx), calibration: bytesToBase64Url(options.calibration), ...(options.name ? { name: options.name } : {}) }),
      }
    : {
        method: 'POST',
        headers: { ...auth(apiKey), 'content-type': 'application/octet-stream' },
        body: onnx as Uint8Array<ArrayBuffer>,
      };
  const res = await request(options.calibration || !options.name ? url : `${url}?name=${encodeURIComponent(options.name)}`, init);
  if (res.status === 404) throw new ServiceRequestError(404, 'ERR_NOT_FOUND', `${url} not found: is this a blindml service?`);
  return (await res.json()) as { model: ModelInfo; created: boolean };
}

/**
 * Removes a model. @returns false when the service had no such model.
 *
 * @throws ServiceRequestError (401 without a valid key); TransportError when unreachable.
 */
export async function removeModel(serverUrl: string, apiKey: string, modelId: string): Promise<boolean> {
  const res = await request(`${base(serverUrl)}/v1/models/${encodeURIComponent(modelId)}`, { method: 'DELETE', headers: auth(apiKey) });
  return res.status !== 404;
}
