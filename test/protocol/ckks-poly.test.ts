import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Polynomial, Relu, Softmax } from '../../src/nn/layers.js';
import { Model } from '../../src/nn/model.js';
import { argmaxRows, runPlaintext } from '../../src/nn/plaintext.js';
import { MAX_COEFF_BITS_128, CkksCiphertext, CkksContext, CkksKeyring, modSwitchInPlace } from '../../src/schemes/ckks/index.js';
import {
  CkksPolyClient,
  CkksPolyService,
  ProtocolError,
  UnsupportedModelError,
  compilePolyNetwork,
  decodePolyMessage,
  encodePolyMessage,
  planPolyNetwork,
  type PolyMessage,
} from '../../src/protocol/ckks-poly/index.js';
import { nafDigits } from '../../src/protocol/ckks-poly/compile.js';
import { expectPolyMessage } from '../../src/protocol/ckks-poly/messages.js';
import { CkksPolyWorkerPool } from '../../src/workers/ckks-poly-pool.js';

// node-seal's WebAssembly memory, caught as the module is instantiated (before any context exists).
let wasmMemory: WebAssembly.Memory | undefined;
const instantiate = WebAssembly.instantiate.bind(WebAssembly);
WebAssembly.instantiate = (async (source: BufferSource, imports?: WebAssembly.Imports) => {
  const made: unknown = await instantiate(source, imports);
  const instance = made instanceof WebAssembly.Instance ? made : (made as WebAssembly.WebAssemblyInstantiatedSource).instance;
  const found = [...Object.values(instance.exports), ...Object.values(imports ?? {}).flatMap((m) => Object.values(m as object))];
  wasmMemory = (found.find((v) => v instanceof WebAssembly.Memory) as WebAssembly.Memory | undefined) ?? wasmMemory;
  return made;
}) as unknown as typeof WebAssembly.instantiate;

const rnd = (n: number, seed: number, scale = 0.5) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * scale);

/** 1×6×6 → conv 3×3×3 → p → dense 8 → p → dense 4. */
function smallModel(): Model {
  return new Model([1, 6, 6], [
    new Conv2d({ weights: rnd(27, 1), bias: rnd(3, 2), outChannels: 3, inChannels: 1, kernel: [3, 3] }),
    new Polynomial([0.3, 0.5, 0.15]),
    new Flatten(),
    new Dense({ weights: rnd(48 * 8, 3), bias: rnd(8, 4), inFeatures: 48, outFeatures: 8 }),
    new Polynomial([0.2, 0.5, 0.1]),
    new Dense({ weights: rnd(32, 5), bias: rnd(4, 6), inFeatures: 8, outFeatures: 4 }),
  ]);
}
const images = (n: number, seed: number) => Float32Array.from({ length: n * 36 }, (_, i) => (Math.sin(i * 3.7 + seed) + 1) / 2);

