import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '../../src/schemes/paillier/index.js';
import { chooseParameters, CkksContext, CkksKeyring } from '../../src/schemes/ckks/index.js';
import { KeySwitchService } from '../../src/protocol/multikey/key-switch.js';
import { CkksDataProvider, PaillierDataProvider, switchLayout } from '../../src/protocol/multikey/providers.js';
import { LocalChannel, PeerUnavailableError } from '../../src/protocol/multikey/transport.js';
import { FormatError, InvalidCiphertextError, KeyMismatchError, ShapeError } from '../../src/errors.js';
import { b64ToBig } from '../../src/protocol/multikey/codec.js';
import type { ConvertedRecords } from '../../src/protocol/multikey/key-switch.js';

const F = 13;
const training = generateKeyPair({ bits: 1024, insecure: true });
const records = [
  [0.5, -1.25, 2, 0, 3.99, -4.5, 0.001, 1, -1, 0.25, 1.5],
  [-0.3, 0.7, -2.2, 1.1, 0, 0, 0, 0, 0, 0, -0.9],
  [1e-4, -1e-4, 7.5, -7.5, 0.3333, 0.6667, 2.5, -2.5, 0.1, -0.1, 0],
].map((r) => Float64Array.from(r));
const context = await CkksContext.create(chooseParameters({ depth: 0, scaleBits: 30, headroomBits: 30 }));
const keyrings: CkksKeyring[] = [];
after(() => {
  for (const k of keyrings) k.dispose();
  context.dispose();
});

function counter() {
  return { bytes: 0, rounds: 0 };
}

function decryptConverted(c: ConvertedRecords): bigint[] {
  const layout = switchLayout(training.publicKey.bits);
  const count = c.records * c.width;
  return c.ciphertexts.flatMap((ct, i) => layout.unpack(training.privateKey.decrypt(ct), training.publicKey.n, Math.min(layout.slots, count - i * layout.slots)));
}

const fixed = records.flatMap((r) => Array.from(r, (x) => BigInt(Math.round(x * 2 ** F))));

test('key switch: a Paillier provider’s records arrive under the training key exactly', async () => {
  const own = generateKeyPair({ bits: 1024, insecure: true });
  const provider = new PaillierDataProvider('p1', own, records, F);
  const service = new KeySwitchService(training.publicKey, 11, F);
  service.registerPaillier('p1', provider.publicKey);
  service.accept(JSON.parse(JSON.stringify(provider.upload())));
  const c = counter();
  let seen: unknown;
  const channel = new LocalChannel(async (m) => {
    seen = m;
    return provider.answerSwitch(m, training.publicKey);
  }, { peer: 'p1', counter: c });
  const converted = await service.switchProvider('p1', channel);
  assert.deepEqual(decryptConverted(converted), fixed);
  assert.equal(c.rounds, 1);
  assert.ok(c.bytes > 0);
  // What the key holder decrypted was masked: no slot equals the record value.
  const layout = switchLayout(provider.publicKey.bits);
  const sent = (seen as { ciphertexts: string[] }).ciphertexts.map((t) => provider.publicKey.ciphertext(b64ToBig(t)));
  const masked = sent.flatMap((ct, i) => layout.unpack(own.privateKey.decrypt(ct), provider.publicKey.n, Math.min(layout.slots, 33 - i * layout.slots)));
  assert.equal(masked.filter((v, i) => v === fixed[i]).length, 0);
});

test('key switch: a CKKS provider’s records arrive within one unit of 2^-13', async () => {
  const keyring = CkksKeyring.generate(context);
  keyrings.push(keyring);
  const provider = new CkksDataProvider('c1', keyring, records, F);
  const service = new KeySwitchService(training.publicKey, 11, F);
  service.registerCkks('c1', provider.keyId, context);
  service.accept(JSON.parse(JSON.stringify(provider.upload())));
  const channel = new LocalChannel(async (m) => provider.answerSwitch(m, training.publicKey), { peer: 'c1', counter: counter() });
  const got = decryptConverted(await service.switchProvider('c1', channel));
  got.forEach((v, i) => assert.ok(v - fixed[i]! <= 1n && fixed[i]! - v <= 1n, `value ${i}: ${v} vs ${fixed[i]}`));
});

test('key switch: unknown key, unknown provider, wrong width, junk ciphertext, silent key holder', async () => {
  const own = generateKeyPair({ bits: 1024, insecure: true });
  const provider = new PaillierDataProvider('p1', own, records, F);
  const service = new KeySwitchService(training.publicKey, 11, F);
  service.registerPaillier('p1', generateKeyPair({ bits: 1024, insecure: true }).publicKey);
  assert.throws(() => service.accept(provider.upload()), KeyMismatchError);
  const stranger = new PaillierDataProvider('p9', own, records, F);
  assert.throws(() => service.accept(stranger.upload()), /unknown provider/);

  const ok = new KeySwitchService(training.publicKey, 11, F);
  ok.registerPaillier('p1', own.publicKey);
  const narrow = new PaillierDataProvider('p1', own, records.map((r) => r.subarray(0, 9)), F);
  assert.throws(() => ok.accept(narrow.upload()), ShapeError);
  const up = provider.upload();
  assert.throws(() => ok.accept({ ...up, ciphertexts: up.ciphertexts.map(() => 'AAAA') }), InvalidCiphertextError);
  assert.throws(() => ok.accept({ ...up, ciphertexts: [...up.ciphertexts, ...up.ciphertexts] }), ShapeError);
  assert.throws(() => ok.accept({ ...up, v: 2 }), FormatError);
  assert.throws(() => ok.accept('junk'), FormatError);

  ok.accept(up);
  const silent = new LocalChannel(async () => ({}), { peer: 'p1', counter: counter(), failAfter: 0 });
  await assert.rejects(ok.switchProvider('p1', silent), PeerUnavailableError);
  const count = Math.ceil(33 / switchLayout(training.publicKey.bits).slots);
  const garbled = new LocalChannel(async () => ({ v: 1, type: 'switched', ciphertexts: new Array(count).fill('AAAA') }), { peer: 'p1', counter: counter() });
  await assert.rejects(ok.switchProvider('p1', garbled), InvalidCiphertextError);
  // A CKKS ciphertext under another keyring is refused at upload.
  const a = CkksKeyring.generate(context);
  const b = CkksKeyring.generate(context);
  keyrings.push(a, b);
  const ckksService = new KeySwitchService(training.publicKey, 11, F);
  ckksService.registerCkks('c1', a.keyId, context);
  const impostor = new CkksDataProvider('c1', b, records, F);
  assert.throws(() => ckksService.accept(impostor.upload()), KeyMismatchError);
  const forged = { ...impostor.upload(), keyId: a.keyId };
  assert.throws(() => ckksService.accept(forged), KeyMismatchError);
});
