/**
 * The plaintext reference of `train --scheme fe` (see `../reference.ts`): the twin's MLP
 * (same quantization and first layer), the number of epochs (up to {@link FE_REFERENCE_EPOCHS})
 * chosen on a held-back fifth of the training images, then trained on all of them. About a second
 * and a half per epoch for 2,000 images on one core.
 *
 * @module
 */
import type { FixedPointSamples } from '../../protocol/fe-training/data-owner.js';
import { epochChosenReference, referenceSplit, type TrainingReference } from '../reference.js';
import { Mlp, type MlpConfig } from './mlp.js';
import { SeededRandom } from './prng.js';
import { quantizeInputs, type QuantConfig } from './quantize.js';
import type { ImageSet } from './run.js';
import { PlainFirstLayer } from './source.js';

/** Epochs the reference may train. */
export const FE_REFERENCE_EPOCHS = 10;

function fixedPoint(set: ImageSet, from: number, to: number, quant: QuantConfig): FixedPointSamples {
  const f = set.features;
  return { count: to - from, features: f, x: quantizeInputs(set.images.subarray(from * f, to * f), quant), labels: set.labels.subarray(from, to), classes: 10 };
}

function accuracy(model: Mlp, set: FixedPointSamples): number {
  const predicted = model.predict(set.x, set.count);
  return set.count === 0 ? 0 : predicted.reduce((n, p, i) => n + +(p === set.labels[i]), 0) / set.count;
}

/** Trains and scores the reference MLP. */
export function feMlpReference(train: ImageSet, test: ImageSet, config: MlpConfig, quant: QuantConfig, batchSize: number): Promise<TrainingReference> {
  const { fit, validation } = referenceSplit(train.count);
  const run = (samples: FixedPointSamples, scoreOn: FixedPointSamples) => {
    const columnLength = Math.min(batchSize, samples.count);
    const source = new PlainFirstLayer(samples, columnLength);
    const model = new Mlp(config, quant);
    const rng = new SeededRandom(config.seed ^ 0x5eed);
    return {
      epoch: async () => {
        const order = rng.permutation(samples.count);
        for (let s = 0; s < samples.count; s += batchSize) await model.trainBatch(source, order.slice(s, s + batchSize), columnLength);
      },
      score: () => accuracy(model, scoreOn),
    };
  };
  const heldBack = run(fixedPoint(train, 0, fit, quant), fixedPoint(train, fit, fit + validation, quant));
  return epochChosenReference(FE_REFERENCE_EPOCHS, heldBack, () => run(fixedPoint(train, 0, train.count, quant), fixedPoint(test, 0, test.count, quant)));
}
