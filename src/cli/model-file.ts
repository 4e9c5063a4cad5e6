/**
 * The `.blindml` model file a model owner produces with `blindml compile`, checks with `blindml
 * inspect` and ships to `infer`, `predict` and `models add`: one versioned JSON document holding
 * the ONNX model (with its class names in the metadata), the input spec, the calibration inputs
 * that size the fixed-point scales, the scales and parameters each scheme derives from them (so a
 * reader sees what the service will run), and a SHA-256 over all of it.
 *
 * The calibration inputs travel in the file because the compilers derive their scales from them
 * (the service receives them the same way with `models add --calibration`); whoever holds the file
 * can read them, so compile with inputs that may be shared.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FormatError } from '../errors.js';
import { readModelLabels, withModelLabels } from '../data/onnx-labels.js';
import { encodeIdx, encodeIdxFloat32 } from '../data/idx.js';
import { importOnnx } from '../nn/onnx.js';
import type { Model } from '../nn/model.js';
import { compileModel } from '../protocol/paillier-inference/compile.js';
import { planModel, type ActivationGroup, type InferencePlan } from '../protocol/paillier-inference/plan.js';
import { compileCkksModel, DEFAULT_CKKS_PROTOCOL } from '../protocol/ckks-inference/index.js';
import { compilePolyNetwork } from '../protocol/ckks-poly/index.js';

/** The format name and the version this code writes and reads. */
export const MODEL_FILE_FORMAT = 'blindml-model';
export const MODEL_FILE_VERSION = 1;

/** One client round as a reader of the file sees it. */
export interface RoundSummary {
  /** Values the client receives (before any pooling it does). */
  readonly values: number;
  /** Values it returns. */
  readonly returns: number;
  /** e.g. `max-pool + relu`, `sigmoid`. */
  readonly kind: string;
  /** Whether values travel behind random positive factors (homogeneous activations). */
  readonly blinded: boolean;
}

/** What one scheme makes of the model, or why it cannot run it. */
export type SchemeSummary =
  | { readonly supported: true; readonly rounds: readonly RoundSummary[]; readonly details: Record<string, unknown> }
  | { readonly supported: false; readonly reason: string };