describe('ckks-poly plan and compile', () => {
  test('plan: conv + pool compose; a degree-1 polynomial joins its linear stage; a trailing softmax is left to the client', () => {
    const model = new Model([1, 6, 6], [
      new Conv2d({ weights: rnd(18, 1), outChannels: 2, inChannels: 1, kernel: [3, 3] }),
      new AvgPool2d({ kernel: [2, 2] }),
      new Polynomial([0, 2]),
      new Polynomial([0, 1, 1]),
      new Flatten(),
      new Dense({ weights: rnd(16, 2), inFeatures: 8, outFeatures: 2 }),
      new Softmax(),
    ]);
    const plan = planPolyNetwork(model);
    assert.equal(plan.stages.length, 2);
    assert.equal(plan.stages[0]!.map.rows, 8);
    assert.deepEqual(plan.stages[0]!.activation, [0, 1, 1]);
    assert.equal(plan.outputActivation, 'softmax');
  });

  test('plan: anything the service cannot evaluate alone is refused by node name', () => {
    const conv = () => new Conv2d({ weights: rnd(9, 1), outChannels: 1, inChannels: 1, kernel: [3, 3] });
    const dense = () => new Dense({ weights: rnd(16, 1), inFeatures: 16, outFeatures: 1 });
    const cases: [Model, RegExp][] = [
      [new Model([1, 6, 6], [conv(), new Relu(), new Flatten(), dense()]), /node 'layer1' \(relu\) cannot be evaluated on CKKS ciphertexts without the client/],
      [new Model([1, 6, 6], [conv(), new MaxPool2d({ kernel: [2, 2] }), new Flatten(), new Dense({ weights: rnd(4, 1), inFeatures: 4, outFeatures: 1 })]), /maxpool2d/],
      [new Model([1, 6, 6], [conv(), new Polynomial([0, 1, 0, 1]), new Flatten(), dense()]), /node 'layer1': a degree-3 polynomial/],
      [new Model([1, 6, 6], [conv(), new Softmax(), new Flatten(), dense()]), /node 'layer1' \(softmax\) is only supported as the model's output/],
    ];
    for (const [model, message] of cases) assert.throws(() => planPolyNetwork(model), (e: unknown) => e instanceof UnsupportedModelError && message.test(e.message));
  });

  test('NAF digits: Σ sign·2^power = k, and no two adjacent digits are non-zero', () => {
    fc.assert(fc.property(fc.integer({ min: -(2 ** 20), max: 2 ** 20 }), (k) => {
      const d = nafDigits(k);
      const sum = d.reduce((s, [p, sign]) => s + sign * 2 ** p, 0);
      return sum === k && d.every(([p], i) => i === 0 || p - d[i - 1]![0] >= 2);
    }));
    assert.deepEqual(nafDigits(7), [[0, -1], [3, 1]]);
    assert.deepEqual(nafDigits(0), []);
  });

  test('compile: integer weights reproduce the model; parameters fit the 128-bit bound of their ring', () => {
    const model = smallModel();
    const cal = images(64, 1);
    const net = compilePolyNetwork(model, cal);
    const plain = runPlaintext(model, cal);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < plain.length; i++) {
      worst = Math.max(worst, Math.abs(plain[i]! - net.calibrationLogits[i]!));
      scale = Math.max(scale, Math.abs(plain[i]!));
    }
    assert.ok(worst < 1e-2 * scale, `quantization error ${worst} vs logits up to ${scale}`);
    const total = net.params.coeffModulusBits.reduce((a, b) => a + b, 0);
    assert.ok(total <= MAX_COEFF_BITS_128[net.params.polyModulusDegree]!);
    assert.equal(net.params.coeffModulusBits.length, 4, 'two squares: three data primes and the special prime');
    assert.equal(net.squares, 48 + 8);
    assert.throws(() => compilePolyNetwork(model, cal, { weightBits: 2 }), RangeError);
    assert.throws(() => compilePolyNetwork(model, cal.subarray(0, 35)), RangeError);
  });
});

