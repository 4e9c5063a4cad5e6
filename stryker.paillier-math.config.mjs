// Part of `npm run test:mutation` (see stryker.base.mjs): the blinding factors, noise and
// permutations of Paillier inference (session maths), DJN noise and tensor-file obfuscation,
// against the privacy tests that check them directly.
import { part } from './stryker.base.mjs';

export default part('paillier-math');
