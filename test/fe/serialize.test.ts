import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../src/errors.js';
import {
  decodeCiphertext,
  decodeFunctionKey,
  decodeMasterPublicKey,
  encodeCiphertext,
  encodeFunctionKey,
  encodeMasterPublicKey,
  FeEngine,
  fromFeJson,
  toFeJson,
} from '../../src/schemes/fe/index.js';

const engine = new FeEngine({ maxDlogTable: 1 << 10 });
const { mpk, msk } = engine.setup(5);
const x = [3, -1, 4, 1, -5];
const y = [2, 7, -1, 8, 2];
const [ct] = engine.encrypt(mpk, [x]);
const key = engine.keyDer(msk, y);

test('mpk, ciphertext and function key round-trip through bytes and JSON and still decrypt', () => {
  const mpk2 = decodeMasterPublicKey(fromFeJson(JSON.parse(JSON.stringify(toFeJson('mpk', encodeMasterPublicKey(mpk)))), 'mpk'));
  assert.equal(mpk2.setupId, mpk.setupId);
  const ct2 = decodeCiphertext(fromFeJson(JSON.parse(JSON.stringify(toFeJson('ciphertext', encodeCiphertext(ct!)))), 'ciphertext'));
  const key2 = decodeFunctionKey(fromFeJson(JSON.parse(JSON.stringify(toFeJson('key', encodeFunctionKey(key)))), 'key'));
  assert.equal(key2.sk, key.sk);
  assert.deepEqual(Array.from(key2.y), y);
  assert.equal(engine.decrypt(ct2, [key2], 1000)[0], 6 - 7 - 4 + 8 - 10);
  // encrypting under the decoded mpk works with the original msk
  const [ct3] = engine.encrypt(mpk2, [x]);
  assert.equal(engine.decrypt(ct3!, [key], 1000)[0], -7);
  assert.deepEqual(encodeCiphertext(ct2), encodeCiphertext(ct!));
});

test('truncated, padded, wrong-kind and bad-magic bytes are FormatErrors', () => {
  const bytes = encodeCiphertext(ct!);
  assert.throws(() => decodeCiphertext(bytes.subarray(0, bytes.length - 1)), FormatError);
  assert.throws(() => decodeCiphertext(bytes.subarray(0, 10)), FormatError);
  assert.throws(() => decodeCiphertext(new Uint8Array([...bytes, 0])), FormatError);
  assert.throws(() => decodeMasterPublicKey(bytes), FormatError);
  const badMagic = bytes.slice();
  badMagic[0] = 0;
  assert.throws(() => decodeCiphertext(badMagic), FormatError);
  const badVersion = bytes.slice();
  badVersion[4] = 9;
  assert.throws(() => decodeCiphertext(badVersion), FormatError);
  assert.throws(() => fromFeJson({ format: 'blindml-fe', version: 1, kind: 'key', data: 'x' }, 'ciphertext'), FormatError);
  assert.throws(() => fromFeJson('nope', 'key'), FormatError);
});

test('a tampered point encoding is rejected; a tampered key scalar or coefficient is caught', () => {
  const bytes = encodeCiphertext(ct!);
  let rejected = 0;
  for (let i = 0; i < 6; i++) {
    const t = bytes.slice();
    t[26 + 32 * i + 31] = (t[26 + 32 * i + 31] ?? 0) ^ 0x80; // set the top bit: never a canonical ristretto255 encoding
    try {
      decodeCiphertext(t);
    } catch (err) {
      assert.ok(err instanceof FormatError);
      rejected++;
    }
  }
  assert.equal(rejected, 6, 'each of the 6 points (g^r and 5 others) was rejected');
  const kb = encodeFunctionKey(key);
  const bigSk = kb.slice();
  bigSk.fill(0xff, kb.length - 32);
  assert.throws(() => decodeFunctionKey(bigSk), FormatError);
  const bigCoef = kb.slice();
  new DataView(bigCoef.buffer).setInt32(26, 2 ** 30, true);
  assert.throws(() => decodeFunctionKey(bigCoef), FormatError);
  const otherSetup = kb.slice();
  otherSetup[6] = (otherSetup[6] ?? 0) ^ 1;
  const foreign = decodeFunctionKey(otherSetup);
  assert.throws(() => engine.decrypt(ct!, [foreign], 1000), /different setups/);
});