describe('ckks-poly protocol', async () => {
  const model = smallModel();
  const net = compilePolyNetwork(model, images(64, 1));
  const service = new CkksPolyService();
  service.register('small', net, model.inputShape);
  const transport = { send: (bytes: Uint8Array) => service.handle(bytes) };
  const client = await CkksPolyClient.connect(transport, 'small');
  after(async () => {
    client.dispose();
    await service.dispose();
  });

  test('the service evaluates the whole network in one round: logits match the plaintext model', async () => {
    const x = images(40, 7);
    const result = await client.predict(x);
    const plain = runPlaintext(model, x);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < plain.length; i++) {
      worst = Math.max(worst, Math.abs(result.logits[i]! - plain[i]!));
      scale = Math.max(scale, Math.abs(plain[i]!));
    }
    assert.ok(worst < 1e-2 * scale, `logit error ${worst} vs logits up to ${scale}`);
    assert.deepEqual(Array.from(result.labels), Array.from(argmaxRows(plain, 4)));
    assert.equal(result.stats.batches, 1);
    // 36 seeded input ciphertexts (≈ 197 KB each at N = 8192, 3 data primes) up, 4 one-prime ciphertexts down.
    assert.ok(result.stats.bytesSent > 36 * 150_000 && result.stats.bytesSent < 36 * 250_000, String(result.stats.bytesSent));
    assert.ok(result.stats.bytesReceived > 0 && result.stats.bytesReceived < 4 * 200_000, String(result.stats.bytesReceived));
  });

  /** An infer request whose ciphertext `at` is replaced. */
  let base: Uint8Array[] | undefined;
  async function inferWith(replace: (blobs: Uint8Array[]) => void): Promise<PolyMessage> {
    const ring = (client as unknown as { keyring: CkksKeyring }).keyring;
    const session = (client as unknown as { session: string }).session;
    base ??= Array.from({ length: 36 }, (_, c) => ring.encryptSeeded([c / 36], net.inputScale));
    const blobs = [...base];
    replace(blobs);
    return decodePolyMessage(await service.handle(encodePolyMessage({ type: 'infer', session, count: 1, blobs })));
  }

  function assertError(msg: PolyMessage, code: string, text?: RegExp): void {
    assert.equal(msg.type, 'error');
    assert.throws(() => expectPolyMessage(msg, 'result'), (e: unknown) => e instanceof ProtocolError && e.code === code && (!text || text.test(e.message)));
  }

  test('tampered, truncated, foreign or mis-levelled ciphertexts get a clear error, never a result', async () => {
    const ring = (client as unknown as { keyring: CkksKeyring }).keyring;
    const ctx = (client as unknown as { context: CkksContext }).context;
    assertError(await inferWith((b) => (b[35] = b[35]!.subarray(0, b[35]!.length - 100))), 'ERR_FORMAT', /truncated/);
    assertError(await inferWith((b) => {
      const t = Uint8Array.from(b[3]!);
      t.fill(0xff, 60, 80); // inside SEAL's header: sizes and compression mode
      b[3] = t;
    }), 'ERR_FORMAT');
    assertError(await inferWith((b) => (b[0] = new Uint8Array(10))), 'ERR_FORMAT');
    const stranger = CkksKeyring.generate(ctx);
    assertError(await inferWith((b) => (b[5] = stranger.encryptSeeded([1], net.inputScale))), 'ERR_KEY_MISMATCH');
    stranger.dispose();
    assertError(await inferWith((b) => (b[6] = ring.encryptSeeded([1], net.inputScale * 2))), 'ERR_INVALID_CIPHERTEXT', /scale/);
    assertError(await inferWith((b) => {
      const ct = ring.encrypt([1], net.inputScale);
      modSwitchInPlace(ct, ct.levelPrimes - 1);
      b[7] = ct.save();
      ct.free();
    }), 'ERR_INVALID_CIPHERTEXT', /level/);
    const otherParams = await CkksContext.create({ ...net.params, coeffModulusBits: [40, 40, 40, 60] });
    const otherRing = CkksKeyring.generate(otherParams);
    assertError(await inferWith((b) => (b[8] = otherRing.encryptSeeded([1], net.inputScale))), 'ERR_KEY_MISMATCH', /parameters/);
    otherRing.dispose();
    otherParams.dispose();
  });

  test('messages out of order, for unknown sessions or with the wrong number of objects are refused', async () => {
    const send = async (msg: PolyMessage) => decodePolyMessage(await service.handle(encodePolyMessage(msg)));
    assertError(await send({ type: 'infer', session: 'nope', count: 1, blobs: [] }), 'ERR_UNKNOWN_SESSION');
    assertError(await send({ type: 'info', model: 'other', blobs: [] }), 'ERR_UNKNOWN_MODEL');
    assertError(await send({ type: 'keys', model: 'small', blobs: [new Uint8Array(3)] }), 'ERR_BAD_MESSAGE');
    assertError(await send({ type: 'result', session: 'x', count: 1, blobs: [] }), 'ERR_BAD_MESSAGE');
    assertError(await inferWith((b) => b.pop()), 'ERR_BAD_MESSAGE', /36 objects/);
    assertError(decodePolyMessage(await service.handle(new Uint8Array([1, 2, 3]))), 'ERR_BAD_MESSAGE');
  });

  test('keys for other parameters, from two different key pairs, or tampered are refused', async () => {
    const send = async (msg: PolyMessage) => decodePolyMessage(await service.handle(encodePolyMessage(msg)));
    const ctx = (client as unknown as { context: CkksContext }).context;
    const a = CkksKeyring.generate(ctx);
    const b = CkksKeyring.generate(ctx);
    const pa = a.exportPublic({ relin: true });
    const pb = b.exportPublic({ relin: true });
    assertError(await send({ type: 'keys', model: 'small', blobs: [pa.publicKey, pb.relinKeys!] }), 'ERR_KEY_MISMATCH');
    const tampered = Uint8Array.from(pa.relinKeys!);
    tampered.fill(0x7f, 80, 120);
    const bad = await send({ type: 'keys', model: 'small', blobs: [pa.publicKey, tampered] });
    assert.equal(bad.type, 'error');
    assertError(await send({ type: 'keys', model: 'small', blobs: [pa.publicKey.subarray(0, 1000), pa.relinKeys!] }), 'ERR_FORMAT');
    const otherParams = await CkksContext.create({ ...net.params, coeffModulusBits: [40, 40, 40, 60] });
    const c = CkksKeyring.generate(otherParams);
    const pc = c.exportPublic({ relin: true });
    assertError(await send({ type: 'keys', model: 'small', blobs: [pc.publicKey, pc.relinKeys!] }), 'ERR_KEY_MISMATCH', /parameters/);
    for (const k of [a, b, c]) k.dispose();
    otherParams.dispose();
  });

  test('junk messages: truncated, wrong version, bad header, trailing bytes', () => {
    const good = encodePolyMessage({ type: 'infer', session: 's1', count: 2, blobs: [Uint8Array.of(1, 2), new Uint8Array(0)] });
    const back = decodePolyMessage(good);
    assert.equal(back.type, 'infer');
    assert.deepEqual(back.blobs.map((b) => Array.from(b)), [[1, 2], []]);
    const bad = (bytes: Uint8Array) => assert.throws(() => decodePolyMessage(bytes), (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_BAD_MESSAGE');
    for (let cut = 0; cut < good.length; cut += 3) bad(good.subarray(0, cut));
    const version = Uint8Array.from(good);
    version[4] = 2;
    bad(version);
    bad(Uint8Array.from([...good, 0]));
    bad(encodePolyMessage({ type: 'infer', session: 'bad session id!', count: 1, blobs: [] } as never));
    bad(encodePolyMessage({ type: 'nonsense', blobs: [] } as never));
    assert.throws(() => decodePolyMessage(good, 10), ProtocolError);
  });

  test('repeated failures late in an evaluation free every ciphertext, and WASM memory stays flat', async () => {
    // Failing at the last input means every accumulator of the first stage (48) exists when it throws.
    const failOnce = async () => assertError(await inferWith((b) => (b[35] = b[35]!.subarray(0, 50))), 'ERR_FORMAT');
    for (let i = 0; i < 3; i++) await failOnce();
    const live = CkksCiphertext.liveCount;
    assert.ok(wasmMemory, 'the WebAssembly memory was found');
    const before = wasmMemory.buffer.byteLength;
    for (let i = 0; i < 15; i++) {
      await failOnce();
      assert.equal(CkksCiphertext.liveCount, live, `failure ${i} left ciphertexts allocated`);
    }
    // WebAssembly memory only grows; leaking the 48 accumulators (393 KB each) would add 19 MB per failure.
    const grown = wasmMemory.buffer.byteLength - before;
    assert.ok(grown <= 2 ** 20, `WebAssembly memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB over 15 failures`);
  });
});

describe('ckks-poly on worker threads', async () => {
  const model = smallModel();
  const net = compilePolyNetwork(model, images(64, 1));
  const pool = new CkksPolyWorkerPool({ threads: 2 });
  const service = new CkksPolyService({ evaluator: pool });
  service.register('small', net, model.inputShape);
  const client = await CkksPolyClient.connect({ send: (bytes) => service.handle(bytes) }, 'small');
  after(async () => {
    client.dispose();
    await service.dispose();
    await pool.destroy();
  });

  test('two batches evaluated side by side agree with the plaintext model, in order', async () => {
    const n = client.slots + 37;
    const x = images(n, 11);
    const result = await client.predict(x, undefined, { concurrency: 2 });
    assert.equal(result.stats.batches, 2);
    const plain = runPlaintext(model, x);
    const labels = argmaxRows(plain, 4);
    let agree = 0;
    for (let i = 0; i < n; i++) if (result.labels[i] === labels[i]) agree++;
    assert.ok(agree / n > 0.995, `agreement ${agree}/${n}`);
    let worst = 0;
    for (let i = 0; i < plain.length; i++) worst = Math.max(worst, Math.abs(result.logits[i]! - plain[i]!));
    assert.ok(worst < 0.05, `logit error ${worst}`);
  });

  test('a worker answers a tampered request with an error message', async () => {
    const ring = (client as unknown as { keyring: CkksKeyring }).keyring;
    const session = (client as unknown as { session: string }).session;
    const blobs = Array.from({ length: 36 }, () => ring.encryptSeeded([0.5], net.inputScale));
    blobs[20] = blobs[20]!.subarray(0, 99);
    const reply = decodePolyMessage(await service.handle(encodePolyMessage({ type: 'infer', session, count: 1, blobs })));
    assert.equal(reply.type, 'error');
    assert.throws(() => expectPolyMessage(reply, 'result'), (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_FORMAT');
  });
});
