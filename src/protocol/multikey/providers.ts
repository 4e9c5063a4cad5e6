/**
 * Data providers, each with its own keys. A provider encodes its records in fixed point, encrypts
 * them once under its own key and uploads them; later, during the key switch, it (or whoever holds
 * its private key) decrypts values the service has masked and re-encrypts them under the training
 * key. It sees only its own values plus the service's masks.
 *
 * - {@link PaillierDataProvider}: its own Paillier key pair; records packed into signed slots.
 * - {@link CkksDataProvider}: its own CKKS key pair (node-seal through `schemes/ckks`); records as
 *   real numbers in CKKS slots. Decoding is approximate: the provider rounds the masked value to
 *   the fixed-point grid before re-encrypting it as a Paillier integer (see `key-switch.ts` for the
 *   precision and the mask's hiding).
 *
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { KeyMismatchError, OverflowError } from '../../errors.js';
import { CkksCiphertext, type CkksContext, type CkksKeyring } from '../../schemes/ckks/index.js';
import type { PaillierKeyPair, PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { ClassicNoise } from '../../schemes/paillier/noise.js';
import { SlotLayout } from '../../schemes/paillier/packing.js';
import { b64ToBig, b64ToBytes, bigToB64, bytesToB64 } from './codec.js';
import { MULTIKEY_VERSION, SwitchRequestSchema, parseMessage, type SwitchReply, type Upload } from './messages.js';
import { RING_BITS } from './ring.js';

/** Guard bits of the key-switch slots. */
export const SWITCH_GUARD_BITS = 6;

/**
 * The signed-slot layout values travel in during upload and key switch under a Paillier key of
 * `modulusBits`: room for a fixed-point value plus a 64-bit mask.
 */
export function switchLayout(modulusBits: number): SlotLayout {
  return new SlotLayout(modulusBits, { bound: 1n << BigInt(RING_BITS + 1), guardBits: SWITCH_GUARD_BITS });
}

