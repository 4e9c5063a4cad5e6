// Part of `npm run test:mutation` (see stryker.base.mjs): the Secure MLP's fresh noise and
// starting weights, and the multi-key masks, mask widths and re-randomizations, against the
// two-server and multi-key privacy tests.
import { part } from './stryker.base.mjs';

export default part('two-server');
