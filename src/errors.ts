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

/** A data set or file blindml looks for is not where it looked, and could not be obtained. */
export class DataNotFoundError extends BlindmlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DATA_NOT_FOUND', message, options);
  }
}

/** A model uses an operator (or an operator setting) that blindml cannot evaluate. */
export class UnsupportedOpError extends BlindmlError {
  /** The ONNX op type, such as `LSTM`. */
  readonly op: string;
  /** The name of the offending node (may be empty in files that leave nodes unnamed). */
  readonly node: string;

  constructor(op: string, node: string, detail?: string) {
    const where = node === '' ? 'an unnamed node' : `node '${node}'`;
    super(
      'ERR_UNSUPPORTED_OP',
      `unsupported operator ${op} at ${where}${detail === undefined ? '' : `: ${detail}`}`,
    );
    this.op = op;
    this.node = node;
  }
}

/** Tensor shapes do not fit together (a model's layers, or an input given to a model). */
export class ShapeError extends BlindmlError {
  constructor(message: string) {
    super('ERR_SHAPE', message);
  }
}

/** A value cannot be encoded: not finite, not a number, or not representable at the asked precision. */
export class EncodingError extends BlindmlError {
  constructor(message: string) {
    super('ERR_ENCODING', message);
  }
}
