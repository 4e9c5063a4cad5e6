/**
 * A very small WebAssembly binary writer: just enough (i32/i64 integer arithmetic, memory loads
 * and stores, calls) to emit the straight-line field arithmetic of {@link ./kernel.js}. Emitting
 * the module from TypeScript at load time keeps the repository free of opaque binaries and needs
 * no toolchain; the module is a few kilobytes and compiles in milliseconds.
 *
 * @module
 */

/** Value types used by the kernel. */
export const I32 = 0x7f;
export const I64 = 0x7e;
export type ValType = typeof I32 | typeof I64;

/** Opcodes used by the kernel (WebAssembly 1.0). */
export const Op = {
  end: 0x0b,
  call: 0x10,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  i64Load32S: 0x34,
  i32Store: 0x36,
  i64Store32: 0x3e,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Add: 0x6a,
  i64Add: 0x7c,
  i64Sub: 0x7d,
  i64Mul: 0x7e,
  i64And: 0x83,
  i64Shl: 0x86,
  i64ShrS: 0x87,
} as const;

/** Unsigned LEB128. */
export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 of a bigint (used for i32 and i64 constants). */
export function sleb(value: bigint): number[] {
  const out: number[] = [];
  let v = value;
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const signBit = (byte & 0x40) !== 0;
    if ((v === 0n && !signBit) || (v === -1n && signBit)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function vec(items: readonly number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(text: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(text));
  return [...uleb(bytes.length), ...bytes];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** One function being written: parameters, locals and a flat instruction byte list. */
export class FunctionBuilder {
  readonly params: ValType[];
  readonly results: ValType[];
  private readonly localTypes: ValType[] = [];
  readonly code: number[] = [];

  constructor(
    readonly exportName: string | undefined,
    params: ValType[],
    results: ValType[] = [],
  ) {
    this.params = params;
    this.results = results;
  }

  /** Declares a new local and returns its index. */
  local(type: ValType): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }

  emit(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }

  get(index: number): this {
    return this.emit(Op.localGet, ...uleb(index));
  }

  set(index: number): this {
    return this.emit(Op.localSet, ...uleb(index));
  }

  i64(value: bigint): this {
    return this.emit(Op.i64Const, ...sleb(value));
  }

  i32(value: number): this {
    return this.emit(Op.i32Const, ...sleb(BigInt(value)));
  }

  /** Pushes the i64 sign-extended from the i32 at `[ptrLocal + offset]`. */
  load32(ptrLocal: number, offset: number): this {
    return this.get(ptrLocal).emit(Op.i64Load32S, 2, ...uleb(offset));
  }

  /** Stores the low 32 bits of the i64 computed by `value` at `[ptrLocal + offset]`. */
  store32(ptrLocal: number, offset: number, value: () => void): this {
    this.get(ptrLocal);
    value();
    return this.emit(Op.i64Store32, 2, ...uleb(offset));
  }

  call(funcIndex: number): this {
    return this.emit(Op.call, ...uleb(funcIndex));
  }

  body(): number[] {
    const groups: number[][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === t) last[0] = (last[0] ?? 0) + 1;
      else groups.push([1, t]);
    }
    const locals = vec(groups.map(([count, t]) => [...uleb(count ?? 0), t ?? I64]));
    const bytes = [...locals, ...this.code, Op.end];
    return [...uleb(bytes.length), ...bytes];
  }
}

/** Assembles functions (in index order) and one exported memory into a module binary. */
export function assembleModule(
  functions: readonly FunctionBuilder[],
  memory: { readonly exportName: string; readonly minPages: number },
): Uint8Array {
  const types = functions.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))]);
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(5, vec([[0x00, ...uleb(memory.minPages)]])),
    ...section(
      7,
      vec([
        ...functions.flatMap((f, i) => (f.exportName === undefined ? [] : [[...name(f.exportName), 0x00, ...uleb(i)]])),
        [...name(memory.exportName), 0x02, 0x00],
      ]),
    ),
    ...section(10, vec(functions.map((f) => f.body()))),
  ];
  return Uint8Array.from(bytes);
}
