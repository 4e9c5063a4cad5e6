/**
 * The yardstick `blindml train` prints beside an encrypted run: the same network trained in
 * plaintext by the twin's own code. The number of epochs is chosen on held-back records (trained on
 * the first four fifths of the training records for up to a maximum, scored on the last fifth after
 * each epoch), then the network is trained again on all the training records for that many epochs
 * and scored on the test records, which never choose anything. What a well-trained plaintext model
 * of this architecture reaches on this data, so an encrypted run can be read against it.
 *
 * @module
 */

/** A reference score and how it was reached. */
export interface TrainingReference {
  /** Test score (accuracy, or R²) of the network trained on all training records for `epoch` epochs. */
  readonly score: number;
  /** The epoch the held-back records chose. */
  readonly epoch: number;
  readonly maxEpochs: number;
}

/** Index ranges of the records a reference fits on and validates on: the first 4/5, the last 1/5. */
export function referenceSplit(count: number): { fit: number; validation: number } {
  const fit = Math.max(1, Math.floor(0.8 * count));
  return { fit, validation: count - fit };
}

/** A training run the reference drives: one epoch at a time, then a score. */
export interface ReferenceRun {
  epoch(e: number): void | Promise<void>;
  score(): number;
}

/**
 * Chooses the epoch count on `heldBack` (its score is the validation score; the first best epoch
 * wins), then trains `full()` (its score is the test score) for that many epochs.
 *
 * @throws whatever the runs throw.
 */
export async function epochChosenReference(maxEpochs: number, heldBack: ReferenceRun, full: () => ReferenceRun): Promise<TrainingReference> {
  let best = { validation: -Infinity, epoch: 1 };
  for (let e = 1; e <= maxEpochs; e++) {
    await heldBack.epoch(e);
    const validation = heldBack.score();
    if (validation > best.validation) best = { validation, epoch: e };
  }
  const run = full();
  for (let e = 1; e <= best.epoch; e++) await run.epoch(e);
  return { score: run.score(), epoch: best.epoch, maxEpochs };
}
