/**
 * Reading the pieces of an ONNX protobuf the importer needs: decoding the model, constant tensors
 * (float_data or little-endian raw_data) and node attributes. Browser-safe (onnx-proto runs on
 * protobufjs).
 *
 * @module
 */
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import { FormatError } from '../errors.js';

const { onnx } = onnxProto;
export { onnx, type proto };

/** protobufjs gives 64-bit integers as `Long` objects when the `long` package is present. */
type Int64 = number | { toNumber(): number; toString(): string };

/** A constant tensor: initializer or Constant node output. */
export type ConstTensor =
  | { readonly type: 'float'; readonly dims: readonly number[]; readonly data: Float32Array }
  | { readonly type: 'int'; readonly dims: readonly number[]; readonly data: readonly number[] };

/**
 * Decodes ONNX model bytes.
 *
 * @throws {FormatError} if the bytes are not an ONNX model protobuf with a graph.
 */
export function decodeModel(bytes: Uint8Array): InstanceType<typeof onnx.ModelProto> {
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new FormatError(`ONNX: not a valid model file (${reason})`, { cause: err });
  }
  if (!model.graph || !model.graph.node || model.graph.node.length === 0) {
    throw new FormatError('ONNX: the file has no graph (is it an ONNX model?)');
  }
  return model;
}

/**
 * Converts a protobuf 64-bit integer to a number.
 *
 * @throws {FormatError} if it is outside the safe integer range.
 */
export function toInt(v: Int64): number {
  const n = typeof v === 'number' ? v : v.toNumber();
  if (!Number.isSafeInteger(n)) throw new FormatError(`ONNX: integer ${v.toString()} is out of range`);
  return n;
}

/**
 * An int64 as a number. Values beyond the safe-integer range saturate: exporters write INT64_MAX
 * and INT64_MIN as "to the end" in Slice bounds, where any larger-than-the-tensor value means the
 * same; nowhere else does a value that large make sense.
 */
function saturate(v: bigint): number {
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  return Number(v > max ? max : v < -max ? -max : v);
}

/**
 * Reads a tensor's values. Floats (FLOAT, DOUBLE) become a Float32Array; integers (INT64, INT32,
 * INT8, UINT8, BOOL) a number array.
 *
 * @throws {FormatError} if the data type is not one of those, the data is stored externally, or
 *   the number of values does not match the dimensions.
 */
export function readTensor(t: proto.ITensorProto): ConstTensor {
  const name = t.name ?? '';
  const dims = (t.dims ?? []).map(toInt);
  const size = dims.reduce((a: number, b: number) => a * b, 1);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new FormatError(`ONNX: tensor '${name}' is stored in an external file, which blindml does not read`);
  }
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const check = (n: number, unit = 1): void => {
    if (n !== size * unit) {
      throw new FormatError(
        `ONNX: tensor '${name}' has dims [${dims.join(', ')}] (${size} values) but ${raw ? `${n} bytes` : `${n} values`}`,
      );
    }
  };
  const DT = onnx.TensorProto.DataType;
  switch (t.dataType) {
    case DT.FLOAT: {
      if (view) {
        check(view.byteLength, 4);
        const data = new Float32Array(size);
        for (let i = 0; i < size; i++) data[i] = view.getFloat32(4 * i, true);
        return { type: 'float', dims, data };
      }
      const values = t.floatData ?? [];
      check(values.length);
      return { type: 'float', dims, data: Float32Array.from(values) };
    }
    case DT.DOUBLE: {
      if (view) {
        check(view.byteLength, 8);
        const data = new Float32Array(size);
        for (let i = 0; i < size; i++) data[i] = view.getFloat64(8 * i, true);
        return { type: 'float', dims, data };
      }
      const values = t.doubleData ?? [];
      check(values.length);
      return { type: 'float', dims, data: Float32Array.from(values) };
    }
    case DT.INT64: {
      if (view) {
        check(view.byteLength, 8);
        const data = Array.from({ length: size }, (_, i) => saturate(view.getBigInt64(8 * i, true)));
        return { type: 'int', dims, data };
      }
      const values = (t.int64Data ?? []).map((v) => saturate(BigInt(typeof v === 'number' ? v : v.toString())));
      check(values.length);
      return { type: 'int', dims, data: values };
    }
    case DT.INT32: {
      if (view) {
        check(view.byteLength, 4);
        return { type: 'int', dims, data: Array.from({ length: size }, (_, i) => view.getInt32(4 * i, true)) };
      }
      const values = t.int32Data ?? [];
      check(values.length);
      return { type: 'int', dims, data: [...values] };
    }
    case DT.BOOL:
    case DT.UINT8:
    case DT.INT8: {
      if (raw) {
        check(raw.length);
        const signed = t.dataType === DT.INT8;
        return { type: 'int', dims, data: Array.from(raw, (b) => (signed && b > 127 ? b - 256 : b)) };
      }
      const values = t.int32Data ?? [];
      check(values.length);
      return { type: 'int', dims, data: [...values] };
    }
    default: {
      const typeName = DT[t.dataType ?? 0] ?? String(t.dataType);
      throw new FormatError(`ONNX: tensor '${name}' has data type ${typeName}, which blindml does not read`);
    }
  }
}

