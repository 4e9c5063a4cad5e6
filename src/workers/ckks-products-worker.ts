/**
 * Worker-thread entry point for {@link CkksProductPool} (loaded by piscina): one CKKS context per
 * parameter set, kept for the life of the thread.
 *
 * @module
 */
import { BlindmlError } from '../errors.js';
import { encodePlaintexts, evaluateProducts, type EncodeRequest, type ProductTask } from '../protocol/ckks-inference/products.js';
import { CkksContext, parameterFingerprint, type CkksParameters } from '../schemes/ckks/index.js';
import type { EncodeReply, ProductReply } from './ckks-products-pool.js';
import { moveReply } from './pool-support.js';

const contexts = new Map<string, Promise<CkksContext>>();

function contextFor(params: CkksParameters): Promise<CkksContext> {
  const fp = parameterFingerprint(params);
  let ctx = contexts.get(fp);
  if (!ctx) {
    ctx = CkksContext.create(params);
    contexts.set(fp, ctx);
  }
  return ctx;
}

/** A product task, or `{ encode }`: plaintexts to encode and serialize. */
export default async function handle(task: ProductTask | { encode: EncodeRequest }): Promise<ProductReply | EncodeReply> {
  try {
    if ('encode' in task) {
      const { params, scale, values } = task.encode;
      const plaintexts = encodePlaintexts(await contextFor(params), scale, values);
      // Moved, not copied: a prepared session of a large model is hundreds of MiB of plaintexts.
      return moveReply({ plaintexts }, plaintexts) as EncodeReply;
    }
    const context = await contextFor(task.params);
    const outputs = task.terms.length === 0 ? [] : evaluateProducts(context, task);
    return moveReply({ outputs }, outputs) as ProductReply;
  } catch (e) {
    const known = e instanceof BlindmlError;
    return { error: { code: known ? e.code : 'ERR_INTERNAL', message: known ? e.message.slice(0, 2000) : 'internal error in a CKKS worker' } };
  }
}
