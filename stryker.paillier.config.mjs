// Part of `npm run test:mutation` (see stryker.base.mjs): the blinding factors, noise,
// permutations and re-randomization of Paillier inference, DJN noise and tensor-file obfuscation,
// against the Paillier privacy tests.
import { part } from './stryker.base.mjs';

export default part('paillier');
