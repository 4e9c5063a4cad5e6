/**
 * Live interoperability with python-paillier's pheutil, both ways, for every command (not part of
 * `npm test`: it needs Python with click and a python-paillier checkout).
 *
 *   PHE_PATH=/path/to/python-paillier npm run test:interop      (PYTHON picks the interpreter)
 *
 * For keys made by each tool, every operation runs in both tools on the same input files, and
 * every result is decrypted by both tools: all four printed numbers must be identical, as must
 * the progress lines both tools write to stderr and the public key files both extract.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliProcess } from '../helpers/cli.js';

const PHE_PATH = process.env['PHE_PATH'] ?? '';
const PYTHON = process.env['PYTHON'] ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
let dir = '';
const at = (name: string): string => join(dir, name);
const read = (name: string): string => readFileSync(at(name), 'utf8');

interface Ran {
  lines: string[];
}

function pheutil(...args: string[]): Ran {
  const done = spawnSync(PYTHON, ['-c', 'from phe.command_line import cli; cli(prog_name="pheutil")', ...args], {
    cwd: dir,
    env: { ...process.env, PYTHONPATH: PHE_PATH },
    encoding: 'utf8',
  });
  assert.equal(done.status, 0, `pheutil ${args.join(' ')}: ${done.stderr}`);
  return { lines: done.stderr.split('\n').filter((l) => l !== '') };
}

async function blindml(...args: string[]): Promise<Ran> {
  const r = await runCli(['paillier', ...args]);
  assert.equal(r.code, 0, `blindml paillier ${args.join(' ')}: ${r.stderr}`);
  return r;
}

type Tool = 'pheutil' | 'blindml';
const TOOLS: Tool[] = ['pheutil', 'blindml'];
const run = (tool: Tool, args: string[]): Promise<Ran> =>
  tool === 'pheutil' ? Promise.resolve(pheutil(...args)) : blindml(...args);

/** Both tools' decryption of `file` under `priv`; asserts they print the same and returns it. */
async function decryptBoth(priv: string, file: string): Promise<string> {
  const theirs = pheutil('decrypt', '--output', at('p.txt'), priv, file);
  const ours = await blindml('decrypt', '--output', at('b.txt'), priv, file);
  assert.equal(read('b.txt'), read('p.txt'), `decrypt ${file}`);
  assert.deepEqual(ours.lines, theirs.lines, `decrypt ${file} log`);
  return read('p.txt');
}

before(() => {
  assert.ok(PHE_PATH !== '' && existsSync(join(PHE_PATH, 'phe')), 'set PHE_PATH to a python-paillier checkout (the directory containing phe/)');
  dir = mkdtempSync(join(tmpdir(), 'blindml-interop-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const PLAINTEXTS = ['3.14', '-7', '1e-05', '123456789.125', '1e100', '0', '-2.5e-8', '1e-30'];
const ADDENDS = ['2.5', '-1e10', '1e-30'];
const FACTORS = ['3', '-0.125', '1e-3', '1e200'];

for (const maker of TOOLS) {
  test(`keys made by ${maker}: every command in both tools gives the same numbers`, async () => {
    const k = at(`${maker}-key.json`);
    const pub = at(`${maker}-pub.json`);
    const gen = await run(maker, ['genpkey', '--keysize', '2048', k]);
    assert.deepEqual(gen.lines.slice(0, 2), ['Generating a paillier keypair with keysize of 2048', 'Keys generated']);

    // extract: both tools write the same public key file, with the same log.
    const logs = await Promise.all(TOOLS.map((t) => run(t, ['extract', k, `${pub}.${t}`])));
    assert.equal(readFileSync(`${pub}.blindml`, 'utf8'), readFileSync(`${pub}.pheutil`, 'utf8'));
    assert.deepEqual(logs[1]!.lines.slice(0, 1), logs[0]!.lines.slice(0, 1));
    await blindml('extract', k, pub);

    // encrypt: each tool encrypts; both decrypt each to the same text pheutil prints for a float.
    const enc = (tool: Tool, i: number): string => at(`${maker}-enc-${tool}-${i}.json`);
    for (const [i, text] of PLAINTEXTS.entries()) {
      const printed: string[] = [];
      for (const tool of TOOLS) {
        const r = await run(tool, ['encrypt', '--output', enc(tool, i), pub, '--', text]);
        assert.equal(r.lines[0], 'Loading public key');
        printed.push(await decryptBoth(k, enc(tool, i)));
      }
      assert.equal(printed[0], printed[1], `encrypt ${text}`);
    }

    // add, multiply, addenc: each tool on ciphertexts from both tools; four decryptions agree.
    const jobs: { name: string; args: (out: string) => string[] }[] = [];
    for (const src of TOOLS) {
      for (const [i] of PLAINTEXTS.entries()) {
        for (const a of ADDENDS) jobs.push({ name: `add ${src}#${i} ${a}`, args: (o) => ['add', '--output', o, pub, enc(src, i), '--', a] });
        for (const f of FACTORS) jobs.push({ name: `multiply ${src}#${i} ${f}`, args: (o) => ['multiply', '--output', o, pub, enc(src, i), '--', f] });
      }
    }
    for (const [i] of PLAINTEXTS.entries()) {
      const j = (i + 3) % PLAINTEXTS.length;
      jobs.push({ name: `addenc pheutil#${i} blindml#${j}`, args: (o) => ['addenc', '--output', o, pub, enc('pheutil', i), enc('blindml', j)] });
    }
    for (const job of jobs) {
      const results: string[] = [];
      const logs: string[][] = [];
      for (const tool of TOOLS) {
        const out = at(`${maker}-out-${tool}.json`);
        logs.push((await run(tool, job.args(out))).lines);
        results.push(await decryptBoth(k, out));
        const e = (JSON.parse(readFileSync(out, 'utf8')) as { e: number }).e;
        results.push(`e=${e}`);
      }
      assert.deepEqual(results.slice(2), results.slice(0, 2), job.name);
      assert.deepEqual(logs[1], logs[0], `${job.name} log`);
    }
  });
}

test('blindml reads pheutil files from stdin and writes to stdout as pheutil does (child processes)', () => {
  pheutil('genpkey', '--keysize', '2048', 'std-key.json');
  pheutil('extract', 'std-key.json', 'std-pub.json');
  const enc = runCliProcess(['paillier', 'encrypt', at('std-pub.json'), '-42.5']);
  assert.equal(enc.code, 0, enc.stderr);
  const dec = runCliProcess(['paillier', 'decrypt', at('std-key.json'), '-'], { input: enc.stdout });
  assert.deepEqual([dec.code, dec.stdout], [0, '-42.5\n']);
  const done = spawnSync(PYTHON, ['-c', 'from phe.command_line import cli; cli(prog_name="pheutil")', 'decrypt', 'std-key.json', '-'], {
    cwd: dir,
    env: { ...process.env, PYTHONPATH: PHE_PATH },
    input: enc.stdout,
    encoding: 'utf8',
  });
  assert.equal(done.stdout, '-42.5\n');
});
