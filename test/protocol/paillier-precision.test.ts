import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { OverflowError } from '../../src/errors.js';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { gcd } from '../../src/math/modular.js';
import { AvgPool2d, Conv2d, Flatten, Model, Relu, argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import {
  PaillierInferenceClient,
  PaillierInferenceService,
  compileModel,
  decodeMessage,
  simulateProtocol,
} from '../../src/protocol/paillier-inference/index.js';
import { blindingFactor, blindingNoise, packedBlindingNoise } from '../../src/protocol/paillier-inference/session-math.js';
import { SlotLayout } from '../../src/schemes/paillier/packing.js';
import { smallKeys } from '../helpers/keys.js';

const small = importOnnx(readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url)));
const sample = loadFashionMnistSample({ limit: 140 });
const calibration = sample.images.subarray(0, 100 * 784);
const evalImages = sample.images.subarray(100 * 784);
const compiled = compileModel(small, calibration);

test('blinding noise keeps every sign and the order within a shared factor, and stays below r/2', () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 2 ** 20 }), fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }), fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }), (rn, v, w) => {
      const r = BigInt(rn);
      const [e, f] = blindingNoise(r, 2).map(BigInt) as [bigint, bigint];
      assert.ok(2n * (e < 0n ? -e : e) < r, `|e| = ${e} for r = ${r}`);
      const blinded = r * v + e;
      if (v !== 0n) assert.equal(blinded > 0n, v > 0n, 'sign kept');
      if (v > w) assert.ok(blinded > r * w + f, 'order kept');
    }),
    { numRuns: 500 },
  );
  // Both ends of the range occur (the draw is not stuck on a few values).
  const draws = blindingNoise(9n, 4000);
  assert.deepEqual([Math.min(...draws), Math.max(...draws)], [-4, 4]);
});

test('packed blinding noise puts each sample\'s noise in its own slot', () => {
  const layout = new SlotLayout(512, { bound: 1n << 20n, guardBits: 6 });
  const factors = [blindingFactor(3, 8), blindingFactor(3, 8), blindingFactor(3, 8)];
  // Batch mode: one value per ciphertext, 4 samples.
  const batch = packedBlindingNoise(factors, layout.slotBits, 1, 4);
  assert.equal(batch.length, 3);
  batch.forEach((packed, i) => {
    const n = 1n << 500n; // any modulus far above the packed width
    const slots = layout.unpack(packed < 0n ? packed + n : packed, n, 4);
    for (const e of slots) assert.ok(2n * (e < 0n ? -e : e) < factors[i]!);
  });
  // Latency mode: two values per ciphertext, one sample.
  assert.equal(packedBlindingNoise(factors, layout.slotBits, 2, 1).length, 2);
});

test('the simulated protocol tracks the encrypted one and stays within the compiled bounds', async () => {
  const images = evalImages.subarray(0, 6 * 784);
  const plain = runPlaintext(small, images);
  const sim = simulateProtocol(compiled, images, 3);
  const service = new PaillierInferenceService({ allowInsecureKeys: true });
  service.register('small', compiled);
  const client = new PaillierInferenceClient({ send: (b) => service.handle(b) }, { keys: smallKeys(), mode: 'batch', batch: 3 });
  const { logits, labels } = await client.predict('small', images);
  assert.deepEqual(labels, Array.from(argmaxRows(plain, 10)));
  assert.deepEqual(Array.from(argmaxRows(sim.logits, 10)), labels);
  logits.forEach((row, k) =>
    row.forEach((v, j) => {
      // Both are the same integer pipeline with different random factors: each within the precision of the other.
      assert.ok(Math.abs(v - plain[k * 10 + j]!) < 5e-3, `encrypted logit ${v} vs ${plain[k * 10 + j]}`);
      assert.ok(Math.abs(sim.logits[k * 10 + j]! - plain[k * 10 + j]!) < 5e-3, 'simulated logit');
    }),
  );
  const onCalibration = simulateProtocol(compiled, calibration, 10);
  onCalibration.maxAbs.forEach((seen, s) => {
    const bounds = compiled.stages[s]!;
    seen.maps.forEach((m, i) => assert.ok(m <= bounds.maps[i]!.outputBound, `stage ${s} map ${i}: ${m} > ${bounds.maps[i]!.outputBound}`));
    assert.ok(seen.sent <= bounds.sentBound, `stage ${s} sent`);
    assert.ok(seen.returned <= bounds.returnedBound, `stage ${s} returned`);
  });
});

