/**
 * Typed errors shared by every layer. Each carries a stable `code` so callers (and the CLI, which
 * prints one readable line per error) can react without parsing messages.
 *
 * @module
 */

/** Base class of every error blindml throws on purpose. */
export class BlindmlError extends Error {
  /** A stable, machine-readable identifier such as `ERR_KEY_MISMATCH`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Two objects made under different keys (or different setups) were combined. */
export class KeyMismatchError extends BlindmlError {
  constructor(message = 'the operands were made under different keys') {
    super('ERR_KEY_MISMATCH', message);
  }
}

/** A value is outside the range that can be represented without wrapping around. */
export class OverflowError extends BlindmlError {
  constructor(message: string) {
    super('ERR_OVERFLOW', message);
  }
}

/** A ciphertext is not a valid element of the ciphertext space (for Paillier: Z*_{n²}). */
export class InvalidCiphertextError extends BlindmlError {
  constructor(message: string) {
    super('ERR_INVALID_CIPHERTEXT', message);
  }
}

/** A key is malformed, inconsistent, or too small without the explicit insecure flag. */
export class InvalidKeyError extends BlindmlError {
  constructor(message: string) {
    super('ERR_INVALID_KEY', message);
  }
}

/** A file or message does not follow its format (bad JSON, wrong fields, truncated bytes). */
export class FormatError extends BlindmlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_FORMAT', message, options);
  }
}
