/**
 * How far an encrypted Paillier logit may be from the plaintext executor's, on the committed
 * fashion-small model with the default quantization. The protocol rounds every exponent and the
 * client's shifted outputs, and its blinding factors are random, so the error changes from run to
 * run: over 4,000 simulated images (`simulateProtocol`) its median was 2.5e-4 and its largest
 * 1.4e-3, above 1e-3 for about one image in 250. A wrong factor, scale, bias or permutation moves
 * logits by whole units, far outside this tolerance.
 */
export const PAILLIER_LOGIT_TOLERANCE = 3e-3;
