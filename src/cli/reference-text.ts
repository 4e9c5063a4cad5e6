/**
 * How `blindml train` describes the plaintext reference beside its result.
 *
 * @module
 */
import type { TrainingReference } from '../train/reference.js';

/** "the same network in plaintext, 4 epochs (of up to 30) chosen on held-back training records". */
export function referenceText(r: TrainingReference): string {
  return `the same network in plaintext, ${r.epoch} epoch${r.epoch === 1 ? '' : 's'} (of up to ${r.maxEpochs}) chosen on held-back training records`;
}
