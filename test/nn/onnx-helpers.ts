/**
 * Test helpers: build small ONNX models in memory with onnx-proto, run them with onnxruntime-web
 * (wasm, one thread), compare outputs.
 */
import * as ort from 'onnxruntime-web';
import { onnx, type proto } from '../../src/nn/onnx-proto.js';

ort.env.wasm.numThreads = 1;

/** Deterministic pseudo-random numbers in [-scale, scale) (mulberry32). */
export function randoms(count: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = (2 * u - 1) * scale;
  }
  return out;
}

/** A float tensor, stored as raw_data (little-endian) or float_data. */
export function floatTensor(
  name: string,
  dims: readonly number[],
  data: ArrayLike<number>,
  storage: 'raw' | 'float_data' = 'raw',
): proto.ITensorProto {
  const values = Float32Array.from(data);
  return {
    name,
    dims: [...dims],
    dataType: onnx.TensorProto.DataType.FLOAT,
    ...(storage === 'raw'
      ? { rawData: new Uint8Array(values.buffer) }
      : { floatData: Array.from(values) }),
  };
}

/** An int64 tensor (shapes, pads). */
export function intTensor(name: string, dims: readonly number[], data: readonly number[]): proto.ITensorProto {
  return { name, dims: [...dims], dataType: onnx.TensorProto.DataType.INT64, int64Data: [...data] };
}

/** A bool tensor (Dropout's training_mode), stored as raw bytes. */
export function boolTensor(name: string, values: readonly boolean[]): proto.ITensorProto {
  return {
    name,
    dims: [],
    dataType: onnx.TensorProto.DataType.BOOL,
    rawData: Uint8Array.from(values, (v) => (v ? 1 : 0)),
  };
}

type AttrValue =
  | { readonly i: number }
  | { readonly f: number }
  | { readonly s: string }
  | { readonly ints: readonly number[] }
  | { readonly t: proto.ITensorProto };

/** Wraps attribute values: `{ i: 1 }`, `{ f: 0.5 }`, `{ s: 'constant' }`, `{ ints: [...] }`, `{ t }`. */
function attribute(name: string, v: AttrValue): proto.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in v) return { name, type: T.INT, i: v.i };
  if ('f' in v) return { name, type: T.FLOAT, f: v.f };
  if ('s' in v) return { name, type: T.STRING, s: new TextEncoder().encode(v.s) };
  if ('ints' in v) return { name, type: T.INTS, ints: [...v.ints] };
  return { name, type: T.TENSOR, t: v.t };
}

export interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly attrs?: Readonly<Record<string, AttrValue>>;
}

/** A model with one float input `input` ([batch, ...sampleShape]) and one output. */
export function buildModel(spec: {
  readonly sampleShape: readonly number[];
  readonly nodes: readonly NodeSpec[];
  readonly initializers?: readonly proto.ITensorProto[];
  readonly output: string;
  readonly opset?: number;
}): Uint8Array {
  const valueInfo = (name: string, dims?: proto.TensorShapeProto.IDimension[]): proto.IValueInfoProto => ({
    name,
    type: {
      tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, ...(dims ? { shape: { dim: dims } } : {}) },
    },
  });
  const model: proto.IModelProto = {
    irVersion: 7,
    producerName: 'blindml-tests',
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }],
    graph: {
      name: 'test',
      input: [valueInfo('input', [{ dimParam: 'batch' }, ...spec.sampleShape.map((d) => ({ dimValue: d }))])],
      output: [valueInfo(spec.output)],
      initializer: [...(spec.initializers ?? [])],
      node: spec.nodes.map((n, i) => ({
        opType: n.op,
        name: n.name ?? `${n.op.toLowerCase()}_${i}`,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Runs a model with onnxruntime-web on `count` samples; returns its first output. `optimize`
 * false turns off onnxruntime's graph rewrites (its Pad fusion also folds a zero Pad into a
 * following MaxPool, where the pool's own padding means −∞ instead of 0).
 */
export async function runOrt(
  bytes: Uint8Array,
  inputs: Float32Array,
  sampleShape: readonly number[],
  optimize = true,
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'],
    ...(optimize ? {} : { graphOptimizationLevel: 'disabled' as const }),
  });
  try {
    const size = sampleShape.reduce((a, b) => a * b, 1);
    const feeds = {
      [session.inputNames[0] as string]: new ort.Tensor('float32', inputs, [inputs.length / size, ...sampleShape]),
    };
    const results = await session.run(feeds);
    return results[session.outputNames[0] as string]?.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** Largest |a[i] - b[i]|; throws if the lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
}
