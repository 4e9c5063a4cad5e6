// Part of `npm run test:mutation` (see stryker.base.mjs): the CKKS blinding factors and output order, against the CKKS privacy tests of factors, orders and windows.
import { part } from './stryker.base.mjs';

export default part('ckks-blinding');
