/**
 * One collaborative training run (`blindml train --scheme multikey`): P data providers with their
 * own keys (Paillier, and every `ckksEvery`-th one CKKS) upload encrypted records once; the
 * service converts them to the training key with the blinded key switch; the service and the
 * crypto server split them into shares and train the MSCryptoNet MLP; a plaintext twin runs the
 * same fixed-point program on the same batches. Both models are scored (R²) on the held-out split.
 *
 * All parties run in this process and talk through counting channels that encode every message as
 * it would travel, so `bytes` and `rounds` are wire figures. After every epoch both servers write
 * a checkpoint of their own shares; a run with `resume` starts after the last epoch both have.
 *
 * @module
 */
import type { DiabetesSplit } from '../../data/diabetes.js';
import { seededPermutation } from '../../data/diabetes.js';
import { chooseParameters, CkksContext, CkksKeyring } from '../../schemes/ckks/index.js';
import { generateKeyPair, type PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { LocalPaillierCompute, type PaillierCompute } from '../../protocol/multikey/compute.js';
import { CryptoServer, type CheckpointStore } from '../../protocol/multikey/crypto-server.js';
import { PlainEngine, type TrainingEngine } from '../../protocol/multikey/engine.js';
import { KeySwitchService, shareConverted, type ConvertedRecords } from '../../protocol/multikey/key-switch.js';
import { encodeMessage } from '../../protocol/multikey/codec.js';
import { CkksDataProvider, PaillierDataProvider } from '../../protocol/multikey/providers.js';
import type { RingMatrix } from '../../protocol/multikey/program.js';
import { encodeFixed, reduce } from '../../protocol/multikey/ring.js';
import { ServiceEngine } from '../../protocol/multikey/service-engine.js';
import { deserializeStore, serializeStore } from '../../protocol/multikey/state.js';
import { LocalChannel, PeerUnavailableError, type TrafficCounter } from '../../protocol/multikey/transport.js';
import { batchIds, decodeWeights, encodeWeights, epochLearningRate, initialWeights, DEFAULT_MULTIKEY_MLP, PARAM_IDS, predict, r2Score, sgdStep, type MlpWeights, type MultikeyMlpConfig } from './mlp.js';
import { assignProviders } from '../../data/diabetes.js';

/** Options of {@link runMultikeyTraining}. */
export interface MultikeyTrainOptions {
  readonly split: DiabetesSplit;
  readonly providers: number;
  readonly epochs: number;
  /** Paillier modulus bits of every key (default 2048). Below 2048 needs `insecure`. */
  readonly keyBits?: number;
  readonly insecure?: boolean;
  /** Every k-th provider uses CKKS (default 5; 0: all Paillier). */
  readonly ckksEvery?: number;
  /** Default: {@link DEFAULT_MULTIKEY_MLP}. */
  readonly config?: MultikeyMlpConfig;
  /** Seed of the initial weights and the batch order (public). */
  readonly seed?: number;
  /** Where bulk Paillier work runs (a worker pool), default the calling thread. */
  readonly compute?: PaillierCompute;
  /** Per-party checkpoints after every epoch. */
  readonly checkpoints?: CheckpointStore;
  /** Start after the last epoch both servers checkpointed. */
  readonly resume?: boolean;
  /** Milliseconds to wait for the crypto server (default: no limit). */
  readonly cryptoTimeoutMs?: number;
  /** Test hook: the crypto server stops answering after this many requests. */
  readonly cryptoFailAfter?: number;
  readonly onProgress?: (done: number, total: number, label: string) => void;
  /** Called as each phase outside the counted steps starts (the twin, key generation). */
  readonly onPhase?: (phase: string) => void;
}

/** Per-epoch figures of the encrypted run. */
export interface EpochReport {
  readonly epoch: number;
  readonly seconds: number;
  /** CPU seconds of both servers (all threads of this process; independent of other load). */
  readonly cpuSeconds: number;
  readonly bytes: number;
  readonly rounds: number;
  readonly plaintextR2: number;
}

/** What `--json` prints. */
export interface MultikeyTrainResult {
  readonly scheme: 'multikey';
  readonly dataset: 'diabetes';
  readonly providers: number;
  readonly paillierProviders: number;
  readonly ckksProviders: number;
  readonly trainRecords: number;
  readonly testRecords: number;
  readonly epochs: number;
  readonly resumedFromEpoch: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly fracBits: number;
  readonly keyBits: number;
  /** R² on the held-out split: encrypted run and plaintext twin. */
  readonly r2: number;
  readonly plaintextR2: number;
  /** Encrypted run, all parties, wall time (keys, uploads, key switch, training, reveal). */
  readonly seconds: number;
  readonly plaintextSeconds: number;
  /** CPU seconds of the encrypted run, all parties and threads. */
  readonly cpuSeconds: number;
  /** Traffic between all parties (providers, service, crypto server), both directions. */
  readonly bytes: number;
  readonly rounds: number;
  readonly keySwitch: { readonly seconds: number; readonly bytes: number; readonly rounds: number };
  readonly perEpoch: readonly EpochReport[];
  /** The trained model (decoded from the two servers' shares). */
  readonly weights: { readonly W1: number[]; readonly b1: number[]; readonly W2: number[]; readonly b2: number[] };
}

const WIDTH_EXTRA = 1;

interface Batches {
  readonly members: number[][];
}

function makeBatches(count: number, batchSize: number, seed: number): Batches {
  const order = seededPermutation(count, seed);
  const members: number[][] = [];
  for (let s = 0; s < count; s += batchSize) members.push(order.slice(s, s + batchSize));
  return { members };
}

function epochOrder(batches: number, seed: number, epoch: number): number[] {
  return seededPermutation(batches, (seed * 7919 + epoch) >>> 0);
}

function setBatchesPlain(engine: PlainEngine, split: DiabetesSplit, batches: Batches, config: MultikeyMlpConfig): void {
  batches.members.forEach((idx, b) => {
    const { x, y } = batchIds(b);
    const X: RingMatrix = { rows: config.inputs, cols: idx.length, data: new Array<bigint>(config.inputs * idx.length) };
    idx.forEach((r, c) => {
      for (let f = 0; f < config.inputs; f++) X.data[f * idx.length + c] = encodeFixed(split.train.features[r]![f]!, config.fracBits);
    });
    engine.set(x, X);
    engine.set(y, { rows: 1, cols: idx.length, data: idx.map((r) => encodeFixed(split.train.targets[r]!, config.fracBits)) });
  });
}

function paramsOf(store: Map<string, RingMatrix>): Record<(typeof PARAM_IDS)[number], RingMatrix> {
  const get = (id: string) => {
    const t = store.get(id);
    if (!t) throw new Error(`missing parameter ${id}`);
    return t;
  };
  return { W1: get('W1'), b1: get('b1'), W2: get('W2'), b2: get('b2') };
}

async function trainEpoch(engine: TrainingEngine, config: MultikeyMlpConfig, batches: Batches, seed: number, epoch: number, tick: () => void): Promise<void> {
  const scheduled = { ...config, learningRate: epochLearningRate(config, epoch) };
  for (const b of epochOrder(batches.members.length, seed, epoch)) {
    await sgdStep(engine, scheduled, b, batches.members[b]!.length);
    tick();
  }
}

function now(): number {
  return globalThis.performance.now();
}

/** CPU seconds of the whole process, worker threads included (Node; 0 elsewhere). */
function cpuSeconds(): number {
  const proc = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process;
  const u = proc?.cpuUsage?.();
  return u ? (u.user + u.system) / 1e6 : 0;
}

/** The plaintext twin: same batches, order, initial weights and fixed-point program. */
export async function runTwin(options: MultikeyTrainOptions, config: MultikeyMlpConfig, batches: Batches, seed: number): Promise<{ weights: MlpWeights; perEpochR2: number[]; seconds: number }> {
  const t0 = now();
  const engine = new PlainEngine();
  for (const [id, m] of Object.entries(encodeWeights(initialWeights(config, seed), config))) engine.set(id, m);
  setBatchesPlain(engine, options.split, batches, config);
  const perEpochR2: number[] = [];
  let weights = decodeWeights(paramsOf(engine.store), config);
  for (let e = 1; e <= options.epochs; e++) {
    await trainEpoch(engine, config, batches, seed, e, () => {});
    weights = decodeWeights(paramsOf(engine.store), config);
    perEpochR2.push(r2Score(predict(weights, options.split.test.features, config), options.split.test.targets));
  }
  return { weights, perEpochR2, seconds: (now() - t0) / 1000 };
}

/** The latest epoch both servers have a checkpoint for, or 0. */
async function latestCheckpoint(store: CheckpointStore, epochs: number): Promise<number> {
  for (let e = epochs; e >= 1; e--) {
    if ((await store.load('service', e)) !== undefined && (await store.load('crypto-server', e)) !== undefined) return e;
  }
  return 0;
}

interface Providers {
  readonly converted: ConvertedRecords[];
  readonly paillier: number;
  readonly ckks: number;
}

/** Providers make keys, upload once, and take part in the key switch. */
async function providersAndKeySwitch(options: MultikeyTrainOptions, config: MultikeyMlpConfig, trainingKey: PaillierPublicKey, counter: TrafficCounter, tick: (label: string) => void): Promise<Providers> {
  const { split } = options;
  const width = config.inputs + WIDTH_EXTRA;
  const parts = assignProviders(split.train.targets.length, options.providers);
  const every = options.ckksEvery ?? 5;
  const ckksNeeded = every > 0 && parts.some((_, p) => p % every === every - 1);
  const ckksContext = ckksNeeded ? await CkksContext.create(chooseParameters({ depth: 0, scaleBits: 30, headroomBits: 30 })) : undefined;
  const service = new KeySwitchService(trainingKey, width, config.fracBits);
  const keyBits = options.keyBits ?? 2048;
  const providers: (PaillierDataProvider | CkksDataProvider)[] = [];
  const keyrings: CkksKeyring[] = [];
  try {
    parts.forEach((rows, p) => {
      const id = `provider-${p + 1}`;
      const records = rows.map((r) => Float64Array.from([...split.train.features[r]!, split.train.targets[r]!]));
      if (ckksContext && p % every === every - 1) {
        const keyring = CkksKeyring.generate(ckksContext);
        keyrings.push(keyring);
        const provider = new CkksDataProvider(id, keyring, records, config.fracBits);
        service.registerCkks(id, provider.keyId, ckksContext);
        providers.push(provider);
      } else {
        const provider = new PaillierDataProvider(id, generateKeyPair({ bits: keyBits, insecure: options.insecure ?? false }), records, config.fracBits);
        service.registerPaillier(id, provider.publicKey);
        providers.push(provider);
      }
    });
    for (const provider of providers) {
      const upload = encodeMessage(provider.upload());
      counter.bytes += new TextEncoder().encode(upload).length;
      counter.rounds++;
      service.accept(JSON.parse(upload));
    }
    const converted: ConvertedRecords[] = [];
    for (const provider of providers) {
      const channel = new LocalChannel(async (m) => provider.answerSwitch(m, trainingKey), { peer: provider.id, counter });
      converted.push(await service.switchProvider(provider.id, channel));
      tick(`key switch ${provider.id}`);
    }
    return { converted, paillier: providers.length - keyrings.length, ckks: keyrings.length };
  } finally {
    for (const k of keyrings) k.dispose();
    ckksContext?.dispose();
  }
}

/** Both servers build the batch tensors from the providers' record tensors and drop the latter. */
function gatherBatches(engine: ServiceEngine, recordIds: readonly string[], providerRows: readonly number[][], batches: Batches, config: MultikeyMlpConfig): void {
  const where: { a: string; r: number }[] = [];
  providerRows.forEach((rows, p) => rows.forEach((_, r) => where.push({ a: recordIds[p]!, r })));
  batches.members.forEach((idx, b) => {
    const { x, y } = batchIds(b);
    const rows = idx.map((i) => where[i]!);
    engine.run({ op: 'gather', out: `${x}.t`, rows, c0: 0, c1: config.inputs });
    engine.run({ op: 'transpose', out: x, a: `${x}.t` });
    engine.run({ op: 'gather', out: `${y}.t`, rows, c0: config.inputs, c1: config.inputs + 1 });
    engine.run({ op: 'transpose', out: y, a: `${y}.t` });
    engine.run({ op: 'free', ids: [`${x}.t`, `${y}.t`] });
  });
  engine.run({ op: 'free', ids: [...recordIds] });
}

/**
 * Runs the collaborative training and its plaintext twin.
 *
 * @throws PeerUnavailableError if the crypto server stops answering (the checkpoints of completed
 *   epochs remain; run again with `resume`); KeyMismatchError / ShapeError / FormatError for a bad
 *   upload or reply; InvalidKeyError for keys below 2048 bits without `insecure`.
 */
export async function runMultikeyTraining(options: MultikeyTrainOptions): Promise<MultikeyTrainResult> {
  const config = options.config ?? DEFAULT_MULTIKEY_MLP;
  const seed = options.seed ?? 1;
  const compute = options.compute ?? new LocalPaillierCompute();
  const n = options.split.train.targets.length;
  const batches = makeBatches(n, config.batchSize, seed);
  options.onPhase?.('training the plaintext twin');
  const twin = await runTwin(options, config, batches, seed);
  const keyBits = options.keyBits ?? 2048;

  const t0 = now();
  const c0 = cpuSeconds();
  const resumeFrom = options.resume && options.checkpoints ? await latestCheckpoint(options.checkpoints, options.epochs) : 0;
  const total = (resumeFrom > 0 ? 0 : options.providers) + (options.epochs - resumeFrom) * batches.members.length;
  let done = 0;
  const tick = (label: string) => options.onProgress?.(++done, total, label);

  options.onPhase?.(`generating the ${keyBits}-bit training key`);
  const training = generateKeyPair({ bits: keyBits, insecure: options.insecure ?? false });
  const crypto = new CryptoServer(training.privateKey, { compute, ...(options.checkpoints ? { checkpoints: options.checkpoints } : {}) });
  const trainCounter: TrafficCounter = { bytes: 0, rounds: 0 };
  const switchCounter: TrafficCounter = { bytes: 0, rounds: 0 };
  const channel = new LocalChannel((m) => crypto.handle(m), {
    peer: 'crypto server',
    counter: trainCounter,
    ...(options.cryptoTimeoutMs !== undefined ? { timeoutMs: options.cryptoTimeoutMs } : {}),
    ...(options.cryptoFailAfter !== undefined ? { failAfter: options.cryptoFailAfter } : {}),
  });
  const engine = new ServiceEngine(channel, training.publicKey, compute);

  let keySwitchSeconds = 0;
  let paillierProviders = 0;
  let ckksProviders = 0;
  if (resumeFrom > 0) {
    const text = await options.checkpoints!.load('service', resumeFrom);
    engine.store = deserializeStore(text!, resumeFrom);
    await engine.request({ type: 'restore', epoch: resumeFrom }, 'ack');
  } else {
    const ks0 = now();
    const got = await providersAndKeySwitch(options, config, training.publicKey, switchCounter, tick);
    paillierProviders = got.paillier;
    ckksProviders = got.ckks;
    const ids = await shareConverted(engine, compute, training.publicKey, got.converted);
    keySwitchSeconds = (now() - ks0) / 1000;
    const init = encodeWeights(initialWeights(config, seed), config);
    // The initial weights are public: the service's share is the value, the crypto server's zero.
    for (const [id, m] of Object.entries(init)) engine.store.set(id, m);
    await engine.request({ type: 'zeros', tensors: Object.values(init).map((m, i) => ({ id: PARAM_IDS[i]!, rows: m.rows, cols: m.cols })) }, 'ack');
    gatherBatches(engine, ids, assignProviders(n, options.providers), batches, config);
    await engine.sync();
  }

  const perEpoch: EpochReport[] = [];
  for (let e = resumeFrom + 1; e <= options.epochs; e++) {
    const e0 = now();
    const ec0 = cpuSeconds();
    const b0 = trainCounter.bytes;
    const r0 = trainCounter.rounds;
    try {
      await trainEpoch(engine, config, batches, seed, e, () => tick(`epoch ${e}/${options.epochs}`));
      await engine.sync();
    } catch (err) {
      if (err instanceof PeerUnavailableError) {
        const saved = options.checkpoints && e > 1 ? `; epoch ${e - 1} is checkpointed, resume from it` : '; no epoch was completed';
        throw new PeerUnavailableError(`${err.message} during epoch ${e}${saved}`);
      }
      throw err;
    }
    if (options.checkpoints) {
      // The crypto server first: a service checkpoint never exists without its partner.
      await engine.request({ type: 'checkpoint', epoch: e }, 'ack');
      await options.checkpoints.save('service', e, serializeStore(engine.store, e));
    }
    perEpoch.push({ epoch: e, seconds: (now() - e0) / 1000, cpuSeconds: cpuSeconds() - ec0, bytes: trainCounter.bytes - b0, rounds: trainCounter.rounds - r0, plaintextR2: twin.perEpochR2[e - 1]! });
  }

  // The model recipient combines the two servers' shares of the parameters.
  const shares = await engine.request({ type: 'reveal', ids: [...PARAM_IDS] }, 'shares');
  const own = paramsOf(engine.store);
  const combined = Object.fromEntries(
    shares.tensors.map((t) => {
      const mine = own[t.id as (typeof PARAM_IDS)[number]];
      return [t.id, { rows: t.rows, cols: t.cols, data: t.data.map((v, i) => reduce(BigInt(v) + mine.data[i]!)) }];
    }),
  ) as Record<(typeof PARAM_IDS)[number], RingMatrix>;
  const weights = decodeWeights(combined, config);
  const r2 = r2Score(predict(weights, options.split.test.features, config), options.split.test.targets);
  const seconds = (now() - t0) / 1000;
  return {
    scheme: 'multikey',
    dataset: 'diabetes',
    providers: options.providers,
    paillierProviders,
    ckksProviders,
    trainRecords: n,
    testRecords: options.split.test.targets.length,
    epochs: options.epochs,
    resumedFromEpoch: resumeFrom,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    fracBits: config.fracBits,
    keyBits,
    r2,
    plaintextR2: twin.perEpochR2[options.epochs - 1] ?? r2Score(predict(twin.weights, options.split.test.features, config), options.split.test.targets),
    seconds,
    plaintextSeconds: twin.seconds,
    cpuSeconds: cpuSeconds() - c0,
    bytes: trainCounter.bytes + switchCounter.bytes,
    rounds: trainCounter.rounds + switchCounter.rounds,
    keySwitch: { seconds: keySwitchSeconds, bytes: switchCounter.bytes, rounds: switchCounter.rounds },
    perEpoch,
    weights: { W1: [...weights.W1], b1: [...weights.b1], W2: [...weights.W2], b2: [...weights.b2] },
  };
}
