/**
 * `connectCkks(url, modelId)`: interactive CKKS predictions against a blindml service, in Node and
 * in browsers. The client makes its CKKS keys for the model (the secret key stays here) and uploads
 * the public ones once; each prediction is then one session of rounds.
 *
 * ```ts
 * const ckks = await connectCkks('http://127.0.0.1:8080', modelId);   // WebSocket by default
 * const { logits } = await ckks.predict(image);
 * ckks.close();
 * ```
 *
 * @module
 */
import { CkksInferenceClient, type CkksPrediction } from '../protocol/ckks-inference/client.js';
import { HttpCkksTransport } from './ckks-http-transport.js';
import { WebSocketCkksTransport } from './ckks-ws-transport.js';
import type { WebSocketConstructor } from './websocket-transport.js';
import { withFailover } from './routing.js';

/** A CKKS client bound to one model on one service. */
export interface CkksConnection {
  /** The protocol client (keys, precomputation, statistics). */
  readonly client: CkksInferenceClient;
  /** One image's values (the model's input shape, flattened) → decrypted logits. */
  predict(image: ArrayLike<number>): Promise<CkksPrediction>;
  /** Frees the keys and closes the connection. */
  close(): void;
}

/**
 * Connects to a model's interactive CKKS steps over one WebSocket (default) or HTTP. Behind a
 * balancer, a prediction whose replica is gone moves once to another replica (the public keys are
 * uploaded there again) and runs again from its open (`routing.ts`).
 *
 * @throws ServiceError when the service refuses (unknown model, limits); TransportError when it
 *   cannot be reached; InvalidKeyError for parameters below 128-bit security.
 */
export async function connectCkks(url: string, modelId: string, options: { transport?: 'websocket' | 'http'; WebSocket?: WebSocketConstructor } = {}): Promise<CkksConnection> {
  const socket = options.transport === 'http' ? undefined : await WebSocketCkksTransport.connect(url, modelId, options.WebSocket ? { WebSocket: options.WebSocket } : {});
  try {
    const transport = socket ?? new HttpCkksTransport(url, modelId);
    const client = await CkksInferenceClient.connect(transport);
    // Predictions running side by side that fail together move once, together.
    let moving: Promise<void> | undefined;
    const failover = () => (moving ??= transport.failover().finally(() => (moving = undefined)));
    return {
      client,
      predict: (image) => withFailover(() => client.predict(image), failover),
      close: () => {
        client.dispose();
        socket?.close();
      },
    };
  } catch (err) {
    socket?.close();
    throw err;
  }
}
