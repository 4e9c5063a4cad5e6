/**
 * The demo's Web Worker: generates the key pair, encrypts the image, answers the activation
 * rounds and decrypts the prediction, all off the page's main thread. The private key never
 * leaves this worker. Browser-only.
 *
 * @module
 */
import { connect, type BlindmlClient } from '../client/sdk.js';
import type { FromWorker, ToWorker } from './messages.js';

const scope = self as unknown as { postMessage(m: FromWorker): void; onmessage: ((ev: MessageEvent<ToWorker>) => void) | null };
let client: Promise<BlindmlClient> | undefined;

const post = (m: FromWorker) => scope.postMessage(m);
const describe = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

scope.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.type === 'init') {
    const started = performance.now();
    client = connect(msg.url, { keyBits: msg.keyBits, insecure: msg.insecure });
    client.then(
      (c) => post({ type: 'ready', keyMs: performance.now() - started, keyBits: c.keys.publicKey.bits }),
      (err) => post({ type: 'error', id: null, message: describe(err) }),
    );
    return;
  }
  const { id, modelId, pixels } = msg;
  void (async () => {
    try {
      if (!client) throw new Error('the worker is not initialised');
      const c = await client;
      const started = performance.now();
      const r = await c.predict(modelId, pixels, { onProgress: (p) => post({ type: 'progress', id, ...p }) });
      post({
        type: 'result',
        id,
        label: r.label,
        logits: Array.from(r.logits),
        ms: performance.now() - started,
        bytesSent: r.stats.bytesSent,
        bytesReceived: r.stats.bytesReceived,
        rounds: r.stats.rounds,
        clientMs: r.stats.clientMs,
      });
    } catch (err) {
      post({ type: 'error', id, message: describe(err) });
    }
  })();
};
