/**
 * Generated junk for every route and frame type of the service (fast-check arbitraries), and a
 * runner that sends it and classifies the answers. Used by `test/server/junk.test.ts` (a few
 * hundred cases in `npm test`) and `npm run bench:junk` (10,000 or more).
 *
 * Each case is a well-formed message with one part spoiled, or plain random bytes: Paillier frames
 * (every message type, wrong versions, lengths, descriptors, ciphertexts 0, n, n², huge), CKKS
 * frames (deep or wide headers, blob tables out of range), owner requests with no, wrong or right
 * keys and junk bodies, odd ids and query strings, text and binary WebSocket frames.
 *
 * @module
 */
import fc from 'fast-check';
import WebSocket from 'ws';

/** One request the runner sends. */
export type JunkRequest =
  | { readonly kind: 'http'; readonly method: 'GET' | 'POST' | 'DELETE'; readonly path: string; readonly body?: Uint8Array; readonly headers: Record<string, string> }
  | { readonly kind: 'ws'; readonly frames: readonly (Uint8Array | string)[] };

/** What the service is fed: its model id, the owner key and a client modulus. */
export interface JunkTarget {
  readonly modelId: string;
  readonly apiKey: string;
  /** A client modulus (base64url) the service accepts, and its value. */
  readonly n: bigint;
  readonly nB64: string;
}

const enc = new TextEncoder();

function frame(magic: string, header: unknown, tail: Uint8Array = new Uint8Array(0), lengthDelta = 0): Uint8Array {
  const h = enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + tail.length);
  out.set(enc.encode(magic), 0);
  new DataView(out.buffer).setUint32(4, Math.max(0, h.length + lengthDelta) >>> 0);
  out.set(h, 8);
  out.set(tail, 8 + h.length);
  return out;
}

function bigBytes(x: bigint, width: number): Uint8Array {
  const out = new Uint8Array(width);
  for (let i = width - 1; i >= 0 && x > 0n; i--, x >>= 8n) out[i] = Number(x & 0xffn);
  return out;
}

