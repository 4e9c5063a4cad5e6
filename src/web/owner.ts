/**
 * The model owner page: list, upload and remove models with the owner API key. Without an
 * accepted key it shows the public list only, with no remove buttons. Browser-only.
 *
 * @module
 */
import { listModels, registerModel, removeModel, type ModelInfo } from '../client/owner.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const keyInput = $<HTMLInputElement>('api-key');
const status = $('status');
const table = $('models');
keyInput.value = sessionStorage.getItem('blindml-api-key') ?? '';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The table; remove buttons only for the owner (a key the service accepted). */
function render(models: ModelInfo[], owner: boolean): void {
  table.innerHTML = '<tr><th>id</th><th>name</th><th>input → output</th><th>rounds</th><th>size</th><th>calibration</th><th>registered</th><th></th></tr>';
  for (const m of models) {
    const tr = document.createElement('tr');
    tr.dataset['id'] = m.id;
    const cells = [m.id, m.name, `[${m.inputShape.join('×')}] → ${m.outputSize}`, String(m.rounds), m.bytes ? `${(m.bytes / 1024).toFixed(0)} KiB` : '', m.calibration ? `${m.calibration} (${m.calibrationSamples})` : '', m.createdAt ?? ''];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.appendChild(td);
    }
    table.appendChild(tr);
    if (!owner) continue;
    const td = document.createElement('td');
    const rm = document.createElement('button');
    rm.textContent = 'remove';
    rm.addEventListener('click', () => {
      if (!confirm(`Remove model ${m.id}?`)) return;
      removeModel(location.origin, keyInput.value, m.id).then(refresh, (err: unknown) => (status.textContent = message(err)));
    });
    td.appendChild(rm);
    tr.appendChild(td);
  }
}

async function refresh(): Promise<void> {
  sessionStorage.setItem('blindml-api-key', keyInput.value);
  try {
    const owner = keyInput.value !== '';
    const models = await listModels(location.origin, keyInput.value || undefined);
    render(models, owner);
    status.textContent = `${models.length} model(s)${owner ? '' : ' (public view: enter the owner API key to see details and remove models)'}`;
  } catch (err) {
    render([], false);
    status.textContent = message(err);
  }
}

$('refresh').addEventListener('click', () => void refresh());
$<HTMLFormElement>('upload').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const file = $<HTMLInputElement>('file').files?.[0];
  const calib = $<HTMLInputElement>('calibration').files?.[0];
  if (!file) return;
  status.textContent = `Uploading ${file.name}; the service compiles it…`;
  void (async () => {
    try {
      const onnx = new Uint8Array(await file.arrayBuffer());
      const calibration = calib ? new Uint8Array(await calib.arrayBuffer()) : undefined;
      const { model, created } = await registerModel(location.origin, keyInput.value, onnx, { name: file.name.replace(/\.onnx$/, ''), ...(calibration ? { calibration } : {}) });
      status.textContent = `${created ? 'Registered' : 'Already registered'}: ${model.id}`;
      await refresh();
    } catch (err) {
      status.textContent = message(err);
    }
  })();
});
void refresh();
