// Part of `npm run test:mutation` (see stryker.base.mjs): the CKKS smudging flood, against the CKKS smudging tests.
import { part } from './stryker.base.mjs';

export default part('ckks-smudging');
