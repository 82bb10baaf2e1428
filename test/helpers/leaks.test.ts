/** The leak hook (test/helpers/leaks.ts) on two tiny runs of mocha: one that leaks a timer, one that does not. */
import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const HOOK = path.join(__dirname, 'leaks.js');
const MOCHA = require.resolve('mocha/bin/mocha.js');

function runMocha(spec: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-leaks-'));
  const file = path.join(dir, 'probe.spec.js');
  fs.writeFileSync(file, spec);
  const started = Date.now();
  const child = spawn(process.execPath, [MOCHA, '--no-config', '--require', HOOK, file], {
    env: { ...process.env, CORAL_LEAK_GRACE_MS: '300', CORAL_LEAKS: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code, stderr, ms: Date.now() - started });
    });
  });
}

describe('test helpers: the leak hook', function () {
  this.timeout(60000);

  it('fails a run that a leaked timer keeps alive, and says what is open', async () => {
    const run = await runMocha("it('leaks', () => { setTimeout(() => undefined, 60000); });\n");
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /did not exit 0\.3 s after the last test\. Still open: .*Timeout/);
    assert.ok(run.ms < 30000, `${run.ms} ms`);
  });

  it('lets a clean run exit by itself, with its own exit code', async () => {
    const clean = await runMocha("it('is clean', () => undefined);\n");
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.stderr, /did not exit/);
    const failing = await runMocha("it('fails', () => { throw new Error('no'); });\n");
    assert.equal(failing.code, 1);
    assert.doesNotMatch(failing.stderr, /did not exit/);
  });
});
