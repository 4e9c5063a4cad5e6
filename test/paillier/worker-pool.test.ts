import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { dot, matVec } from '../../src/schemes/paillier/index.js';
import { PaillierWorkerPool } from '../../src/workers/index.js';
import { localRowEvaluator } from '../../src/tensor/paillier-sparse.js';
import { smallKeys } from '../helpers/keys.js';

const pool = new PaillierWorkerPool({ threads: 2 });
after(() => pool.destroy());

test('the worker pool encrypts, decrypts and computes matVec exactly like the single thread', async () => {
  const { publicKey, privateKey } = smallKeys();
  const values = Array.from({ length: 37 }, (_, i) => BigInt(i * i - 300));
  const cts = await pool.encryptMany(publicKey, values);
  assert.equal(cts.length, values.length);
  assert.deepEqual(cts.map((c) => privateKey.decryptSigned(c)), values);
  const plain = await pool.decryptMany(privateKey, cts);
  assert.deepEqual(plain, cts.map((c) => privateKey.decrypt(c)));
  const rows = 5;
  const weights = Int32Array.from({ length: rows * cts.length }, (_, i) => ((i * 7919) % 2001) - 1000);
  const bias = [1n, -2n, 3n, -4n, 5n];
  const parallel = await pool.matVec(cts, weights, rows, bias);
  const single = matVec(cts, weights, rows, bias);
  assert.deepEqual(parallel.map((c) => c.value), single.map((c) => c.value), 'identical ciphertexts, not just plaintexts');
  assert.equal(privateKey.decryptSigned(parallel[0]!), privateKey.decryptSigned(dot(cts, weights.subarray(0, cts.length), 1n)));
  const noise = await pool.noise(publicKey, 6);
  assert.equal(new Set(noise).size, 6);
  assert.equal(privateKey.decrypt(publicKey.ciphertext(publicKey.encryptRaw(4n, noise[0]))), 4n);
});

test('the pool packs and evaluates sparse rows exactly like the local evaluator', async () => {
  const { publicKey } = smallKeys();
  const values = Array.from({ length: 11 }, (_, i) => publicKey.encrypt(BigInt(i - 5)).value);
  const factors = values.map((_, i) => BigInt(65536 + i * 977));
  assert.deepEqual(await pool.pack(publicKey, values, factors, 40, 3), await localRowEvaluator.pack(publicKey, values, factors, 40, 3));
  assert.deepEqual(await pool.pack(publicKey, values, null, 40, 1), values);
  const rows = {
    offsets: Int32Array.of(0, 3, 3, 7),
    indices: Int32Array.of(0, 4, 9, 1, 2, 3, 10),
    exponents: Float64Array.of(5, -7, 123456, -1, 2, -3, 4),
    bias: [1n, 0n, -9n],
  };
  assert.deepEqual(await pool.evaluate(publicKey, values, rows, 3), await localRowEvaluator.evaluate(publicKey, values, rows, 3));
});
