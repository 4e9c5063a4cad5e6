/**
 * The demo page: pick a committed test image or draw one, and get an encrypted prediction. Keys,
 * encryption and decryption live in a Web Worker; this thread only draws. Browser-only.
 *
 * URL parameters: `keyBits` (default 2048), `insecure=1` (allow smaller keys; the server must too),
 * `scheme=ckks` (preselect CKKS).
 *
 * @module
 */
import type { FromWorker, ToWorker, WebScheme } from './messages.js';

interface Samples {
  shape: number[];
  classes: string[];
  labels: number[];
  images: string[];
}
interface PublicModel {
  id: string;
  name: string;
  inputShape: number[];
  outputSize: number;
  rounds: number;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const keyBits = Number(params.get('keyBits') ?? 2048);
const insecure = params.get('insecure') === '1';
const SIZE = 28;

const status = $('status');
const result = $('result');
const predictButton = $<HTMLButtonElement>('predict');
const modelSelect = $<HTMLSelectElement>('model');
const schemeSelect = $<HTMLSelectElement>('scheme');
const draw = $<HTMLCanvasElement>('draw');
const drawCtx = draw.getContext('2d')!;

let classes: string[] = [];
let selected: Float32Array | null = null;
let selectedLabel: number | null = null;
let ready = false;
let nextId = 1;

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const send = (m: ToWorker, transfer: Transferable[] = []) => worker.postMessage(m, transfer);

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function setStatus(text: string): void {
  status.textContent = text;
}

function updateButton(): void {
  // CKKS makes its keys on the first prediction; Paillier's must be ready first.
  predictButton.disabled = !((ready || schemeSelect.value === 'ckks') && selected && modelSelect.value);
}

/** Softmax of the logits (the probabilities a softmax output layer would give). */
function softmax(logits: readonly number[]): number[] {
  const top = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** One row per class: name, probability bar, probability and logit; the predicted class first. */
function scoreTable(logits: readonly number[]): HTMLTableElement {
  const table = document.createElement('table');
  table.id = 'scores';
  const probs = softmax(logits);
  const order = probs.map((p, k) => [p, k] as const).sort((a, b) => b[0] - a[0]);
  for (const [p, k] of order) {
    const tr = document.createElement('tr');
    if (k === order[0]![1]) tr.className = 'top';
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${Math.max(1, Math.round(p * 120))}px`;
    const cells = [classes[k] ?? `class ${k}`, '', `${(100 * p).toFixed(1)}%`, `logit ${logits[k]!.toFixed(3)}`];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      if (i === 1) td.appendChild(bar);
      else td.textContent = text;
      tr.appendChild(td);
    });
    table.appendChild(tr);
  }
  return table;
}

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function paint(canvas: HTMLCanvasElement, pixels: ArrayLike<number>): void {
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(SIZE, SIZE);
  for (let i = 0; i < SIZE * SIZE; i++) {
    const v = Math.round(pixels[i]! * 255);
    img.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
}

function select(pixels: Float32Array, label: number | null, el: HTMLElement | null): void {
  selected = pixels;
  selectedLabel = label;
  document.querySelectorAll('.sample.selected').forEach((c) => c.classList.remove('selected'));
  el?.classList.add('selected');
  paint($<HTMLCanvasElement>('chosen'), pixels);
  $('chosen-label').textContent = label === null ? 'your drawing' : `true class: ${classes[label] ?? label}`;
  updateButton();
}

async function loadSamples(): Promise<void> {
  const s = (await (await fetch('/v1/samples?limit=24')).json()) as Samples;
  classes = s.classes;
  const grid = $('samples');
  s.images.forEach((b64, k) => {
    const pixels = Float32Array.from(fromBase64(b64), (v) => v / 255);
    const c = document.createElement('canvas');
    c.width = SIZE;
    c.height = SIZE;
    c.className = 'sample';
    c.dataset['index'] = String(k);
    c.title = s.classes[s.labels[k]!] ?? '';
    paint(c, pixels);
    c.addEventListener('click', () => select(pixels, s.labels[k]!, c));
    grid.appendChild(c);
  });
}

async function loadModels(): Promise<void> {
  const { models } = (await (await fetch('/v1/models')).json()) as { models: PublicModel[] };
  modelSelect.innerHTML = '';
  for (const m of models.filter((m) => m.inputShape.reduce((a, b) => a * b, 1) === SIZE * SIZE)) {
    const o = document.createElement('option');
    o.value = m.id;
    o.textContent = `${m.name} (${m.id}, ${m.rounds} rounds)`;
    modelSelect.appendChild(o);
  }
  if (!modelSelect.options.length) setStatus('No 28×28 model is registered: a model owner adds one on /owner or with `blindml models add`.');
  updateButton();
}

// --- drawing: white strokes on black, downsampled to 28×28 like Fashion-MNIST ------------------
function clearDrawing(): void {
  drawCtx.fillStyle = '#000';
  drawCtx.fillRect(0, 0, draw.width, draw.height);
}
clearDrawing();
let drawing = false;
const point = (ev: PointerEvent) => {
  const r = draw.getBoundingClientRect();
  return [((ev.clientX - r.left) / r.width) * draw.width, ((ev.clientY - r.top) / r.height) * draw.height] as const;
};
draw.addEventListener('pointerdown', (ev) => {
  drawing = true;
  const [x, y] = point(ev);
  drawCtx.beginPath();
  drawCtx.moveTo(x, y);
});
draw.addEventListener('pointermove', (ev) => {
  if (!drawing) return;
  const [x, y] = point(ev);
  drawCtx.strokeStyle = '#fff';
  drawCtx.lineWidth = draw.width / 10;
  drawCtx.lineCap = 'round';
  drawCtx.lineTo(x, y);
  drawCtx.stroke();
});
window.addEventListener('pointerup', () => (drawing = false));
$('clear').addEventListener('click', clearDrawing);
$('use-drawing').addEventListener('click', () => {
  const small = document.createElement('canvas');
  small.width = SIZE;
  small.height = SIZE;
  const ctx = small.getContext('2d')!;
  ctx.drawImage(draw, 0, 0, SIZE, SIZE);
  const data = ctx.getImageData(0, 0, SIZE, SIZE).data;
  const pixels = new Float32Array(SIZE * SIZE);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.round(data[i * 4]!) / 255;
  select(pixels, null, null);
});

// --- prediction ----------------------------------------------------------------------------------
predictButton.addEventListener('click', () => {
  if (!selected) return;
  const id = nextId++;
  predictButton.disabled = true;
  result.removeAttribute('data-label');
  result.removeAttribute('data-error');
  result.textContent = '';
  setStatus('Encrypting the image in the Web Worker…');
  const pixels = selected.slice();
  send({ type: 'predict', id, scheme: schemeSelect.value as WebScheme, modelId: modelSelect.value, pixels }, [pixels.buffer]);
});

worker.onmessage = (ev: MessageEvent<FromWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case 'ready':
      ready = true;
      setStatus(`${m.keyBits}-bit Paillier key pair generated in the Web Worker in ${(m.keyMs / 1000).toFixed(1)} s. The private key never leaves it.`);
      $('keys').textContent = `${m.keyBits}-bit key ready (${(m.keyMs / 1000).toFixed(1)} s)`;
      updateButton();
      break;
    case 'progress': {
      const what: Record<string, string> = {
        keys: 'Making CKKS keys for this model (first time only) and uploading the public ones…',
        opening: 'Opening a session…',
        encrypting: 'Encrypting the image…',
        evaluating: schemeSelect.value === 'ckks' ? 'The service evaluates the model on CKKS ciphertexts; your browser answers each round…' : 'The service evaluates linear layers on ciphertexts…',
        round: `Activation round ${m.round ?? 0} of ${m.rounds ?? '?'} done (decrypt blinded values, ReLU, re-encrypt)…`,
        decrypting: 'Decrypting the result…',
        done: 'Done.',
      };
      setStatus(`${what[m.phase] ?? m.phase} — sent ${kib(m.bytesSent)}, received ${kib(m.bytesReceived)}`);
      break;
    }
    case 'result': {
      const name = classes[m.label] ?? String(m.label);
      const truth = selectedLabel === null ? '' : selectedLabel === m.label ? ' ✓' : ` (true: ${classes[selectedLabel] ?? selectedLabel})`;
      result.innerHTML = '';
      const h = document.createElement('h2');
      h.textContent = `${name}${truth}`;
      const p = document.createElement('p');
      p.textContent = `${m.scheme === 'ckks' ? 'CKKS' : 'Paillier'}: ${(m.ms / 1000).toFixed(2)} s end to end (client ${(m.clientMs / 1000).toFixed(2)} s), ${m.rounds} rounds, sent ${kib(m.bytesSent)}, received ${kib(m.bytesReceived)}`;
      result.append(h, scoreTable(m.logits), p);
      result.dataset['label'] = String(m.label);
      result.dataset['logits'] = JSON.stringify(m.logits);
      result.dataset['bytesSent'] = String(m.bytesSent);
      result.dataset['ms'] = m.ms.toFixed(0);
      result.dataset['scheme'] = m.scheme;
      setStatus('Done.');
      updateButton();
      break;
    }
    case 'error':
      setStatus(`Error: ${m.message}`);
      result.dataset['error'] = m.message;
      updateButton();
      break;
  }
};

modelSelect.addEventListener('change', updateButton);
schemeSelect.addEventListener('change', updateButton);
if (params.get('scheme') === 'ckks') schemeSelect.value = 'ckks';
send({ type: 'init', url: location.origin, keyBits, insecure });
setStatus(`Generating a ${keyBits}-bit Paillier key pair in a Web Worker…`);
void Promise.all([loadSamples(), loadModels()]).catch((err: unknown) => setStatus(`Cannot load: ${String(err)}`));
