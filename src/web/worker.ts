/**
 * The demo's Web Worker: generates the keys, encrypts the image, answers the activation rounds and
 * decrypts the prediction, all off the page's main thread. Paillier keys are made once at start;
 * CKKS keys once per model, on its first CKKS prediction (they depend on the model's parameters).
 * The private keys never leave this worker. Browser-only.
 *
 * @module
 */
import { connect, type BlindmlClient } from '../client/sdk.js';
import { WebSocketCkksTransport } from '../client/ckks-ws-transport.js';
import { CkksInferenceClient } from '../protocol/ckks-inference/client.js';
import type { FromWorker, ToWorker } from './messages.js';

const scope = self as unknown as { postMessage(m: FromWorker): void; onmessage: ((ev: MessageEvent<ToWorker>) => void) | null };
let url = '';
let client: Promise<BlindmlClient> | undefined;
const ckksClients = new Map<string, Promise<{ client: CkksInferenceClient; transport: WebSocketCkksTransport }>>();

const post = (m: FromWorker) => scope.postMessage(m);
const describe = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));
function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/** A CKKS client for the model, made (keys generated and uploaded) on first use. */
function ckksClient(modelId: string): Promise<{ client: CkksInferenceClient; transport: WebSocketCkksTransport }> {
  let made = ckksClients.get(modelId);
  if (!made) {
    made = (async () => {
      const transport = await WebSocketCkksTransport.connect(url, modelId);
      try {
        return { client: await CkksInferenceClient.connect(transport), transport };
      } catch (err) {
        transport.close();
        throw err;
      }
    })();
    made.catch(() => ckksClients.delete(modelId));
    ckksClients.set(modelId, made);
  }
  return made;
}

async function predictCkks(id: number, modelId: string, pixels: Float32Array): Promise<void> {
  const started = performance.now();
  post({ type: 'progress', id, phase: 'keys', bytesSent: 0, bytesReceived: 0 });
  const { client: c, transport } = await ckksClient(modelId);
  const before = { ...transport.traffic };
  post({ type: 'progress', id, phase: 'evaluating', bytesSent: 0, bytesReceived: 0 });
  const r = await c.predict(pixels);
  post({
    type: 'result',
    id,
    scheme: 'ckks',
    label: argmax(r.logits),
    logits: Array.from(r.logits),
    ms: performance.now() - started,
    bytesSent: transport.traffic.sent - before.sent,
    bytesReceived: transport.traffic.received - before.received,
    rounds: r.stats.rounds,
    clientMs: r.stats.clientMs,
  });
}

async function predictPaillier(id: number, modelId: string, pixels: Float32Array): Promise<void> {
  if (!client) throw new Error('the worker is not initialised');
  const c = await client;
  const started = performance.now();
  const r = await c.predict(modelId, pixels, { onProgress: (p) => post({ type: 'progress', id, ...p }) });
  post({
    type: 'result',
    id,
    scheme: 'paillier',
    label: r.label,
    logits: Array.from(r.logits),
    ms: performance.now() - started,
    bytesSent: r.stats.bytesSent,
    bytesReceived: r.stats.bytesReceived,
    rounds: r.stats.rounds,
    clientMs: r.stats.clientMs,
  });
}

scope.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.type === 'init') {
    const started = performance.now();
    url = msg.url;
    client = connect(msg.url, { keyBits: msg.keyBits, insecure: msg.insecure });
    client.then(
      (c) => post({ type: 'ready', keyMs: performance.now() - started, keyBits: c.keys.publicKey.bits }),
      (err) => post({ type: 'error', id: null, message: describe(err) }),
    );
    return;
  }
  const { id, modelId, pixels, scheme } = msg;
  (scheme === 'ckks' ? predictCkks(id, modelId, pixels) : predictPaillier(id, modelId, pixels)).catch((err: unknown) => post({ type: 'error', id, message: describe(err) }));
};
