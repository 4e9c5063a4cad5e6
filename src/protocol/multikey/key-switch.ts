/**
 * The blinded key switch: the service turns every provider's ciphertexts into ciphertexts under
 * the training key without anyone seeing a record.
 *
 * 1. The service adds a fresh mask to every value under the provider's key (Paillier: a uniform
 *    64-bit integer per slot; CKKS: a uniform multiple of 2^-f below 2^(40−f), see below).
 * 2. The provider's key holder decrypts the masked values and re-encrypts them, as fixed-point
 *    integers packed in signed slots, under the training key.
 * 3. The service removes the masks under the training key: it now holds Enc_T(x).
 *
 * The key holder sees x + mask (statistically hiding x: Paillier 2^-30 for |x·2^f| < 2^33;
 * CKKS 2^-22 for |x| < 16 at f = 13 — the mask is limited by CKKS precision); the service sees
 * only ciphertexts. The providers are needed online for this step only.
 *
 * CKKS precision: values are encoded at scale 2^30 with 30 bits of headroom (N = 8192); the
 * masked value decodes to within about 2^-20 and is rounded to the 2^-13 grid, so the training
 * value equals the fixed-point encoding of the provider's number, or is one unit (2^-13) off next
 * to a rounding boundary.
 *
 * {@link shareConverted} then turns Enc_T(x) into the two training servers' shares: the service
 * adds a uniform 64-bit R under the training key, the crypto server decrypts x + R and keeps it
 * mod 2^64, the service keeps −R.
 *
 * @module
 */
