/**
 * The one place blindml loads node-seal (Microsoft SEAL compiled to WebAssembly, pinned at 6.0.3
 * because 7.x needs WebAssembly GC, which Node 20 lacks). Everything else talks to the typed
 * wrappers in this folder.
 *
 * @module
 */
import SEALModule from 'node-seal';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';

export type { SEALLibrary };
export type { CipherText } from 'node-seal/implementation/cipher-text.js';
export type { PlainText } from 'node-seal/implementation/plain-text.js';
export type { Context } from 'node-seal/implementation/context.js';
export type { Evaluator } from 'node-seal/implementation/evaluator.js';
export type { CKKSEncoder } from 'node-seal/implementation/ckks-encoder.js';
export type { PublicKey } from 'node-seal/implementation/public-key.js';
export type { SecretKey } from 'node-seal/implementation/secret-key.js';
export type { RelinKeys } from 'node-seal/implementation/relin-keys.js';
export type { GaloisKeys } from 'node-seal/implementation/galois-keys.js';
export type { Encryptor } from 'node-seal/implementation/encryptor.js';
export type { Decryptor } from 'node-seal/implementation/decryptor.js';

type SealFactory = () => Promise<SEALLibrary>;

// node-seal's main entry is a CommonJS bundle whose types are written for its ES build: under
// Node the default import is the factory itself, under a bundler's ES resolution it is too, but
// TypeScript sees the CommonJS `module.exports` object. Accept both shapes.
const factory: SealFactory =
  typeof SEALModule === 'function' ? (SEALModule as unknown as SealFactory) : (SEALModule as unknown as { default: SealFactory }).default;

let loading: Promise<SEALLibrary> | undefined;

/**
 * Loads (once per process or page) and returns the SEAL library.
 *
 * @throws whatever the WebAssembly instantiation throws (a broken install).
 */
export function loadSeal(): Promise<SEALLibrary> {
  loading ??= factory();
  return loading;
}

/** Frees SEAL objects, ignoring ones already freed (`delete` twice is harmless here). */
export function free(...objects: ReadonlyArray<{ delete(): void } | undefined>): void {
  for (const o of objects) {
    try {
      o?.delete();
    } catch {
      // already deleted
    }
  }
}
