/**
 * Class names kept in an ONNX model's `metadata_props` under the key `labels` (a JSON array of
 * strings), and a feature model's input standardisation under `blindml.standardize`. Read and written on the serialized bytes, field by field at the top level, so that every
 * other byte of the model stays as the exporter wrote it (decoding and re-encoding would drop fields
 * the protobuf schema here does not know). Browser-safe.
 *
 * @module
 */
import { FormatError } from '../errors.js';

/** The metadata key blindml reads class names from. */
export const LABELS_KEY = 'labels';

/**
 * The metadata key of a feature model's input standardisation, `{"mean": [...], "std": [...]}`
 * (one number per input value) and optionally `"clip": c`: the model takes (x − mean) / std of raw
 * features x, clipped to ±c when `clip` is given (as the training clipped them).
 */
export const STANDARDIZE_KEY = 'blindml.standardize';

/** Per-value standardisation of a model's inputs: x ↦ (x − mean[i]) / std[i], clipped to ±clip when given. */
export interface InputStandardization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly clip?: number;
}

/** ModelProto field 14: `repeated StringStringEntryProto metadata_props` (key = 1, value = 2). */
const METADATA_FIELD = 14;

interface Field {
  readonly number: number;
  readonly start: number;
  readonly end: number;
  /** For length-delimited fields: where the payload starts. */
  readonly payload: number;
}

function readVarint(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = at; i < bytes.length && i < at + 10; i++) {
    const b = bytes[i]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) return [value, i + 1];
  }
  throw new FormatError('ONNX: truncated or malformed protobuf varint');
}

/** The top-level fields of a protobuf message, in order. */
function fields(bytes: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < bytes.length) {
    const start = at;
    const [tag, afterTag] = readVarint(bytes, at);
    const wire = tag % 8;
    let end: number;
    let payload = afterTag;
    if (wire === 0) end = readVarint(bytes, afterTag)[1];
    else if (wire === 1) end = afterTag + 8;
    else if (wire === 5) end = afterTag + 4;
    else if (wire === 2) {
      const [length, next] = readVarint(bytes, afterTag);
      payload = next;
      end = next + length;
    } else throw new FormatError(`ONNX: unsupported protobuf wire type ${wire}`);
    if (end > bytes.length) throw new FormatError('ONNX: truncated protobuf field');
    out.push({ number: Math.floor(tag / 8), start, end, payload });
    at = end;
  }
  return out;
}

/** The key and value of one StringStringEntryProto. */
function entry(bytes: Uint8Array): { key?: string; value?: string } {
  const text = new TextDecoder();
  const result: { key?: string; value?: string } = {};
  for (const f of fields(bytes)) {
    if (f.number === 1) result.key = text.decode(bytes.subarray(f.payload, f.end));
    if (f.number === 2) result.value = text.decode(bytes.subarray(f.payload, f.end));
  }
  return result;
}

function metadataEntries(model: Uint8Array): Array<{ field: Field; key?: string; value?: string }> {
  return fields(model)
    .filter((f) => f.number === METADATA_FIELD)
    .map((field) => ({ field, ...entry(model.subarray(field.payload, field.end)) }));
}

/**
 * The class names stored in a model, or undefined when it has none.
 *
 * @throws {FormatError} when the bytes are not a protobuf message or the entry is not a JSON array of strings.
 */
export function readModelLabels(model: Uint8Array): string[] | undefined {
  const found = metadataEntries(model).filter((e) => e.key === LABELS_KEY).pop();
  if (found?.value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(found.value);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
    throw new FormatError(`ONNX: metadata '${LABELS_KEY}' must be a JSON array of strings, got ${JSON.stringify(found.value.slice(0, 80))}`);
  }
  return parsed as string[];
}

/**
 * {@link readModelLabels}, checked against the model's number of outputs.
 *
 * @throws {FormatError} as readModelLabels, or when the count differs from `outputs`.
 */