/** A short id of a Paillier public key: the first 16 bytes of SHA-256 of n, hex. */
export function paillierKeyId(key: PaillierPublicKey): string {
  const hex = key.n.toString(16);
  const bytes = new TextEncoder().encode(hex);
  return `paillier:${Array.from(sha256(bytes).subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Records as fixed-point integers, row after row. @throws RangeError for a value out of range. */
function fixedValues(records: readonly ArrayLike<number>[], fracBits: number): bigint[] {
  const out: bigint[] = [];
  for (const r of records) {
    for (let i = 0; i < r.length; i++) {
      const x = r[i]!;
      if (!Number.isFinite(x) || Math.abs(x) >= 2 ** 20) throw new RangeError(`record value ${x} is outside the fixed-point range`);
      out.push(BigInt(Math.round(x * 2 ** fracBits)));
    }
  }
  return out;
}

/** Packs signed values into ciphertexts under `key` (its layout). */
function encryptPackedValues(key: PaillierPublicKey, values: readonly bigint[]): string[] {
  const layout = switchLayout(key.bits);
  const out: string[] = [];
  for (let i = 0; i < values.length; i += layout.slots) out.push(bigToB64(key.encryptRaw(layout.pack(values.slice(i, i + layout.slots)))));
  return out;
}

/** Re-encrypts masked values under the training key, packed in its layout. */
function reply(trainingKey: PaillierPublicKey, values: readonly bigint[]): SwitchReply {
  return { v: MULTIKEY_VERSION, type: 'switched', ciphertexts: encryptPackedValues(trainingKey, values) };
}

/** A provider with its own Paillier key pair. */
export class PaillierDataProvider {
  readonly keyId: string;
  private readonly count: number;

  /**
   * @param records - rows of `width` real values (features, then the target), already scaled with
   *   the public normalization.
   */
  constructor(
    readonly id: string,
    private readonly keys: PaillierKeyPair,
    private readonly records: readonly ArrayLike<number>[],
    private readonly fracBits: number,
  ) {
    this.keyId = paillierKeyId(keys.publicKey);
    this.count = records.reduce((s, r) => s + r.length, 0);
    // A provider encrypts a handful of packed ciphertexts once: textbook noise avoids building a
    // fixed-base table (0.6 s at 2048 bits) per provider key.
    keys.publicKey.useNoise(new ClassicNoise(keys.publicKey.n, keys.publicKey.nSquared));
  }

  get publicKey(): PaillierPublicKey {
    return this.keys.publicKey;
  }

  /** The one-time upload: fixed-point records packed and encrypted under the provider's key. */
  upload(): Upload {
    const width = this.records[0]?.length ?? 0;
    const values = fixedValues(this.records, this.fracBits);
    return {
      v: MULTIKEY_VERSION,
      type: 'upload',
      providerId: this.id,
      scheme: 'paillier',
      keyId: this.keyId,
      width,
      records: this.records.length,
      slotBits: switchLayout(this.keys.publicKey.bits).slotBits,
      ciphertexts: encryptPackedValues(this.keys.publicKey, values),
    };
  }

  /**
   * Answers a key-switch request: decrypts the masked values and re-encrypts them under the
   * training key.
   *
   * @throws FormatError for a malformed request; KeyMismatchError / InvalidCiphertextError for a
   *   ciphertext not under this provider's key; OverflowError if a slot is out of range.
   */
  answerSwitch(raw: unknown, trainingKey: PaillierPublicKey): SwitchReply {
    const req = parseMessage(SwitchRequestSchema, raw, 'key-switch request');
    if (req.providerId !== this.id) throw new KeyMismatchError(`key-switch request for provider ${req.providerId} sent to ${this.id}`);
    const pk = this.keys.publicKey;
    const layout = switchLayout(pk.bits);
    const values: bigint[] = [];
    req.ciphertexts.forEach((s, i) => {
      const m = this.keys.privateKey.decrypt(pk.ciphertext(b64ToBig(s)));
      values.push(...layout.unpack(m, pk.n, Math.min(layout.slots, this.count - i * layout.slots)));
    });
    if (values.length !== this.count) throw new OverflowError(`key switch returned ${values.length} values for ${this.count}`);
    return reply(trainingKey, values);
  }
}

/** Mask bits of CKKS values (in units of the fixed-point grid), see `key-switch.ts`. */
export const CKKS_MASK_BITS = 40;

/** A provider with its own CKKS key pair. */
export class CkksDataProvider {
  private readonly count: number;

  constructor(
    readonly id: string,
    private readonly keyring: CkksKeyring,
    private readonly records: readonly ArrayLike<number>[],
    private readonly fracBits: number,
  ) {
    this.count = records.reduce((s, r) => s + r.length, 0);
  }

  get keyId(): string {
    return this.keyring.keyId;
  }

  get context(): CkksContext {
    return this.keyring.context;
  }

  /** The one-time upload: real values, as many per CKKS ciphertext as there are slots. */
  upload(): Upload {
    const flat: number[] = [];
    for (const r of this.records) for (let i = 0; i < r.length; i++) flat.push(r[i]!);
    const slots = this.keyring.context.slots;
    const ciphertexts: string[] = [];
    for (let i = 0; i < flat.length; i += slots) {
      const ct = this.keyring.encrypt(flat.slice(i, i + slots));
      try {
        ciphertexts.push(bytesToB64(ct.save()));
      } finally {
        ct.free();
      }
    }
    return {
      v: MULTIKEY_VERSION,
      type: 'upload',
      providerId: this.id,
      scheme: 'ckks',
      keyId: this.keyId,
      width: this.records[0]?.length ?? 0,
      records: this.records.length,
      slotBits: 8,
      ciphertexts,
    };
  }

  /**
   * Decrypts masked real values, rounds each to the fixed-point grid (2^-fracBits) and re-encrypts
   * the integers under the training key. Rounding is where CKKS's approximation ends: the decoded
   * value is within about 2^-20 of the true one, so the rounded integer is the true fixed-point
   * value except next to a rounding boundary (then one unit off).
   *
   * @throws FormatError, KeyMismatchError, InvalidCiphertextError for a bad request.
   */
  answerSwitch(raw: unknown, trainingKey: PaillierPublicKey): SwitchReply {
    const req = parseMessage(SwitchRequestSchema, raw, 'key-switch request');
    if (req.providerId !== this.id) throw new KeyMismatchError(`key-switch request for provider ${req.providerId} sent to ${this.id}`);
    const values: bigint[] = [];
    const slots = this.keyring.context.slots;
    req.ciphertexts.forEach((s, i) => {
      const ct = CkksCiphertext.load(this.keyring.context, this.keyId, b64ToBytes(s));
      try {
        const decoded = this.keyring.decrypt(ct);
        const n = Math.min(slots, this.count - i * slots);
        for (let j = 0; j < n; j++) values.push(BigInt(Math.round(decoded[j]! * 2 ** this.fracBits)));
      } finally {
        ct.free();
      }
    });
    if (values.length !== this.count) throw new OverflowError(`key switch returned ${values.length} values for ${this.count}`);
    return reply(trainingKey, values);
  }
}
