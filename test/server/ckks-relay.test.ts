// A session thread's products reach the product threads through a relay on the main thread: the
// predictions are the plaintext model's, and the ciphertexts and plaintexts move rather than copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MessageChannel } from 'node:worker_threads';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { importOnnx, runPlaintext } from '../../src/nn/index.js';
import {
  CkksInferenceClient, CkksInferenceService, clientActivations, compileCkksModel, inProcessCkksTransport, type ProductEvaluator, type ProductTask,
} from '../../src/protocol/ckks-inference/index.js';
import type { EncodeRequest } from '../../src/protocol/ckks-inference/products.js';
import { CkksProductPool } from '../../src/workers/ckks-products-pool.js';
import { RelayedProducts, serveProducts } from '../../src/workers/ckks-product-relay.js';

const small = importOnnx(readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url)));
const sample = loadFashionMnistSample({ limit: 102 });
const images = sample.images.subarray(100 * 784);
const plain = runPlaintext(small, images);

test('rounds and prepared sessions through the relay agree with plaintext; what they send moves', async () => {
  const model = compileCkksModel(small, sample.images.subarray(0, 100 * 784));
  const pool = new CkksProductPool({ threads: 1 });
  const { port1, port2 } = new MessageChannel();
  // Both ends on this thread: the relay's messages still go through the structured clone with transfer lists.
  serveProducts(port1, pool);
  const relay = new RelayedProducts(port2);
  const sent: { inputs: Uint8Array[]; plaintexts: ArrayBufferView[] }[] = [];
  const watching: ProductEvaluator = {
    products: (task: ProductTask) => {
      sent.push({ inputs: [...task.inputs], plaintexts: task.terms.map((t) => (t.values ?? t.encoded)!) });
      return relay.products(task);
    },
    encode: (request: EncodeRequest) => {
      sent.push({ inputs: [], plaintexts: [...request.values] });
      return relay.encode(request);
    },
  };
  const service = await CkksInferenceService.create(model, { evaluator: watching, parallelProducts: 1 });
  const client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(model));
  try {
    await service.prepare(1);
    for (let i = 0; i < 2; i++) {
      const { logits } = await client.predict(images.subarray(i * 784, (i + 1) * 784));
      logits.forEach((v, j) => assert.ok(Math.abs(v - plain[i * 10 + j]!) < 0.05, `image ${i} logit ${j}: ${v} vs ${plain[i * 10 + j]}`));
    }
    assert.equal(service.preparedSessions, 0, 'the prepared session (encoded through the relay) was used');
    assert.ok(sent.some((s) => s.inputs.length > 0) && sent.some((s) => s.inputs.length === 0), 'both products and encoding went through the relay');
    // Whatever was the whole of its buffer left this side (detached), not copied.
    const owned = sent.flatMap((s) => [...s.inputs, ...s.plaintexts]);
    assert.ok(owned.length > 0 && owned.every((b) => b.byteLength === 0 || b.byteOffset !== 0 || b.buffer.byteLength !== b.byteLength), 'every buffer of its own moved');
    assert.ok(owned.some((b) => b.byteLength === 0));
  } finally {
    client.dispose();
    service.dispose();
    port1.close();
    await pool.destroy();
  }
});
