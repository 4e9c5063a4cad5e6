/**
 * `blindml demo`: what `npm run demo` runs. Encrypted inference with the default Fashion-MNIST
 * model on 100 committed test images, 2048-bit Paillier keys, batch mode (many images per
 * ciphertext), compared with the plaintext model.
 *
 * @module
 */
import type { Command } from 'commander';
import { loadFashionMnistSample } from '../../data/fashion-mnist.js';
import { bundledModelPath, loadModel, runInferenceJob } from '../inference-job.js';
import { progressBar } from '../progress.js';
import { formatInferenceSummary } from './infer.js';

const IMAGES = 100;
const CALIBRATION = 100;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('encrypted inference demo: the default model on 100 committed Fashion-MNIST images with 2048-bit keys')
    .action(async () => {
      const sample = loadFashionMnistSample();
      const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
      const data = loadFashionMnistSample({ limit: IMAGES });
      const calibration = sample.images.subarray((sample.count - CALIBRATION) * size);
      process.stderr.write(
        `blindml demo: the client encrypts ${IMAGES} Fashion-MNIST images with a fresh 2048-bit Paillier key; ` +
          'the service evaluates models/fashion-small.onnx on the ciphertexts; the client answers ReLU rounds on blinded values.\n',
      );
      const bar = progressBar(IMAGES, 'encrypted inference');
      const result = await runInferenceJob({
        loaded: loadModel(bundledModelPath('fashion-small.onnx')),
        data,
        calibration,
        keyBits: 2048,
        batch: 64,
        onProgress: (done) => bar.update(done),
        onPhase: (phase) => bar.phase(phase),
      }).finally(() => bar.finish());
      process.stdout.write(`${formatInferenceSummary(result)}\n`);
    });
}
