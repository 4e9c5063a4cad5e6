/**
 * CKKS (approximate homomorphic encryption over the reals) through node-seal 6.0.3: parameters
 * at 128-bit security, a context per parameter set, the client's keyring and the service's public
 * keys, ciphertexts in a checked envelope, and the operations the protocols use.
 *
 * @module
 */
export { chooseParameters, checkParameters, parameterFingerprint, MAX_COEFF_BITS_128, type CkksParameters, type ParameterRequirements } from './params.js';
export { CkksContext, type ContextOptions } from './context.js';
export { CkksKeyring, CkksServiceKeys, normalizeStep, galoisElement, type PublicBundle, type PublicBundleOptions } from './keys.js';
export { CkksCiphertext } from './ciphertext.js';
export { EnvelopeKind, openEnvelope, sealEnvelope, keyIdHex } from './envelope.js';
export { add, addInPlace, sub, mulPlain, addPlain, multiply, rescaleInPlace, modSwitchInPlace, rotate, clone, negate, subInPlace, addPlainInPlace, reinterpretScaleInPlace, squareUnrelinearized, relinearizeInPlace, addInto, emptyLike } from './ops.js';
export { loadSeal, free, type PlainText } from './seal.js';
