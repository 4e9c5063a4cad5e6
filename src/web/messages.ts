/**
 * Messages between the demo page and its Web Worker (which holds the keys and does all the
 * cryptography). Browser-only.
 *
 * @module
 */
import type { PredictPhase } from '../client/sdk.js';

/** The cryptosystems the page offers: interactive Paillier, or interactive CKKS (lattice, 128-bit). */
export type WebScheme = 'paillier' | 'ckks';

export type ToWorker =
  | { type: 'init'; url: string; keyBits: number; insecure: boolean }
  | { type: 'predict'; id: number; scheme: WebScheme; modelId: string; pixels: Float32Array };

export type FromWorker =
  | { type: 'ready'; keyMs: number; keyBits: number }
  | { type: 'progress'; id: number; phase: PredictPhase; round?: number; rounds?: number; bytesSent: number; bytesReceived: number }
  | {
      type: 'result';
      id: number;
      scheme: WebScheme;
      label: number;
      logits: number[];
      ms: number;
      bytesSent: number;
      bytesReceived: number;
      rounds: number;
      clientMs: number;
    }
  | { type: 'error'; id: number | null; message: string };