/** Paillier protocol frames (BMLM), each spoiled in one way. */
function paillierFrame(t: JunkTarget): fc.Arbitrary<Uint8Array> {
  const width = 2 * Math.ceil(t.n.toString(2).length / 8);
  const sessionId = fc.oneof(fc.constant('0123456789abcdef'), fc.string({ minLength: 0, maxLength: 120 }), fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex')));
  const ct = fc.oneof(fc.constant(0n), fc.constant(1n), fc.constant(t.n), fc.constant(t.n * t.n), fc.constant(t.n * t.n - 1n), fc.bigInt({ min: 0n, max: t.n * t.n }));
  const type = fc.constantFrom('open', 'opened', 'input', 'activate', 'activated', 'result', 'close', 'closed', 'error', 'nope');
  const header = fc.record({
    v: fc.oneof(fc.constant(1), fc.integer(), fc.constant('1')),
    type,
    modelId: fc.oneof(fc.constant(t.modelId), fc.string({ maxLength: 300 })),
    n: fc.oneof(fc.constant(t.nB64), fc.constant('AQAB'), fc.constant('!!'), fc.string({ maxLength: 50 })),
    mode: fc.constantFrom('latency', 'batch', 'x'),
    batch: fc.integer({ min: -5, max: 10_000 }),
    sessionId,
    samples: fc.integer({ min: -1, max: 5 }),
    round: fc.integer({ min: -1, max: 5 }),
  }, { requiredKeys: ['v', 'type'] });
  const withCts = fc.tuple(header, fc.array(ct, { maxLength: 6 }), fc.integer({ min: -2, max: 2 })).map(([h, cts, widthDelta]) => {
    const w = Math.max(1, width + widthDelta);
    const tail = new Uint8Array(cts.length * w);
    cts.forEach((c, i) => tail.set(bigBytes(c, w).subarray(0, w), i * w));
    return frame('BMLM', { ...h, ct: { count: cts.length, width: w } }, tail);
  });
  return fc.oneof(
    withCts,
    header.map((h) => frame('BMLM', h)),
    fc.tuple(header, fc.integer({ min: -20, max: 20 })).map(([h, d]) => frame('BMLM', h, new Uint8Array(0), d)),
    fc.string({ maxLength: 200 }).map((s) => frame('BMLM', s)),
    fc.uint8Array({ maxLength: 300 }),
  );
}

/** CKKS protocol frames (BMLC): headers of any shape, blob tables that do not add up. */
function ckksFrame(): fc.Arbitrary<Uint8Array> {
  const json = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    fc.integer({ min: 1, max: 50_000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
    fc.integer({ min: 1, max: 20_000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
    fc.record({ version: fc.constantFrom(1, 2), keyId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex')), sessionId: fc.string({ maxLength: 40 }), stage: fc.integer({ min: -1, max: 9 }), inputs: fc.constant([[{ $blob: 0 }]]), publicKey: fc.constant({ $blob: 0 }), galoisKeys: fc.constant({ $blob: 1 }) }).map((v) => JSON.stringify(v)),
  );
  const blobs = fc.array(fc.tuple(fc.constantFrom(0, 1, 2, 9), fc.uint8Array({ maxLength: 64 }), fc.integer({ min: -3, max: 3 })), { maxLength: 3 }).map((list) => {
    const parts: number[] = [];
    const count = new Uint8Array(4);
    new DataView(count.buffer).setUint32(0, list.length);
    parts.push(...count);
    for (const [kind, bytes, delta] of list) {
      const head = new Uint8Array(5);
      head[0] = kind;
      new DataView(head.buffer).setUint32(1, Math.max(0, bytes.length + delta));
      parts.push(...head, ...bytes);
    }
    return Uint8Array.from(parts);
  });
  return fc.oneof(fc.tuple(json, blobs).map(([h, tail]) => frame('BMLC', h, tail)), fc.uint8Array({ maxLength: 300 }));
}

/** Every route, with junk. */
export function junkRequest(t: JunkTarget): fc.Arbitrary<JunkRequest> {
  const octet = { 'content-type': 'application/octet-stream' };
  const key = fc.constantFrom<Record<string, string>>({}, { authorization: `Bearer ${t.apiKey}` }, { authorization: 'Bearer wrong' }, { 'x-api-key': '' }, { authorization: 'Basic xyz' });
  const id = fc.oneof(fc.constant(t.modelId), fc.string({ maxLength: 80 }).map(encodeURIComponent), fc.constant('%00'), fc.constant('..%2F..%2Fetc'));
  const step = fc.constantFrom('describe', 'keys', 'open', 'round', 'nope', '');
  return fc.oneof(
    paillierFrame(t).map((body): JunkRequest => ({ kind: 'http', method: 'POST', path: '/v1/paillier', body, headers: octet })),
    fc.tuple(id, step, ckksFrame()).map(([m, s, body]): JunkRequest => ({ kind: 'http', method: 'POST', path: `/v1/ckks/${m}/${s}`, body, headers: octet })),
    fc.tuple(key, fc.uint8Array({ maxLength: 400 }), fc.constantFrom('application/octet-stream', 'application/json', 'text/plain')).map(([k, body, type]): JunkRequest => ({ kind: 'http', method: 'POST', path: '/v1/models?name=junk', body, headers: { ...k, 'content-type': type } })),
    fc.tuple(key, fc.jsonValue({ maxDepth: 3 })).map(([k, v]): JunkRequest => ({ kind: 'http', method: 'POST', path: '/v1/models', body: enc.encode(JSON.stringify(v)), headers: { ...k, 'content-type': 'application/json' } })),
    fc.tuple(key, id).map(([k, m]): JunkRequest => ({ kind: 'http', method: 'GET', path: `/v1/models/${m}`, headers: k })),
    fc.tuple(key, id).map(([k, m]): JunkRequest => ({ kind: 'http', method: 'DELETE', path: `/v1/models/${m === t.modelId ? 'not-this-one' : m}`, headers: k })),
    fc.string({ maxLength: 30 }).map((q): JunkRequest => ({ kind: 'http', method: 'GET', path: `/v1/samples?limit=${encodeURIComponent(q)}`, headers: {} })),
    fc.string({ maxLength: 40 }).map((f): JunkRequest => ({ kind: 'http', method: 'GET', path: `/assets/${encodeURIComponent(f)}`, headers: {} })),
    fc.array(fc.oneof(paillierFrame(t), fc.string({ maxLength: 50 })), { minLength: 1, maxLength: 4 }).map((frames): JunkRequest => ({ kind: 'ws', frames })),
  );
}

/** What came back: HTTP statuses, or for WebSocket frames 200 per reply and the close code. */
export interface JunkOutcome {
  readonly statuses: number[];
  /** A WebSocket closed by the server (code), if it did. */
  readonly closeCode?: number;
}

/**
 * Sends one junk request and collects the answers.
 *
 * @throws when the service cannot be reached at all (a crash).
 */
export async function sendJunk(baseUrl: string, r: JunkRequest): Promise<JunkOutcome> {
  if (r.kind === 'http') {
    const res = await fetch(`${baseUrl}${r.path}`, { method: r.method, headers: r.headers, ...(r.body ? { body: r.body as Uint8Array<ArrayBuffer> } : {}) });
    await res.arrayBuffer();
    return { statuses: [res.status] };
  }
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/ws`);
  const statuses: number[] = [];
  let closeCode: number | undefined;
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      for (const f of r.frames) ws.send(f);
    });
    ws.on('message', () => {
      statuses.push(200);
      if (statuses.length === r.frames.length) ws.close();
    });
    ws.once('close', (code: number) => {
      if (code !== 1000 && code !== 1005) closeCode = code;
      resolve();
    });
    ws.once('error', reject);
  });
  return { statuses, ...(closeCode !== undefined ? { closeCode } : {}) };
}
