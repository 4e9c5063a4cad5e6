/**
 * Messages between the demo page and its Web Worker (which holds the keys and does all the
 * cryptography). Browser-only.
 *
 * @module
 */
import type { PredictPhase } from '../client/sdk.js';

export type ToWorker =
  | { type: 'init'; url: string; keyBits: number; insecure: boolean }
  | { type: 'predict'; id: number; modelId: string; pixels: Float32Array };

export type FromWorker =
  | { type: 'ready'; keyMs: number; keyBits: number }
  | { type: 'progress'; id: number; phase: PredictPhase; round?: number; rounds?: number; bytesSent: number; bytesReceived: number }
  | {
      type: 'result';
      id: number;
      label: number;
      logits: number[];
      ms: number;
      bytesSent: number;
      bytesReceived: number;
      rounds: number;
      clientMs: number;
    }
  | { type: 'error'; id: number | null; message: string };
