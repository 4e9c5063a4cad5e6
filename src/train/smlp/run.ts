/**
 * One Secure MLP run with all three parties in one process: the user (encrypts its standardised
 * data, labels and initial weights under S2's public key, and later decrypts predictions under its
 * own key), S1 (stores the ciphertexts and trains) and S2 (the crypto server). The plaintext twin
 * runs beside it with the same fixed-point arithmetic. After every completed epoch the state is
 * handed to a checkpoint sink, so a run that loses S2 can resume from the last completed epoch.
 *
 * @module
 */
import { generateKeyPair, PaillierPrivateKey, PaillierPublicKey, type PaillierKeyPair } from '../../schemes/paillier/keys.js';
import { PaillierCiphertext } from '../../schemes/paillier/ciphertext.js';
import { ComputeServer, type EncMatrix } from '../../protocol/two-server/compute-server.js';
import { LocalTwoServerCompute, type TwoServerCompute } from '../../protocol/two-server/compute.js';
import { CryptoServer } from '../../protocol/two-server/crypto-server.js';
import { InProcessTransport, MeteredTransport, type TwoServerTransport } from '../../protocol/two-server/transport.js';
import { ShapeError } from '../../errors.js';
import { baseBits, DEFAULT_SMLP, epochBatches, type SmlpConfig } from './config.js';
import { epochOrder, fixedFeatures, fixedTargets, initialWeights, type FixedWeights } from './model.js';
import { SecureMlpTrainer } from './trainer.js';
import { SmlpTwin } from './twin.js';

/** Standardised binary data (see `blindml/data` breast-cancer loader). */
export interface SmlpData {
  readonly count: number;
  readonly features: number;
  readonly x: Float64Array;
  readonly y: Uint8Array;
}

/** Per-epoch measurements. */
export interface SmlpEpochStats {
  readonly epoch: number;
  readonly seconds: number;
  /** S1↔S2 bytes in this epoch. */
  readonly bytes: number;
  readonly rounds: number;
}

/** Everything needed to resume after the last completed epoch. */
export interface SmlpCheckpoint {
  readonly version: 1;
  readonly config: SmlpConfig;
  readonly epochsPlanned: number;
  readonly epochsDone: number;
  /** S2's key (S2's own state; in a deployment it never leaves S2). */
  readonly cryptoKey: { n: bigint; p: bigint; q: bigint };
  /** The user's result key (the user's own state). */
  readonly userKey: { n: bigint; p: bigint; q: bigint };
  /** S1's state: encrypted training features, targets, test features, weights. */
  readonly trainX: bigint[];
  readonly trainT: bigint[];
  readonly testX: bigint[];
  readonly w1: bigint[];
  readonly w2: bigint[];
  /** The twin's weights. */
  readonly twin: FixedWeights;
  readonly epochs: SmlpEpochStats[];
  readonly uploadBytes: number;
}

/** Where checkpoints go (the CLI writes files atomically). */
export interface CheckpointSink {
  load(): SmlpCheckpoint | undefined;
  save(c: SmlpCheckpoint): void;
}

/** Options of {@link runSmlpTraining}. */
export interface SmlpRunOptions {
  readonly train: SmlpData;
  readonly test: SmlpData;
  readonly epochs: number;
  readonly config?: Partial<SmlpConfig>;
  /** Paillier modulus bits of both keys (default 2048; below needs `insecure`). */
  readonly keyBits?: number;
  readonly insecure?: boolean;
  /** Bulk arithmetic (default: the calling thread). */
  readonly compute?: TwoServerCompute;
  /** Longest wait for S2, ms. */
  readonly timeoutMs?: number;
  /** Wraps S1's channel to S2 (tests use it to make S2 stop answering). */
  readonly wrapTransport?: (t: TwoServerTransport) => TwoServerTransport;
  readonly checkpoint?: CheckpointSink;
  /**
   * After training, S1 has S2 switch the encrypted weights to the user's key (one more round, on
   * masked values) and the user decrypts them: {@link SmlpResult.weights}.
   */
  readonly exportWeights?: boolean;
  readonly onProgress?: (done: number, total: number, label: string) => void;
  /** Called as each phase outside the training steps starts (key generation, upload, evaluation). */
  readonly onPhase?: (phase: string) => void;
}

/** Results (the CLI prints this object with --json). */
export interface SmlpResult {
  readonly scheme: 'smlp';
  readonly dataset: string;
  readonly architecture: string;
  readonly samples: number;
  readonly testSamples: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly keyBits: number;
  /** Test accuracy of the encrypted model, from the predictions the user decrypted. */
  readonly accuracy: number;
  readonly plaintextAccuracy: number;
  /** Fraction of test samples where the two models predict the same class. */
  readonly agreement: number;
  /** Wall time of this process's run: setup, training, evaluation. */
  readonly seconds: number;
  readonly setupSeconds: number;
  readonly evaluationSeconds: number;
  /** Traffic between all parties: the user's upload, S1↔S2, the user's download of predictions. */
  readonly bytes: number;
  readonly uploadBytes: number;
  readonly rounds: number;
  readonly perEpoch: SmlpEpochStats[];
  readonly resumedFromEpoch: number;
  /** With `exportWeights`: the trained weights, decrypted by the user. */
  readonly weights?: SmlpPlainWeights;
}