test('coarser precision is narrower slots: fewer bits, more samples per ciphertext', () => {
  const coarse = compileModel(small, calibration, { precisionBits: 12, weightBits: 12 });
  assert.ok(coarse.valueBits < compiled.valueBits - 6, `${coarse.valueBits} vs ${compiled.valueBits}`);
  assert.throws(() => compileModel(small, calibration, { blindMantissaBits: 2 }), RangeError);
  assert.throws(() => compileModel(small, calibration, { uniformWeightBits: 40 }), RangeError);
});

test('the client sees no common factor across a batch: blinded values carry noise', async () => {
  const { publicKey, privateKey } = smallKeys();
  const service = new PaillierInferenceService({ allowInsecureKeys: true });
  service.register('small', compiled);
  const gcds: bigint[] = [];
  const transport = {
    async send(bytes: Uint8Array) {
      const reply = await service.handle(bytes);
      const msg = decodeMessage(reply);
      if (msg.type === 'activate') {
        const layout = SlotLayout.fromSlotBits(publicKey.bits, msg.spec.slotBits, compiled.params.guardBits, 5);
        for (const c of msg.ciphertexts.slice(0, 60)) {
          const slots = layout.unpack(privateKey.decrypt(publicKey.ciphertext(c)), publicKey.n, 5);
          gcds.push(slots.reduce((g, v) => gcd(g, v), 0n));
        }
      }
      return reply;
    },
  };
  const client = new PaillierInferenceClient(transport, { keys: smallKeys(), mode: 'batch', batch: 5 });
  await client.predict('small', evalImages.subarray(0, 5 * 784));
  assert.ok(gcds.length >= 60);
  // Each ciphertext's 5 values share the blinding factor r ≥ 2^8; without the noise their gcd would be a multiple of r.
  const large = gcds.filter((g) => g >= 256n).length;
  assert.ok(large <= gcds.length / 20, `${large} of ${gcds.length} ciphertexts have a common factor ≥ 256`);
});

test('inputs far outside the calibrated range fail with an OverflowError, never a wrong prediction', async () => {
  const service = new PaillierInferenceService({ allowInsecureKeys: true });
  service.register('small', compiled);
  const client = new PaillierInferenceClient({ send: (b) => service.handle(b) }, { keys: smallKeys(), mode: 'batch', batch: 4 });
  for (const factor of [64, 4096]) {
    // 64×: beyond the slot bound (headroom 4×) but inside the guard bits, always caught; 4096×: past the guard bits, caught by the slot checks.
    const loud = Float32Array.from(evalImages.subarray(0, 4 * 784), (v) => v * factor);
    await assert.rejects(client.predict('small', loud), OverflowError, `inputs ×${factor}`);
  }
});

test('average pooling between a ReLU and a conv gets its own exponent precision (uniformWeightBits)', () => {
  const conv = (inCh: number, outCh: number) =>
    new Conv2d({ outChannels: outCh, inChannels: inCh, kernel: [3, 3], weights: Float32Array.from({ length: outCh * inCh * 9 }, (_, i) => Math.sin(i + 1)) });
  const model = new Model([1, 10, 10], [conv(1, 2), new Relu(), new AvgPool2d({ kernel: [2, 2], stride: [1, 1] }), conv(2, 3), new Flatten()]);
  const inputs = Float32Array.from({ length: 100 * 4 }, (_, i) => ((i * 37) % 101) / 100);
  const fine = compileModel(model, inputs, { uniformWeightBits: 10 });
  const coarse = compileModel(model, inputs, { uniformWeightBits: 6 });
  assert.equal(fine.plan.stages[1]!.linears.length, 2, 'the pool stays its own map');
  const [pool, next] = [0, 1].map((m) => fine.stages[1]!.maps[m]!.q / coarse.stages[1]!.maps[m]!.q);
  assert.equal(pool, 16, 'the pool map: 4 bits fewer');
  assert.equal(next, 16, 'the conv keeps its own precision on top');
  assert.equal(fine.stages[0]!.maps[0]!.q, coarse.stages[0]!.maps[0]!.q, 'the first conv is not uniform');
});
