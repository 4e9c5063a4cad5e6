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
 * Connects to a model's interactive CKKS steps over one WebSocket (default) or HTTP.
 *
 * @throws ServiceError when the service refuses (unknown model, limits); TransportError when it
 *   cannot be reached; InvalidKeyError for parameters below 128-bit security.
 */
export async function connectCkks(url: string, modelId: string, options: { transport?: 'websocket' | 'http'; WebSocket?: WebSocketConstructor } = {}): Promise<CkksConnection> {
  const socket = options.transport === 'http' ? undefined : await WebSocketCkksTransport.connect(url, modelId, options.WebSocket ? { WebSocket: options.WebSocket } : {});
  try {
    const client = await CkksInferenceClient.connect(socket ?? new HttpCkksTransport(url, modelId));
    return {
      client,
      predict: (image) => client.predict(image),
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
