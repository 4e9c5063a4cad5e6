// Part of `npm run test:mutation` (see stryker.base.mjs): how the Paillier inference service uses
// its factors, noise, permutations and re-randomization, against the Paillier inference privacy
// tests.
import { part } from './stryker.base.mjs';

export default part('paillier-service');