/** Fixed-point weights at scale 2^f as numbers: W1 (hidden × (features + 1), bias last) and w2 (hidden + 1, bias last). */
export interface SmlpPlainWeights {
  readonly w1: readonly number[];
  readonly w2: readonly number[];
}

function keyFrom(k: { n: bigint; p: bigint; q: bigint }, insecure: boolean): PaillierKeyPair {
  const publicKey = new PaillierPublicKey(k.n, { insecure });
  return { publicKey, privateKey: new PaillierPrivateKey(publicKey, k.p, k.q, { checkPrimes: false }) };
}

const ctBytes = (key: PaillierPublicKey): number => Math.ceil(key.nSquared.toString(2).length / 8);

/**
 * Trains the Secure MLP and its twin, then classifies the test set under encryption.
 *
 * @throws ShapeError for records of the wrong width; CryptoServerUnavailableError if S2 stops
 *   answering (the last completed epoch is in the checkpoint); KeyMismatchError for ciphertexts
 *   under another key; InvalidKeyError for small keys without `insecure`.
 */
export async function runSmlpTraining(options: SmlpRunOptions): Promise<SmlpResult> {
  const started = performance.now();
  const c: SmlpConfig = { ...DEFAULT_SMLP, ...options.config };
  const { train, test } = options;
  for (const [name, d] of [['training', train], ['test', test]] as const) {
    if (d.x.length !== d.count * d.features || d.y.length !== d.count) throw new ShapeError(`${name} data: ${d.count} records do not match ${d.x.length} feature values and ${d.y.length} labels`);
    if (d.features !== train.features) throw new ShapeError(`${name} records have ${d.features} features, the model expects ${train.features}`);
  }
  const insecure = options.insecure ?? false;
  const compute = options.compute ?? new LocalTwoServerCompute();
  const cols = train.features + 1;
  const f = c.fracBits;
  const bits = baseBits(c);

  const resumed = options.checkpoint?.load();
  if (resumed && (resumed.trainX.length !== train.count * cols || resumed.testX.length !== test.count * cols)) {
    throw new ShapeError('the checkpoint was made for data of another size or width');
  }
  if (!resumed) options.onPhase?.(`generating two ${options.keyBits ?? 2048}-bit Paillier keys (crypto server, user)`);
  const crypto = resumed ? keyFrom(resumed.cryptoKey, insecure) : generateKeyPair({ bits: options.keyBits ?? 2048, insecure });
  const user = resumed ? keyFrom(resumed.userKey, insecure) : generateKeyPair({ bits: options.keyBits ?? 2048, insecure });
  const pk = crypto.publicKey;

  // The user: fixed-point data and initial weights, encrypted under S2's key and uploaded once.
  const xTrain = fixedFeatures(train.x, train.count, train.features, f);
  const tTrain = fixedTargets(train.y, f);
  const xTest = fixedFeatures(test.x, test.count, test.features, f);
  const init = initialWeights(c, train.features);
  let uploadBytes = resumed?.uploadBytes ?? 0;
  let state: { trainX: bigint[]; trainT: bigint[]; testX: bigint[]; w1: bigint[]; w2: bigint[] };
  if (resumed) {
    state = { trainX: resumed.trainX, trainT: resumed.trainT, testX: resumed.testX, w1: resumed.w1, w2: resumed.w2 };
  } else {
    options.onPhase?.('encrypting the training data');
    const all = await compute.encrypt(pk, [...xTrain, ...tTrain, ...xTest, ...init.w1, ...init.w2]);
    let at = 0;
    const take = (k: number): bigint[] => all.slice(at, (at += k));
    state = { trainX: take(xTrain.length), trainT: take(tTrain.length), testX: take(xTest.length), w1: take(init.w1.length), w2: take(init.w2.length) };
    uploadBytes = all.length * ctBytes(pk);
  }
  const twin = new SmlpTwin(c, resumed?.twin ?? init, cols);

  // S2 and S1.
  const s2 = new CryptoServer(crypto.privateKey, { compute, insecure, switchTargets: [user.publicKey] });
  const inner = new InProcessTransport(s2);
  const transport = new MeteredTransport(options.wrapTransport ? options.wrapTransport(inner) : inner, { timeoutMs: options.timeoutMs ?? 120_000 });
  const s1 = new ComputeServer(pk, transport, compute);
  const accept = (values: bigint[]): bigint[] => s1.accept(values.map((v) => new PaillierCiphertext(pk, v)));
  const trainX: EncMatrix = { rows: train.count, cols, bits: bits.x, cts: accept(state.trainX) };
  const testX: EncMatrix = { rows: test.count, cols, bits: bits.x, cts: accept(state.testX) };
  options.onPhase?.('storing the training data at the crypto server');
  const storedTrain = await s1.store(trainX, 'train');
  const targets = accept(state.trainT);
  const one = pk.encryptRaw(1n << BigInt(f));
  const trainer = new SecureMlpTrainer(s1, c, {
    w1: { rows: c.hidden, cols, bits: bits.w, cts: accept(state.w1) },
    w2: { rows: 1, cols: c.hidden + 1, bits: bits.w, cts: accept(state.w2) },
  }, one);
  const setupSeconds = (performance.now() - started) / 1000;

  const batchSize = 2 ** c.batchLog2;
  const perEpoch: SmlpEpochStats[] = [...(resumed?.epochs ?? [])];
  const firstEpoch = resumed?.epochsDone ?? 0;
  const batchesPerEpoch = Math.ceil(train.count / batchSize);
  const totalSteps = options.epochs * batchesPerEpoch + 1;
  for (let epoch = firstEpoch; epoch < options.epochs; epoch++) {
    const t0 = performance.now();
    const before = transport.snapshot();
    const batches = epochBatches(train.count, batchSize, epochOrder(c, train.count, epoch));
    for (let b = 0; b < batches.length; b++) {
      await trainer.step(storedTrain, targets, batches[b]!);
      options.onProgress?.(epoch * batchesPerEpoch + b + 1, totalSteps, `epoch ${epoch + 1}/${options.epochs}`);
    }
    for (const batch of batches) twin.step(xTrain, tTrain, batch);
    const after = transport.snapshot();
    perEpoch.push({ epoch: epoch + 1, seconds: (performance.now() - t0) / 1000, bytes: after.bytes - before.bytes, rounds: after.rounds - before.rounds });
    const w = trainer.weights;
    options.checkpoint?.save({
      version: 1, config: c, epochsPlanned: options.epochs, epochsDone: epoch + 1,
      cryptoKey: { n: pk.n, p: crypto.privateKey.p, q: crypto.privateKey.q },
      userKey: { n: user.publicKey.n, p: user.privateKey.p, q: user.privateKey.q },
      trainX: state.trainX, trainT: state.trainT, testX: state.testX, w1: [...w.w1.cts], w2: [...w.w2.cts],
      twin: twin.current, epochs: perEpoch, uploadBytes,
    });
  }

  // Classification of the encrypted test samples: S1 computes Enc(z2), S2 switches it to the
  // user's key on masked values, only the user decrypts.
  options.onPhase?.('classifying the encrypted test set');
  const e0 = performance.now();
  const forUser = test.count === 0 ? [] : await trainer.classify(testX, user.publicKey);
  const downloadBytes = forUser.length * ctBytes(user.publicKey);
  const predicted = forUser.map((ct) => (user.privateKey.decryptSigned(ct) > 0n ? 1 : 0));
  const twinPredicted = twin.predict(xTest, test.count);
  const weights = options.exportWeights ? await decryptedWeights(trainer, user) : undefined;
  const evaluationSeconds = (performance.now() - e0) / 1000;
  const after = transport.snapshot();
  // Traffic of epochs done before a resume was counted by the process that ran them.
  const earlier = perEpoch.slice(0, firstEpoch);
  let correct = 0;
  let twinCorrect = 0;
  let agree = 0;
  for (let i = 0; i < test.count; i++) {
    correct += +(predicted[i] === test.y[i]);
    twinCorrect += +(twinPredicted[i] === test.y[i]);
    agree += +(predicted[i] === twinPredicted[i]);
  }
  return {
    scheme: 'smlp', dataset: 'breast-cancer', architecture: `${train.features}-${c.hidden}-1 ReLU, squared error`,
    samples: train.count, testSamples: test.count, epochs: options.epochs, batchSize, keyBits: pk.bits,
    accuracy: correct / Math.max(1, test.count), plaintextAccuracy: twinCorrect / Math.max(1, test.count), agreement: agree / Math.max(1, test.count),
    seconds: (performance.now() - started) / 1000, setupSeconds, evaluationSeconds,
    bytes: uploadBytes + after.bytes + earlier.reduce((s, e) => s + e.bytes, 0) + downloadBytes, uploadBytes, rounds: after.rounds + earlier.reduce((s, e) => s + e.rounds, 0),
    perEpoch, resumedFromEpoch: firstEpoch,
    ...(weights ? { weights } : {}),
  };
}

/** The user's copy of the trained weights: switched to its key by the servers, decrypted by it. */
async function decryptedWeights(trainer: SecureMlpTrainer, user: PaillierKeyPair): Promise<SmlpPlainWeights> {
  const { w1, w2 } = trainer.weights;
  const cts = await trainer.switchWeights(user.publicKey);
  const values = cts.map((ct) => Number(user.privateKey.decryptSigned(ct)));
  return { w1: values.slice(0, w1.cts.length), w2: values.slice(w1.cts.length, w1.cts.length + w2.cts.length) };
}
