/**
 * Worker-thread entry point for {@link CkksProductPool} (loaded by piscina): one CKKS context per
 * parameter set, kept for the life of the thread.
 *
 * @module
 */
import { BlindmlError } from '../errors.js';
import { evaluateProducts, type ProductTask } from '../protocol/ckks-inference/products.js';
import { CkksContext, parameterFingerprint } from '../schemes/ckks/index.js';
import type { ProductReply } from './ckks-products-pool.js';

const contexts = new Map<string, Promise<CkksContext>>();

export default async function handle(task: ProductTask): Promise<ProductReply> {
  try {
    const fp = parameterFingerprint(task.params);
    let ctx = contexts.get(fp);
    if (!ctx) {
      ctx = CkksContext.create(task.params);
      contexts.set(fp, ctx);
    }
    const context = await ctx;
    return { outputs: task.terms.length === 0 ? [] : evaluateProducts(context, task) };
  } catch (e) {
    const known = e instanceof BlindmlError;
    return { error: { code: known ? e.code : 'ERR_INTERNAL', message: known ? e.message.slice(0, 2000) : 'internal error in a CKKS worker' } };
  }
}
