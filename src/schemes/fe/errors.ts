/**
 * Errors specific to inner-product functional encryption. Both extend the shared typed errors so
 * the CLI prints them as one line.
 *
 * @module
 */
import { BlindmlError, OverflowError } from '../../errors.js';

/**
 * A decrypted inner product lies outside the declared bound, so the bounded discrete logarithm
 * found no value: the scheme reports this instead of ever returning a wrong value.
 */
export class InnerProductOutOfBoundError extends OverflowError {
  constructor(readonly bound: number) {
    super(`the inner product is outside the declared bound ±${bound} (no discrete logarithm found)`);
  }
}

/** The key authority refused a function-key request (malformed, tampered, or against its policy). */
export class KeyRequestRefusedError extends BlindmlError {
  constructor(readonly reason: string) {
    super('ERR_KEY_REQUEST_REFUSED', `key authority refused the request: ${reason}`);
  }
}