export function checkedModelLabels(model: Uint8Array, outputs: number): string[] | undefined {
  const names = readModelLabels(model);
  if (names && names.length !== outputs) throw new FormatError(`the model's '${LABELS_KEY}' metadata holds ${names.length} class names for ${outputs} outputs`);
  return names;
}

/**
 * The input standardisation a model states ({@link STANDARDIZE_KEY}), or undefined when it states none.
 *
 * @throws {FormatError} when the entry is not `{"mean": [...], "std": [...]}` of `size` finite
 *   numbers each, standard deviations positive.
 */
export function readInputStandardization(model: Uint8Array, size: number): InputStandardization | undefined {
  const found = metadataEntries(model).filter((e) => e.key === STANDARDIZE_KEY).pop();
  if (found?.value === undefined) return undefined;
  let parsed: { mean?: unknown; std?: unknown; clip?: unknown } | undefined;
  try {
    parsed = JSON.parse(found.value) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.length === size && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  const clip = parsed?.clip;
  const clipOk = clip === undefined || (typeof clip === 'number' && Number.isFinite(clip) && clip > 0);
  if (!parsed || !numbers(parsed.mean) || !numbers(parsed.std) || parsed.std.some((x) => x <= 0) || !clipOk) {
    throw new FormatError(`ONNX: metadata '${STANDARDIZE_KEY}' must be {"mean": [...], "std": [...]} with ${size} finite numbers each, standard deviations positive, and optionally "clip": a positive number`);
  }
  return { mean: parsed.mean, std: parsed.std, ...(typeof clip === 'number' ? { clip } : {}) };
}

/** Applies a standardisation to inputs laid one after another, in place. */
export function standardizeInputs(values: Float32Array, s: InputStandardization): Float32Array {
  const size = s.mean.length;
  const clip = s.clip ?? Infinity;
  for (let i = 0; i < values.length; i++) values[i] = Math.max(-clip, Math.min(clip, (values[i]! - s.mean[i % size]!) / s.std[i % size]!));
  return values;
}

/**
 * A copy of `model` whose `labels` metadata is `labels` (any earlier `labels` entry removed; every
 * other byte kept in order).
 *
 * @throws {FormatError} when the bytes are not a protobuf message.
 */
export function withModelLabels(model: Uint8Array, labels: readonly string[]): Uint8Array {
  const drop = metadataEntries(model).filter((e) => e.key === LABELS_KEY).map((e) => e.field);
  const kept: Uint8Array[] = [];
  let at = 0;
  for (const f of drop) {
    kept.push(model.subarray(at, f.start));
    at = f.end;
  }
  kept.push(model.subarray(at));
  const encoder = new TextEncoder();
  const stringField = (number: number, text: string) => lengthDelimited(number, encoder.encode(text));
  kept.push(lengthDelimited(METADATA_FIELD, concat([stringField(1, LABELS_KEY), stringField(2, JSON.stringify(labels))])));
  return concat(kept);
}

/**
 * Parses a `--labels` value: a JSON array, or names separated by commas (`cat,dog`), or one name
 * per line when the text has line breaks (a labels file).
 *
 * @throws {FormatError} when no name remains or one is empty.
 */
export function parseLabelList(text: string): string[] {
  const trimmed = text.trim();
  let names: unknown;
  if (trimmed.startsWith('[')) {
    try {
      names = JSON.parse(trimmed);
    } catch (err) {
      throw new FormatError(`labels: not a JSON array (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    }
  } else {
    names = trimmed.split(trimmed.includes('\n') ? /\r?\n/ : ',').map((s) => s.trim());
  }
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && n !== '')) {
    throw new FormatError('labels: give non-empty class names, comma-separated, one per line, or as a JSON array');
  }
  return names as string[];
}

function lengthDelimited(number: number, payload: Uint8Array): Uint8Array {
  return concat([varint(number * 8 + 2), varint(payload.length), payload]);
}

function varint(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
