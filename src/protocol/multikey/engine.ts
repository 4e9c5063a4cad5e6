/**
 * What the training loop needs from whoever holds the values: run a local instruction, run a
 * batch of interactive ones (one round between the servers). {@link PlainEngine} is the
 * plaintext twin: the same instructions on ring values in one store.
 *
 * @module
 */
import { applyLocal, getTensor, localProduct, type InteractiveInstr, type LocalInstr, type RingMatrix, type ShareStore } from './program.js';

/** An executor of training instructions. */
export interface TrainingEngine {
  /** Runs (or queues) one local instruction. */
  run(instr: LocalInstr): void;
  /** Runs interactive instructions that do not depend on each other, in one round. */
  interact(instrs: readonly InteractiveInstr[]): Promise<void>;
}

/** The plaintext twin's executor: every tensor in the clear, same ring arithmetic. */
export class PlainEngine implements TrainingEngine {
  readonly store: ShareStore = new Map();

  run(instr: LocalInstr): void {
    applyLocal(this.store, instr, 'plain');
  }

  async interact(instrs: readonly InteractiveInstr[]): Promise<void> {
    for (const i of instrs) this.store.set(i.out, localProduct(getTensor(this.store, i.a), getTensor(this.store, i.b), i.op));
  }

  /** Puts a tensor in the store. */
  set(id: string, m: RingMatrix): void {
    this.store.set(id, m);
  }
}
