// Part of `npm run test:mutation` (see stryker.base.mjs): the CKKS blinding factors, output
// order and smudging, against the CKKS privacy tests.
import { part } from './stryker.base.mjs';

export default part('ckks');
