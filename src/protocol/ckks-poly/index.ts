/**
 * Non-interactive inference on CKKS (`--scheme ckks-poly`): CryptoNets-style polynomial networks
 * evaluated entirely by the service in one round, one image per slot.
 *
 * @module
 */
export { planPolyNetwork, polyLogits, MAX_SERVICE_DEGREE, UnsupportedModelError, type PolyPlan, type PolyStage, type PolyOutputActivation } from './plan.js';
export { compilePolyNetwork, runInteger, ParameterError, type CompiledPolyNetwork, type IntegerStage, type PolyCompileOptions } from './compile.js';
export { evaluatePolyNetwork } from './evaluate.js';
export { CkksPolyService, polyInfoOf, evaluateRequest, type PolyServiceOptions, type PolyEvaluator } from './service.js';
export { CkksPolyClient, type PolyTransport, type PolyPrediction } from './client.js';
export { encodePolyMessage, decodePolyMessage, expectPolyMessage, CKKS_POLY_PROTOCOL_VERSION, ProtocolError, type PolyInfo, type PolyMessage } from './messages.js';
