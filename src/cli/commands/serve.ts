/**
 * `blindml serve`: the blindml service (model registry, encrypted inference sessions, metrics,
 * browser pages), and `blindml models add|list|rm`: a model owner's calls to it.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { listModels, registerModel, removeModel, type ModelInfo } from '../../client/owner.js';
import { startServer } from '../../server/app.js';
import { UsageError } from '../usage-error.js';
import { deprecatedAlias, nonNegativeInt, positiveInt, threadsOption } from '../options.js';
import { withModelLabels } from '../../data/onnx-labels.js';
import { labelsArgument, readModelFile } from './model.js';
import { uploadParts } from '../model-file.js';
import { assertDbPath, assertPortFree, ownerKey, portNumber, readOptionFile, trustProxyOption } from './serve-options.js';

interface ServeOptions {
  port: number;
  host: string;
  db: string;
  apiKey?: string;
  threads?: number;
  apiKeyFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  trustProxy?: number | string[];
  allowOrigin: string[];
  idleTimeout: number;
  maxSessions: number;
  maxSessionsPerClient: number;
  opensPerMinute: number;
  maxFrameMb: number;
  maxCkksMb: number;
  ckksPrepared: number;
  maxMemoryMb: number;
  minKeyBits: number;
  maxKeyBits: number;
  insecure?: boolean;
  logLevel: string;
  model: string[];
  drainTimeout: number;
  replicaName?: string;
  redis?: string;
  maxJobs: number;
  maxJobsPerClient: number;
}

export function registerServeCommands(program: Command): void {
  const serve = program
    .command('serve')
    .description('run the blindml service: model registry, encrypted inference over WebSocket and HTTP, /metrics, browser demo at /')
    .option('--port <n>', 'port (0 picks a free one)', portNumber, 8080)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--db <file|url>', 'registry: a SQLite file (model files go beside it), or postgres://user@host:5432/db shared by replicas', './blindml.db')
    .option('--api-key-file <file>', 'file holding the model owner key (default: $BLINDML_API_KEY, else the stored one, else a new one printed once)')
    .option('--api-key <key>', 'the model owner key on the command line (visible to other users in ps: prefer --api-key-file or $BLINDML_API_KEY)')
    .addOption(threadsOption())
    .option('--tls-cert <file>', 'PEM certificate chain: serve HTTPS and WSS (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--trust-proxy <hops|addresses>', 'proxies in front that name the client in X-Forwarded-For: a hop count (1) or addresses (loopback,10.0.0.0/8); per-address limits then use the real client', trustProxyOption)
    .option('--allow-origin <origin>', 'a browser origin (https://host[:port]) allowed to call the API and open WebSockets; repeat for more', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--idle-timeout <s>', 'drop sessions idle this many seconds', positiveInt, 60)
    .option('--max-sessions <n>', 'open sessions, all clients together', positiveInt, 64)
    .option('--max-sessions-per-client <n>', 'open sessions per client address', positiveInt, 8)
    .option('--opens-per-minute <n>', 'sessions a client address may open per minute', positiveInt, 120)
    .option('--max-frame-mb <n>', 'largest protocol message, MiB', positiveInt, 32)
    .option('--max-ckks-mb <n>', 'largest CKKS request, MiB (a reference-CNN round uploads about 80)', positiveInt, 256)
    .option('--ckks-prepared <n>', 'CKKS sessions kept prepared per model between requests (about 350 MiB each for the reference CNN; 0 = none)', nonNegativeInt, 1)
    .option('--max-memory-mb <n>', 'memory for what clients make the service hold, MiB: client keys, sessions and prepared work are dropped or refused beyond it (the models, and one copy of each CKKS model per session thread, come on top: see docs/deploy.md, Sizing)', positiveInt, 3072)
    .option('--min-key-bits <n>', 'smallest client Paillier modulus accepted, bits', positiveInt, 2048)
    .option('--max-key-bits <n>', 'largest client Paillier modulus accepted, bits', positiveInt, 4096)
    .option('--insecure', 'accept client keys below 2048 bits (tests only)')
    .option('--redis <url>', 'redis://host:port: ckks-poly sessions and batch jobs go to Redis and `blindml worker` processes run them (BullMQ); default: in this process')
    .option('--max-jobs <n>', 'ckks-poly batch jobs running or holding results, all clients together (with --redis, across every replica)', positiveInt, 4)
    .option('--max-jobs-per-client <n>', 'ckks-poly batch jobs running or holding results per client address', positiveInt, 2)
    .option('--log-level <level>', 'pino log level (fatal, error, warn, info, debug, silent)', 'info')
    .option('--model <file>', 'register an .onnx or .blindml model at start, as `models add` would (a .blindml file brings its class names and calibration inputs; the service compiles the model itself); repeat for more', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--drain-timeout <s>', 'on SIGTERM/SIGINT: refuse new sessions (503, retryable) and let running ones finish this many seconds before closing', nonNegativeInt, 30)
    .option('--replica-name <name>', 'name of this replica behind a balancer: a replica label on every metric, and the blindml-replica header of routed answers (default <hostname>:<port>)')
    .action(async (o: ServeOptions) => {
      // Every option is checked before the registry is opened (which creates the database).
      if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
      const tls = o.tlsCert && o.tlsKey ? { cert: readOptionFile('--tls-cert', o.tlsCert), key: readOptionFile('--tls-key', o.tlsKey) } : undefined;
      const apiKey = ownerKey(o, (line) => process.stderr.write(`${line}\n`));
      assertDbPath(o.db);
      // Model files are read and verified before anything starts.
      const preload = o.model.map((file) => ({ file, ...uploadParts(readModelFile(file), file) }));
      await assertPortFree(o.host, o.port);
      const server = await startServer({
        port: o.port,
        host: o.host,
        db: o.db,
        ...(apiKey ? { apiKey } : {}),
        ...(o.threads !== undefined ? { workers: o.threads } : {}),
        idleTimeoutMs: o.idleTimeout * 1000,
        maxSessions: o.maxSessions,
        maxSessionsPerClient: o.maxSessionsPerClient,
        opensPerMinute: o.opensPerMinute,
        maxFrameBytes: o.maxFrameMb * 2 ** 20,
        maxCkksBodyBytes: o.maxCkksMb * 2 ** 20,
        ckksPreparedSessions: o.ckksPrepared,
        maxMemoryMb: o.maxMemoryMb,
        keyBits: { min: o.insecure && o.minKeyBits === 2048 ? 256 : o.minKeyBits, max: o.maxKeyBits },
        allowInsecureKeys: o.insecure ?? false,
        logger: { level: o.logLevel },
        shutdownGraceMs: o.drainTimeout * 1000,
        ...(o.replicaName ? { replicaName: o.replicaName } : {}),
        allowedOrigins: o.allowOrigin,
        ...(o.trustProxy !== undefined ? { trustProxy: o.trustProxy } : {}),
        ...(tls ? { tls } : {}),
        ...(o.redis ? { redis: o.redis } : {}),
        ckksPoly: { jobs: o.maxJobs, jobsPerClient: o.maxJobsPerClient },
      });
      if (server.generatedApiKey) {
        // Shown once: only its hash is stored.
        process.stderr.write(`\nblindml: owner API key (shown once; only its SHA-256 is stored in ${server.registry.location}):\n\n  ${server.generatedApiKey}\n\n`);
      }
      try {
        for (const m of preload) {
          const { model, created } = await server.registry.add(m.onnx, { name: modelName(m.file), ...(m.calibration ? { calibration: m.calibration } : {}) });
          if (model.compiled) server.service.register(model.record.id, model.compiled);
          process.stderr.write(`blindml: model ${model.record.id} (${model.record.name}) ${created ? 'registered' : 'already registered'} from ${m.file}\n`);
        }
      } catch (err) {
        await server.close(0);
        throw err;
      }
      const warming = server.registry.warming;
      process.stderr.write(`blindml: serving ${server.registry.list().length} model(s) at ${server.url} (${warming ? `${warming} still loading; ` : ''}demo page ${server.url}/, owner page ${server.url}/owner)\n`);
      void server.ready.then(() => {
        for (const s of server.skippedModels) process.stderr.write(`blindml: model ${s.id} not loaded: ${s.reason}\n`);
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          process.stderr.write(`blindml: ${signal}: finishing running sessions for up to ${o.drainTimeout} s, refusing new ones (a second signal aborts them)\n`);
          process.once(signal as NodeJS.Signals, () => void server.close(0));
          void server.close().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
  deprecatedAlias(serve, 'workers', 'threads', nonNegativeInt);

  const models = program.command('models').description("a model owner's calls to a running service (owner API key from --api-key-file or $BLINDML_API_KEY)");
  const keyOf = (o: { apiKey?: string; apiKeyFile?: string }): string => {
    const key = ownerKey(o, (line) => process.stderr.write(`${line}\n`));
    if (!key) throw new UsageError('an owner API key is needed: --api-key-file FILE or BLINDML_API_KEY (or --api-key K)');
    return key;
  };
  const row = (m: ModelInfo) => `${m.id}  ${m.name.padEnd(24)} ${`[${m.inputShape.join('×')}] → ${m.outputSize}`.padEnd(20)} ${m.rounds} rounds${m.createdAt ? `  ${m.createdAt}` : ''}`;
  models
    .command('add')
    .description('upload a model; the service compiles it itself (calibrating on a .blindml file\'s inputs, --calibration, or the committed Fashion-MNIST sample) and keeps its class names')
    .argument('<file>', 'an .onnx or .blindml file (a .blindml file brings its calibration inputs)')
    .requiredOption('--server <url>', 'service base URL')
    .option('--api-key-file <file>', 'file holding the owner API key (default: $BLINDML_API_KEY)')
    .option('--api-key <key>', 'owner API key (visible in ps: prefer --api-key-file)')
    .option('--name <name>', 'display name (default: the file name)')
    .option('--calibration <file>', 'IDX file of calibration inputs (N × input size, unsigned bytes or float32, gzip or not; `blindml compile --calibration` takes CSV, .npy or images)')
    .option('--labels <names>', "class names stored in the model's 'labels' metadata: comma-separated or a file with one per line")
    .option('--json', 'print the record as JSON')
    .action(async (file: string, o: { server: string; apiKey?: string; apiKeyFile?: string; name?: string; calibration?: string; labels?: string; json?: boolean }) => {
      const parts = uploadParts(readModelFile(file), file);
      const calibration = o.calibration ? readFileSync(o.calibration) : parts.calibration;
      const { model, created } = await registerModel(o.server, keyOf(o), o.labels ? withModelLabels(parts.onnx, labelsArgument(o.labels)) : parts.onnx, {
        name: o.name ?? modelName(file),
        ...(calibration ? { calibration } : {}),
      });
      process.stdout.write(o.json ? `${JSON.stringify({ ...model, created })}\n` : `${created ? 'registered' : 'already registered'}: ${row(model)}\n`);
    });
  models
    .command('list')
    .description('list the registered models')
    .requiredOption('--server <url>', 'service base URL')
    .option('--api-key-file <file>', 'file holding the owner API key (default: $BLINDML_API_KEY)')
    .option('--api-key <key>', 'owner API key (visible in ps: prefer --api-key-file)')
    .option('--json', 'print JSON')
    .action(async (o: { server: string; apiKey?: string; apiKeyFile?: string; json?: boolean }) => {
      const list = await listModels(o.server, keyOf(o));
      process.stdout.write(o.json ? `${JSON.stringify(list)}\n` : list.length ? `${list.map(row).join('\n')}\n` : 'no models\n');
    });
  models
    .command('rm')
    .description('remove a model')
    .argument('<id>', 'model id')
    .requiredOption('--server <url>', 'service base URL')
    .option('--api-key-file <file>', 'file holding the owner API key (default: $BLINDML_API_KEY)')
    .option('--api-key <key>', 'owner API key (visible in ps: prefer --api-key-file)')
    .action(async (id: string, o: { server: string; apiKey?: string }) => {
      if (!(await removeModel(o.server, keyOf(o), id))) throw new UsageError(`the service has no model ${id}`);
      process.stdout.write(`removed ${id}\n`);
    });
}

/** A model's display name from its file name. */
const modelName = (file: string): string => basename(file).replace(/\.(onnx|blindml)$/, '');