const roundSchema = z.object({ values: z.number().int(), returns: z.number().int(), kind: z.string(), blinded: z.boolean() });
const schemeSchema = z.union([
  z.object({ supported: z.literal(true), rounds: z.array(roundSchema), details: z.record(z.string(), z.unknown()) }),
  z.object({ supported: z.literal(false), reason: z.string() }),
]);
const fileSchema = z.object({
  format: z.literal(MODEL_FILE_FORMAT),
  version: z.number().int(),
  createdBy: z.string(),
  name: z.string(),
  onnx: z.string(),
  onnxSha256: z.string().regex(/^[0-9a-f]{64}$/),
  classNames: z.array(z.string()).nullable(),
  input: z.object({ shape: z.array(z.number().int().positive()), normalize: z.string() }),
  calibration: z.object({ count: z.number().int().positive(), encoding: z.enum(['uint8', 'float32']), data: z.string() }),
  schemes: z.object({ paillier: schemeSchema, ckks: schemeSchema, 'ckks-poly': schemeSchema }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** A parsed and verified `.blindml` file. */
export interface ModelFile {
  readonly name: string;
  readonly createdBy: string;
  /** The ONNX bytes (class names included in their metadata when the file has them). */
  readonly onnx: Uint8Array;
  readonly onnxSha256: string;
  readonly model: Model;
  readonly classNames: readonly string[] | null;
  readonly input: { readonly shape: readonly number[]; readonly normalize: string };
  readonly calibration: Float32Array;
  readonly calibrationEncoding: 'uint8' | 'float32';
  readonly schemes: Readonly<Record<'paillier' | 'ckks' | 'ckks-poly', SchemeSummary>>;
  readonly sha256: string;
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/** True when the bytes look like a `.blindml` file (JSON naming the format) rather than ONNX. */
export function isModelFile(bytes: Uint8Array): boolean {
  const head = new TextDecoder().decode(bytes.subarray(0, 64));
  return head.trimStart().startsWith('{') && head.includes(MODEL_FILE_FORMAT);
}

function describeGroup(group: ActivationGroup): string {
  const fns = group.fns.join(' + ') || 'identity';
  if (group.pool === 'max') return `max-pool + ${fns}`;
  if (group.pool === 'avg') return `${fns} + average pool`;
  return fns;
}

/** The client rounds of a plan. */
export function roundsOf(plan: InferencePlan): RoundSummary[] {
  return plan.stages.flatMap((s) => (s.activation ? [{ values: s.activation.inputSize, returns: s.activation.outputSize, kind: describeGroup(s.activation), blinded: s.activation.homogeneous }] : []));
}

function attempt(run: () => SchemeSummary): SchemeSummary {
  try {
    return run();
  } catch (err) {
    return { supported: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * What each scheme derives from the model and calibration inputs: its client rounds and its scales
 * or ring (Paillier, interactive CKKS), or its depth and ring (ckks-poly); a scheme that cannot
 * run the model gets the compiler's reason.
 */
export function summarizeSchemes(model: Model, calibration: Float32Array): Record<'paillier' | 'ckks' | 'ckks-poly', SchemeSummary> {
  return {
    paillier: attempt(() => {
      const c = compileModel(model, calibration);
      return { supported: true, rounds: roundsOf(c.plan), details: { scales: c.stages.map((s) => ({ q: s.maps.map((m) => m.q), shift: s.shift })), valueBits: c.valueBits, inputScale: c.params.inputScale } };
    }),
    ckks: attempt(() => {
      const c = compileCkksModel(model, calibration);
      return { supported: true, rounds: roundsOf(c.plan), details: { sigmas: c.stages.map((s) => s.sigma), polyModulusDegree: c.params.ckks.polyModulusDegree, coeffModulusBits: c.params.ckks.coeffModulusBits, avgPoolAtClient: DEFAULT_CKKS_PROTOCOL.avgPoolAtClient ?? true } };
    }),
    'ckks-poly': attempt(() => {
      const c = compilePolyNetwork(model, calibration);
      return { supported: true, rounds: [], details: { depth: c.depth, lifts: c.lifts, weightBits: c.weightBits, inputScaleBits: Math.log2(c.inputScale), polyModulusDegree: c.params.polyModulusDegree, coeffModulusBits: c.params.coeffModulusBits } };
    }),
  };
}

/** The values as bytes when every one is k/255 (8-bit data such as images), else undefined. */
function asBytes(values: Float32Array): Uint8Array | undefined {
  const bytes = Uint8Array.from(values, (v) => Math.round(v * 255));
  return bytes.every((b, i) => Math.abs(b / 255 - values[i]!) < 1e-6) ? bytes : undefined;
}

/** Calibration inputs as bytes when every value is k/255 (images), else as float32. */
function encodeCalibration(values: Float32Array): { encoding: 'uint8' | 'float32'; data: string } {
  const bytes = asBytes(values);
  if (bytes) return { encoding: 'uint8', data: Buffer.from(bytes).toString('base64') };
  return { encoding: 'float32', data: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64') };
}

function decodeCalibration(encoding: 'uint8' | 'float32', data: string): Float32Array {
  const raw = Buffer.from(data, 'base64');
  if (encoding === 'uint8') return Float32Array.from(raw, (b) => b / 255);
  if (raw.byteLength % 4 !== 0) throw new FormatError('.blindml: float32 calibration data of a length not divisible by 4');
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

/**
 * Builds a `.blindml` file from ONNX bytes and calibration inputs (model inputs one after another).
 *
 * @throws FormatError for calibration data whose length is not a whole number of inputs, or class
 *   names whose count differs from the model's outputs; the importer's errors for a bad model.
 */
export function buildModelFile(options: {
  readonly onnx: Uint8Array;
  readonly name: string;
  readonly calibration: Float32Array;
  readonly classNames?: readonly string[];
  readonly normalize: string;
  readonly createdBy: string;
}): Uint8Array {
  // Rewritten only when the names change, so a labelled model keeps its bytes (and its id on a service).
  const own = readModelLabels(options.onnx);
  const same = own !== undefined && options.classNames !== undefined && JSON.stringify(own) === JSON.stringify(options.classNames);
  const onnx = options.classNames && !same ? withModelLabels(options.onnx, options.classNames) : options.onnx;
  const model = importOnnx(onnx);
  const size = model.inputSize;
  if (options.calibration.length === 0 || options.calibration.length % size !== 0) {
    throw new FormatError(`calibration data of ${options.calibration.length} values is not a whole number of ${model.inputShape.join('×')} inputs`);
  }
  const classNames = readModelLabels(onnx) ?? null;
  if (classNames && classNames.length !== model.outputSize) throw new FormatError(`${classNames.length} class names for a model with ${model.outputSize} outputs`);
  const fields = {
    format: MODEL_FILE_FORMAT,
    version: MODEL_FILE_VERSION,
    createdBy: options.createdBy,
    name: options.name,
    onnx: Buffer.from(onnx).toString('base64'),
    onnxSha256: sha256(onnx),
    classNames,
    input: { shape: [...model.inputShape], normalize: options.normalize },
    calibration: { count: options.calibration.length / size, ...encodeCalibration(options.calibration) },
    schemes: summarizeSchemes(model, options.calibration),
  } as const;
  // The hash: SHA-256 of the JSON of every other field, in the order written.
  const file = { ...fields, sha256: sha256(JSON.stringify(fields)) };
  return new TextEncoder().encode(`${JSON.stringify(file, null, 1)}\n`);
}

/**
 * Parses and verifies a `.blindml` file: format, version, the hash over its fields, the ONNX
 * model's own hash, and calibration data of whole inputs.
 *
 * @throws FormatError naming what is wrong (another version, an edited or truncated file...).
 */
export function readModelFile(bytes: Uint8Array, path: string): ModelFile {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new FormatError(`${path}: not a .blindml file (not JSON: ${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version !== MODEL_FILE_VERSION) {
    throw new FormatError(`${path}: .blindml version ${version}; this blindml reads version ${MODEL_FILE_VERSION} (recompile the model with this version)`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FormatError(`${path}: malformed .blindml file (${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''})`);
  }
  const { sha256: stated, ...fields } = parsed.data;
  // The hash covers the fields as the file spells them (its own key order), not as parsed.
  const { sha256: _stated, ...written } = raw as Record<string, unknown>;
  if (sha256(JSON.stringify(written)) !== stated) throw new FormatError(`${path}: the .blindml hash does not match its content (edited or damaged file)`);
  const onnx = new Uint8Array(Buffer.from(fields.onnx, 'base64'));
  if (sha256(onnx) !== fields.onnxSha256) throw new FormatError(`${path}: the embedded ONNX model does not match its hash`);
  const model = importOnnx(onnx);
  const calibration = decodeCalibration(fields.calibration.encoding, fields.calibration.data);
  if (calibration.length !== fields.calibration.count * model.inputSize) throw new FormatError(`${path}: calibration data does not hold ${fields.calibration.count} inputs of the model's size`);
  return {
    name: fields.name,
    createdBy: fields.createdBy,
    onnx,
    onnxSha256: fields.onnxSha256,
    model,
    classNames: fields.classNames,
    input: fields.input,
    calibration,
    calibrationEncoding: fields.calibration.encoding,
    schemes: fields.schemes as ModelFile['schemes'],
    sha256: stated,
  };
}

/**
 * What `models add` (and `serve --model`) give the service for a model file: ONNX bytes as they
 * are, or a `.blindml` file's embedded model (class names in its metadata) with its calibration
 * inputs as an IDX file (unsigned bytes for 8-bit data, else float32). The service compiles the
 * model itself from these; the file's own scheme summaries are for the reader.
 *
 * @throws FormatError for a damaged `.blindml` file (see {@link readModelFile}).
 */
export function uploadParts(bytes: Uint8Array, path: string): { onnx: Uint8Array; calibration?: Uint8Array } {
  if (!isModelFile(bytes)) return { onnx: bytes };
  const file = readModelFile(bytes, path);
  return { onnx: file.onnx, calibration: calibrationIdx(file.model, file.calibration) };
}

/** Calibration inputs as the service takes them: IDX bytes when every value is k/255, else float32 IDX. */
export function calibrationIdx(model: Model, calibration: Float32Array): Uint8Array {
  const dims = [calibration.length / model.inputSize, ...model.inputShape];
  const bytes = asBytes(calibration);
  return bytes ? encodeIdx(dims, bytes) : encodeIdxFloat32(dims, calibration);
}
