/**
 * Errors of the two-server protocols.
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';

/** The crypto server did not answer in time, or the connection to it was lost. */
export class CryptoServerUnavailableError extends BlindmlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CRYPTO_SERVER_UNAVAILABLE', message, options);
  }
}

/** A two-server message was malformed, out of order, or refused by the other party. */
export class TwoServerProtocolError extends BlindmlError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
