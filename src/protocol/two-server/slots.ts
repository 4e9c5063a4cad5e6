/**
 * How masked values are laid out in the plaintexts S2 decrypts: `slotsPerCiphertext` signed slots
 * of `slotBits` bits (guard bits included), consecutive values in consecutive slots.
 *
 * @module
 */
import { SlotLayout } from '../../schemes/paillier/packing.js';
import { SLOT_GUARD_BITS } from './params.js';

/** The slot layout both servers derive from a modulus size and a slot width. */
export function maskedLayout(modulusBits: number, slotBits: number): SlotLayout {
  return SlotLayout.fromSlotBits(modulusBits, slotBits, SLOT_GUARD_BITS);
}

/** Ciphertexts needed for `values` values in slots of `slotBits` bits. */
export function packedCount(modulusBits: number, slotBits: number, values: number): number {
  return Math.ceil(values / maskedLayout(modulusBits, slotBits).slots);
}
