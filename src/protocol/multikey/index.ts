/**
 * Collaborative training from many data providers with their own keys: the blinded key switch
 * (Paillier and CKKS providers to one Paillier training key), and the two training servers'
 * share arithmetic with products through Paillier under the training key. What each party sees:
 * docs/security.md, "Multi-key collaborative training".
 *
 * Why not `protocol/two-server` (the Secure MLP's arithmetic): there S1 keeps every value as a
 * ciphertext under S2's key, so every re-scaling and every product output costs S2 a decryption,
 * an encryption and a round. Training here truncates about 29,000 values per epoch; as local
 * truncation of 64-bit shares that is free, and only the products' cross terms go through Paillier.
 *
 * @module
 */
export { RING, RING_BITS, encodeFixed, decodeFixed, toSigned, reduce } from './ring.js';
export { type RingMatrix, type LocalInstr, type InteractiveInstr, type ShareStore, applyLocal, localProduct } from './program.js';
export { type TrainingEngine, PlainEngine } from './engine.js';
export { type PaillierCompute, LocalPaillierCompute } from './compute.js';
export { CROSS_SLOT_BITS, STAT_BITS, crossSlots, planMatmul, planMul } from './cross.js';
export { type Channel, type TrafficCounter, LocalChannel, PeerError, PeerUnavailableError } from './transport.js';
export { MULTIKEY_VERSION, UploadSchema, SwitchRequestSchema, SwitchReplySchema, ToCryptoSchema, FromCryptoSchema, type Upload } from './messages.js';
export { CryptoServer, type CheckpointStore, type CryptoServerOptions } from './crypto-server.js';
export { ServiceEngine } from './service-engine.js';
export { PaillierDataProvider, CkksDataProvider, paillierKeyId, switchLayout } from './providers.js';
export { KeySwitchService, shareConverted, type ConvertedRecords } from './key-switch.js';
export { serializeStore, deserializeStore } from './state.js';
