/**
 * Interactive encrypted inference on CKKS: the service evaluates linear stages on SIMD-packed
 * ciphertexts, the client evaluates activations on blinded, shuffled values and re-encrypts them
 * in the layout the next stage wants.
 *
 * @module
 */
export { compileCkksModel, DEFAULT_CKKS_PROTOCOL, HEURISTIC_SMUDGING, type CompiledCkksModel, type CkksProtocolParams, type CkksStage } from './compile.js';
export { CkksInferenceService, UnknownSessionError, UnknownKeysError, OutOfOrderError } from './service.js';
export { CkksInferenceClient, type CkksTransport, type ClientActivation, type CkksPrediction, type CkksPredictionStats } from './client.js';
export { inProcessCkksTransport, clientActivations } from './in-process.js';
export { PROTOCOL_VERSION } from './messages.js';
export { evaluateProducts, sumOfProducts, type ProductEvaluator, type ProductTask, type ProductTerm } from './products.js';
export { planDiagonal, type DiagonalPlan } from './diagonal.js';
export { planShared, withTermWeights, type SharedPlan, type SharedShape } from './shared.js';
export { planStage, type StageLayoutMode, type StagePlan } from './stage-plan.js';
export { LAYOUT_COST } from './layout.js';
