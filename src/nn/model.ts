/**
 * A model in blindml's IR: an input shape and a chain of layers, each consuming the previous
 * layer's output. The shapes between layers are worked out once, when the model is built, so a
 * model that exists is a model whose layers fit together.
 *
 * @module
 */
import type { Layer } from './layers.js';
import { sizeOf, type Shape } from './shape.js';

/** A chain of layers with known shapes between them. */
export class Model {
  readonly inputShape: Shape;
  readonly layers: readonly Layer[];
  /** `shapes[i]` is the input shape of `layers[i]`; the last entry is the model's output shape. */
  readonly shapes: readonly Shape[];
  /** Free-form name (the ONNX graph name, or the file name). */
  readonly name: string;

  /**
   * @throws {ShapeError} if a layer cannot take the shape the previous layer produces.
   */
  constructor(inputShape: Shape, layers: readonly Layer[], name = '') {
    this.inputShape = [...inputShape];
    this.layers = [...layers];
    this.name = name;
    const shapes: Shape[] = [this.inputShape];
    let shape = this.inputShape;
    for (const layer of this.layers) {
      shape = layer.computeOutputShape(shape);
      shapes.push(shape);
    }
    this.shapes = shapes;
  }

  get outputShape(): Shape {
    return this.shapes[this.shapes.length - 1] as Shape;
  }

  /** Number of values in one input sample. */
  get inputSize(): number {
    return sizeOf(this.inputShape);
  }

  /** Number of values in one output sample. */
  get outputSize(): number {
    return sizeOf(this.outputShape);
  }

  /** Total weights and biases. */
  get parameterCount(): number {
    let n = 0;
    for (const layer of this.layers) {
      if (layer.kind === 'conv2d' || layer.kind === 'dense') n += layer.parameterCount;
    }
    return n;
  }

  /** One line per layer: kind, output shape, parameters. */
  summary(): string {
    const lines = [`input ${fmt(this.inputShape)}`];
    this.layers.forEach((layer, i) => {
      const params = layer.kind === 'conv2d' || layer.kind === 'dense' ? `  ${layer.parameterCount} params` : '';
      lines.push(`${layer.kind.padEnd(16)}→ ${fmt(this.shapes[i + 1] as Shape)}${params}`);
    });
    lines.push(`total ${this.parameterCount} params`);
    return lines.join('\n');
  }
}

function fmt(shape: Shape): string {
  return `[${shape.join('×')}]`;
}
