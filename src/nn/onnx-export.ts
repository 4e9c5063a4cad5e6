/**
 * Writing a chain of dense layers, ReLUs and elementwise polynomials as an ONNX model (opset 13)
 * that blindml's importer and onnxruntime read: what `blindml train --export` writes.
 * Dense layers become `Gemm` (weights stored out × in, `transB = 1`), a polynomial becomes Horner's
 * rule in `Mul`/`Add` nodes with scalar constants (the form the importer folds back into one
 * polynomial layer). Browser-safe.
 *
 * @module
 */
import { onnx, type proto } from './onnx-proto.js';

/** One layer of an exported chain. */
export type ExportLayer =
  | {
      readonly kind: 'dense';
      /** Row-major, `outputs` rows of `inputs` values. */
      readonly weights: ArrayLike<number>;
      readonly bias: ArrayLike<number>;
      readonly inputs: number;
      readonly outputs: number;
    }
  | { readonly kind: 'relu' }
  /** c0 + c1·x + c2·x² + …, elementwise; coefficients lowest first. */
  | { readonly kind: 'polynomial'; readonly coefficients: readonly number[] };

/** What {@link exportOnnx} writes. */
export interface ExportSpec {
  /** Shape of one sample (the batch dimension is added, named `batch`). Flattened first if not 1-D. */
  readonly inputShape: readonly number[];
  readonly layers: readonly ExportLayer[];
  /** Graph name (shown by `blindml model info`). */
  readonly name: string;
  /** A sentence on what the model is and where its weights come from. */
  readonly description: string;
  /** Free-form `metadata_props` entries. */
  readonly metadata?: Readonly<Record<string, string>>;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function floatTensor(name: string, dims: readonly number[], values: ArrayLike<number>): proto.ITensorProto {
  const data = Float32Array.from(values);
  // raw_data is little-endian; a typed array's buffer is little-endian on every platform Node runs on.
  return { name, dims: [...dims], dataType: FLOAT, rawData: new Uint8Array(data.buffer) };
}

function valueInfo(name: string, dims: readonly (number | string)[]): proto.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim } } } };
}

/**
 * Encodes the chain as ONNX model bytes.
 *
 * @throws {RangeError} if a dense layer's weights or bias do not have the declared sizes, the
 *   layers' widths do not follow on from each other, a value is not finite, or a polynomial has no
 *   coefficient.
 */
export function exportOnnx(spec: ExportSpec): Uint8Array {
  const nodes: proto.INodeProto[] = [];
  const initializers: proto.ITensorProto[] = [];
  let width = spec.inputShape.reduce((a, b) => a * b, 1);
  let current = 'input';
  let counter = 0;
  const fresh = (stem: string): string => `${stem}_${counter++}`;
  const node = (opType: string, input: string[], attribute: proto.IAttributeProto[] = []): string => {
    const output = fresh(opType.toLowerCase());
    nodes.push({ opType, name: output, input, output: [output], attribute });
    return output;
  };
  const scalar = (value: number): string => {
    if (!Number.isFinite(value)) throw new RangeError(`exportOnnx: coefficient ${value} is not finite`);
    const name = fresh('c');
    initializers.push(floatTensor(name, [], [value]));
    return name;
  };
  if (spec.inputShape.length !== 1) {
    current = node('Flatten', [current], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }]);
  }
  spec.layers.forEach((layer, index) => {
    if (layer.kind === 'relu') {
      current = node('Relu', [current]);
    } else if (layer.kind === 'polynomial') {
      current = horner(layer.coefficients, current, node, scalar);
    } else {
      checkDense(layer, width, index);
      const w = fresh('W');
      const b = fresh('b');
      initializers.push(floatTensor(w, [layer.outputs, layer.inputs], layer.weights), floatTensor(b, [layer.outputs], layer.bias));
      current = node('Gemm', [current, w, b], [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }]);
      width = layer.outputs;
    }
  });
  const model: proto.IModelProto = {
    irVersion: 7,
    producerName: 'blindml',
    opsetImport: [{ domain: '', version: 13 }],
    docString: spec.description,
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: spec.name,
      input: [valueInfo('input', ['batch', ...spec.inputShape])],
      output: [valueInfo(current, ['batch', width])],
      initializer: initializers,
      node: nodes,
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

function checkDense(layer: Extract<ExportLayer, { kind: 'dense' }>, width: number, index: number): void {
  if (layer.inputs !== width) throw new RangeError(`exportOnnx: layer ${index} takes ${layer.inputs} inputs, the layer before gives ${width}`);
  if (layer.weights.length !== layer.inputs * layer.outputs || layer.bias.length !== layer.outputs) {
    throw new RangeError(`exportOnnx: layer ${index} has ${layer.weights.length} weights and ${layer.bias.length} biases for ${layer.inputs} → ${layer.outputs}`);
  }
  for (const values of [layer.weights, layer.bias]) {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw new RangeError(`exportOnnx: layer ${index} has a value that is not finite`);
    }
  }
}

/** Horner's rule: ((c_d·x + c_{d−1})·x + …)·x + c0. */
function horner(
  coefficients: readonly number[],
  x: string,
  node: (op: string, input: string[]) => string,
  scalar: (v: number) => string,
): string {
  const d = coefficients.length - 1;
  if (d < 0) throw new RangeError('exportOnnx: a polynomial needs at least one coefficient');
  if (d === 0) return node('Add', [node('Mul', [x, scalar(0)]), scalar(coefficients[0]!)]);
  let acc = node('Mul', [x, scalar(coefficients[d]!)]);
  for (let k = d - 1; k >= 0; k--) {
    acc = node('Add', [acc, scalar(coefficients[k]!)]);
    if (k > 0) acc = node('Mul', [acc, x]);
  }
  return acc;
}