/** Typed access to a node's attributes; every getter refuses a value of the wrong kind. */
export class Attributes {
  private readonly byName = new Map<string, proto.IAttributeProto>();

  /** `label` names the node in error messages. */
  constructor(
    node: proto.INodeProto,
    private readonly label: string,
  ) {
    for (const a of node.attribute ?? []) this.byName.set(a.name ?? '', a);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** @throws {FormatError} if present but not an INT. */
  int(name: string, fallback: number): number {
    const a = this.get(name, onnx.AttributeProto.AttributeType.INT);
    return a === undefined ? fallback : toInt(a.i ?? 0);
  }

  /** @throws {FormatError} if present but not a FLOAT. */
  float(name: string, fallback: number): number {
    const a = this.get(name, onnx.AttributeProto.AttributeType.FLOAT);
    return a === undefined ? fallback : (a.f ?? 0);
  }

  /** @throws {FormatError} if present but not INTS. */
  ints(name: string, fallback: readonly number[]): readonly number[] {
    const a = this.get(name, onnx.AttributeProto.AttributeType.INTS);
    return a === undefined ? fallback : (a.ints ?? []).map(toInt);
  }

  /** @throws {FormatError} if present but not FLOATS. */
  floats(name: string): readonly number[] | undefined {
    const a = this.get(name, onnx.AttributeProto.AttributeType.FLOATS);
    return a === undefined ? undefined : [...(a.floats ?? [])];
  }

  /** @throws {FormatError} if present but not a STRING. */
  string(name: string, fallback: string): string {
    const a = this.get(name, onnx.AttributeProto.AttributeType.STRING);
    return a === undefined ? fallback : new TextDecoder().decode(a.s ?? new Uint8Array(0));
  }

  /** @throws {FormatError} if present but not a TENSOR. */
  tensor(name: string): proto.ITensorProto | undefined {
    return this.get(name, onnx.AttributeProto.AttributeType.TENSOR)?.t ?? undefined;
  }

  private get(name: string, type: proto.AttributeProto.AttributeType): proto.IAttributeProto | undefined {
    const a = this.byName.get(name);
    if (a === undefined) return undefined;
    // Writers before ONNX 1.2 may leave `type` unset; trust the field then.
    if (a.type && a.type !== type) {
      const got = onnx.AttributeProto.AttributeType[a.type] ?? String(a.type);
      const want = onnx.AttributeProto.AttributeType[type];
      throw new FormatError(`ONNX: attribute ${name} of ${this.label} is ${got}, expected ${want}`);
    }
    return a;
  }
}