import { InvalidCiphertextError, KeyMismatchError, ShapeError } from '../../errors.js';
import { CkksCiphertext, addPlain, free, type CkksContext } from '../../schemes/ckks/index.js';
import { PaillierCiphertext } from '../../schemes/paillier/ciphertext.js';
import type { PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { plainFactor } from '../../schemes/paillier/linear.js';
import { b64ToBig, b64ToBytes, bigToB64, bytesToB64 } from './codec.js';
import type { PaillierCompute } from './compute.js';
import { MULTIKEY_VERSION, SwitchReplySchema, UploadSchema, parseMessage, type Upload } from './messages.js';
import { CKKS_MASK_BITS, paillierKeyId, switchLayout } from './providers.js';
import { RING, randomBitsBig, randomRingArray, reduce } from './ring.js';
import type { ServiceEngine } from './service-engine.js';
import type { Channel } from './transport.js';

type Registration =
  | { readonly scheme: 'paillier'; readonly keyId: string; readonly key: PaillierPublicKey }
  | { readonly scheme: 'ckks'; readonly keyId: string; readonly context: CkksContext };

/** A provider's records under the training key, packed in the key-switch layout. */
export interface ConvertedRecords {
  readonly providerId: string;
  readonly records: number;
  readonly width: number;
  readonly ciphertexts: PaillierCiphertext[];
}

/** The service's side of uploads and key switches. */
export class KeySwitchService {
  private readonly registry = new Map<string, Registration>();
  private readonly uploads = new Map<string, Upload>();

  constructor(
    private readonly trainingKey: PaillierPublicKey,
    private readonly width: number,
    private readonly fracBits: number,
  ) {}

  /** Registers a Paillier provider's public key (out of band, before uploads). */
  registerPaillier(providerId: string, key: PaillierPublicKey): void {
    this.registry.set(providerId, { scheme: 'paillier', keyId: paillierKeyId(key), key });
  }

  /** Registers a CKKS provider's key id and the (public) parameters. */
  registerCkks(providerId: string, keyId: string, context: CkksContext): void {
    this.registry.set(providerId, { scheme: 'ckks', keyId, context });
  }

  /** Providers whose uploads were accepted. */
  get providers(): string[] {
    return [...this.uploads.keys()];
  }

  /**
   * Validates and stores a provider's upload.
   *
   * @throws FormatError for a malformed message; KeyMismatchError for an unknown provider or a
   *   ciphertext under a key the service does not know for that provider; ShapeError for records
   *   of the wrong width or a wrong ciphertext count; InvalidCiphertextError for a value outside
   *   the provider's ciphertext space.
   */
  accept(raw: unknown): void {
    const up = parseMessage(UploadSchema, raw, 'provider upload');
    const reg = this.registry.get(up.providerId);
    if (!reg) throw new KeyMismatchError(`upload from unknown provider '${up.providerId}'`);
    if (up.scheme !== reg.scheme || up.keyId !== reg.keyId) {
      throw new KeyMismatchError(`provider '${up.providerId}' sent ciphertexts under an unknown key (${up.scheme} ${up.keyId})`);
    }
    if (up.width !== this.width) throw new ShapeError(`provider '${up.providerId}' sent records of width ${up.width}, expected ${this.width}`);
    const values = up.records * up.width;
    if (reg.scheme === 'paillier') {
      const layout = switchLayout(reg.key.bits);
      if (up.slotBits !== layout.slotBits) throw new ShapeError(`provider '${up.providerId}' packed ${up.slotBits}-bit slots, expected ${layout.slotBits}`);
      const expected = Math.ceil(values / layout.slots);
      if (up.ciphertexts.length !== expected) throw new ShapeError(`provider '${up.providerId}': ${up.records} records need ${expected} ciphertexts, got ${up.ciphertexts.length}`);
      for (const s of up.ciphertexts) reg.key.ciphertext(b64ToBig(s));
    } else {
      const expected = Math.ceil(values / reg.context.slots);
      if (up.ciphertexts.length !== expected) throw new ShapeError(`provider '${up.providerId}': ${up.records} records need ${expected} CKKS ciphertexts, got ${up.ciphertexts.length}`);
      for (const s of up.ciphertexts) CkksCiphertext.load(reg.context, reg.keyId, b64ToBytes(s), { levelPrimes: reg.context.topLevel }).free();
    }
    this.uploads.set(up.providerId, up);
  }

  /**
   * Runs the blinded key switch for one provider over `channel` (to its key holder).
   *
   * @throws PeerUnavailableError if the key holder does not answer; FormatError / ShapeError /
   *   InvalidCiphertextError for a malformed reply.
   */
  async switchProvider(providerId: string, channel: Channel): Promise<ConvertedRecords> {
    const up = this.uploads.get(providerId);
    const reg = this.registry.get(providerId);
    if (!up || !reg) throw new KeyMismatchError(`no upload from provider '${providerId}'`);
    const count = up.records * up.width;
    const { masked, masks } = reg.scheme === 'paillier' ? this.maskPaillier(up, reg.key) : this.maskCkks(up, reg.context, reg.keyId);
    const raw = await channel.request({ v: MULTIKEY_VERSION, type: 'switch', providerId, ciphertexts: masked });
    const reply = parseMessage(SwitchReplySchema, raw, 'key-switch reply');
    const t = this.trainingKey;
    const layout = switchLayout(t.bits);
    const expected = Math.ceil(count / layout.slots);
    if (reply.ciphertexts.length !== expected) throw new ShapeError(`provider '${providerId}' returned ${reply.ciphertexts.length} ciphertexts, expected ${expected}`);
    const ciphertexts = reply.ciphertexts.map((s, i) => {
      const c = t.ciphertext(b64ToBig(s));
      const m = layout.pack(masks.slice(i * layout.slots, (i + 1) * layout.slots));
      return new PaillierCiphertext(t, (c.value * plainFactor(-m, t)) % t.nSquared, false);
    });
    return { providerId, records: up.records, width: up.width, ciphertexts };
  }

  private maskPaillier(up: Upload, key: PaillierPublicKey): { masked: string[]; masks: bigint[] } {
    const layout = switchLayout(key.bits);
    const count = up.records * up.width;
    const masks = randomRingArray(count);
    const masked = up.ciphertexts.map((s, i) => {
      const c = key.ciphertext(b64ToBig(s));
      const m = layout.pack(masks.slice(i * layout.slots, (i + 1) * layout.slots));
      return bigToB64((c.value * plainFactor(m, key)) % key.nSquared);
    });
    return { masked, masks };
  }

  private maskCkks(up: Upload, context: CkksContext, keyId: string): { masked: string[]; masks: bigint[] } {
    const count = up.records * up.width;
    const masks = Array.from({ length: count }, () => randomBitsBig(CKKS_MASK_BITS));
    const scale = 2 ** this.fracBits;
    const masked = up.ciphertexts.map((s, i) => {
      const ct = CkksCiphertext.load(context, keyId, b64ToBytes(s));
      const slice = masks.slice(i * context.slots, (i + 1) * context.slots).map((k) => Number(k) / scale);
      const plain = context.encode(slice, ct.scale, ct.levelPrimes);
      try {
        const out = addPlain(ct, plain);
        try {
          return bytesToB64(out.save());
        } finally {
          out.free();
        }
      } finally {
        free(plain);
        ct.free();
      }
    });
    return { masked, masks };
  }
}

/**
 * Splits converted records into the two servers' shares: tensor `D<i>` (records × width) of
 * provider i, in the order given. The crypto server receives x + R under the training key and
 * keeps x + R mod 2^64; the service keeps −R.
 *
 * @throws PeerUnavailableError / PeerError if the crypto server fails.
 */
export async function shareConverted(engine: ServiceEngine, compute: PaillierCompute, trainingKey: PaillierPublicKey, converted: readonly ConvertedRecords[]): Promise<string[]> {
  const layout = switchLayout(trainingKey.bits);
  const noise = await compute.noise(trainingKey, converted.reduce((s, c) => s + c.ciphertexts.length, 0));
  let at = 0;
  const ids: string[] = [];
  const tensors = converted.map((c, i) => {
    const id = `D${i}`;
    ids.push(id);
    const count = c.records * c.width;
    const r = randomRingArray(count);
    engine.store.set(id, { rows: c.records, cols: c.width, data: r.map((v) => reduce(RING - v)) });
    const ciphertexts = c.ciphertexts.map((ct, j) => {
      if (!ct.publicKey.equals(trainingKey)) throw new InvalidCiphertextError('converted records are not under the training key');
      const m = layout.pack(r.slice(j * layout.slots, (j + 1) * layout.slots));
      return bigToB64((((ct.value * plainFactor(m, trainingKey)) % trainingKey.nSquared) * noise[at++]!) % trainingKey.nSquared);
    });
    return { id, rows: c.records, cols: c.width, ciphertexts };
  });
  await engine.request({ type: 'import', slotBits: layout.slotBits, tensors }, 'ack');
  return ids;
}

