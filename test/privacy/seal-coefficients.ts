/**
 * The integer coefficients of a SEAL CKKS plaintext, which node-seal 6.0.3 does not expose: SEAL
 * keeps CKKS plaintexts in NTT form, one block of N residues per prime. This reads the residues
 * from SEAL's own serialization and undoes the negacyclic NTT and the RNS split here, with
 * BigInt arithmetic written for the tests (nothing of it is used by the library).
 *
 * The NTT's evaluation order and root are SEAL's: entry i holds a(ψ^(2·bitrev(i)+1)) for the
 * smallest primitive 2N-th root ψ. Another root would permute the coefficients and flip signs, a
 * different way for each prime, and the Chinese remaindering would then give residues spread over
 * the whole modulus instead of small integers — which the tests check before reading anything.
 */

const pow = (b: bigint, e: bigint, m: bigint): bigint => {
  let r = 1n;
  b %= m;
  for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
};

/**
 * The smallest primitive 2n-th root of unity modulo the prime q (q ≡ 1 mod 2n), as SEAL picks it:
 * every prime must use the same one, or each would permute the coefficients its own way and the
 * Chinese remaindering would mix them.
 */
function minimalPrimitiveRoot(q: bigint, n: number): bigint {
  const twoN = BigInt(2 * n);
  for (let g = 2n; g < 10_000n; g++) {
    const psi = pow(g, (q - 1n) / twoN, q);
    if (pow(psi, BigInt(n), q) !== q - 1n) continue;
    // The primitive 2n-th roots are the odd powers of any one of them.
    const square = (psi * psi) % q;
    let best = psi;
    for (let k = 1, r = psi; k < n; k++) {
      r = (r * square) % q;
      if (r < best) best = r;
    }
    return best;
  }
  throw new Error(`no primitive ${twoN}-th root found modulo ${q}`);
}

/** The coefficients (mod q) of the polynomial whose negacyclic NTT (SEAL's order) is `values`. */
export function inverseNegacyclicNtt(values: readonly bigint[], q: bigint): bigint[] {
  const n = values.length;
  if (!Number.isInteger(Math.log2(n))) throw new RangeError('the length must be a power of two');
  const psi = minimalPrimitiveRoot(q, n);
  // b_k = a(ψ^(2k+1)) = Σ_j (a_j ψ^j) ω^(jk) with ω = ψ²: a cyclic DFT of a_j ψ^j, and SEAL
  // stores b in bit-reversed order (values[i] = b[bitrev(i)]), which is the input order an
  // iterative Cooley–Tukey transform wants: the inverse DFT (with ω^-1) runs on `values` as they are.
  const omegaInv = pow((psi * psi) % q, q - 2n, q);
  const x = values.map((v) => v % q);
  for (let len = 2; len <= n; len <<= 1) {
    const w = pow(omegaInv, BigInt(n / len), q);
    for (let start = 0; start < n; start += len) {
      let t = 1n;
      for (let k = 0; k < len / 2; k++) {
        const u = x[start + k]!;
        const v = (x[start + k + len / 2]! * t) % q;
        x[start + k] = (u + v) % q;
        x[start + k + len / 2] = (u - v + q) % q;
        t = (t * w) % q;
      }
    }
  }
  const nInv = pow(BigInt(n), q - 2n, q);
  const psiInv = pow(psi, q - 2n, q);
  let s = nInv;
  return x.map((v) => {
    const out = (v * s) % q;
    s = (s * psiInv) % q;
    return out;
  });
}

/**
 * The centred integer coefficients of a plaintext saved with `saveArray(ComprModeType.none)`,
 * given the primes of its level (the first `coeffCount / n` of the context's data primes).
 *
 * @throws Error when the bytes are not an uncompressed SEAL plaintext of whole blocks of `n`.
 */
export function plainCoefficients(saved: Uint8Array, primes: readonly bigint[], n: number): bigint[] {
  const view = new DataView(saved.buffer, saved.byteOffset, saved.byteLength);
  if (view.getUint16(0, true) !== 0xa15e || view.getUint8(2) !== 16) throw new Error('not a SEAL serialization');
  if (view.getUint8(5) !== 0) throw new Error('a compressed SEAL serialization');
  // Header (16 bytes), parms_id (4 × u64), coeff_count (u64), scale (f64), then the data array
  // saved with its own header (16 bytes), its size (u64) and the residues (u64 each).
  const coeffCount = Number(view.getBigUint64(48, true));
  if (view.getUint16(64, true) !== 0xa15e) throw new Error('no array header where SEAL puts it');
  const size = Number(view.getBigUint64(80, true));
  const k = coeffCount / n;
  if (size !== coeffCount || !Number.isInteger(k) || k < 1 || k > primes.length || saved.byteLength < 88 + 8 * size) throw new Error(`unexpected plaintext size ${coeffCount}`);
  const used = primes.slice(0, k);
  const residues = used.map((q, p) => inverseNegacyclicNtt(Array.from({ length: n }, (_, i) => view.getBigUint64(88 + 8 * (p * n + i), true)), q));
  // Chinese remaindering over the level's primes, centred in (−Q/2, Q/2].
  const modulus = used.reduce((a, q) => a * q, 1n);
  const basis = used.map((q) => {
    const rest = modulus / q;
    return rest * pow(rest % q, q - 2n, q);
  });
  return Array.from({ length: n }, (_, i) => {
    const c = residues.reduce((acc, r, p) => acc + r[i]! * basis[p]!, 0n) % modulus;
    return c > modulus / 2n ? c - modulus : c;
  });
}
