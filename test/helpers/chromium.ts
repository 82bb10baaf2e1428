/**
 * A headless Chromium driven over the DevTools protocol through a pipe
 * (--remote-debugging-pipe: commands on fd 3, replies on fd 4, each message
 * JSON ended by a NUL byte), without a driver library. Enough for the
 * editor tests: open a page, evaluate scripts in it.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Readable, Writable } from 'stream';

const CANDIDATES = [
  process.env.CHROMIUM_PATH,
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
];

/** The Chromium binary, or null (the tests that need it then skip, saying why). */
export function findChromium(): string | null {
  for (const candidate of CANDIDATES) {
    if (candidate && fs.existsSync(candidate) && spawnSync(candidate, ['--version'], { timeout: 20_000 }).status === 0)
      return candidate;
  }
  return null;
}

interface Pending {
  resolve: (value: any) => void;
  reject: (error: Error) => void;
}

export class Chromium {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = '';
  private sessionId = '';

  private constructor(
    private readonly proc: ChildProcess,
    private readonly profile: string,
  ) {
    const output = proc.stdio[4] as Readable;
    output.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      let end: number;
      while ((end = this.buffer.indexOf('\0')) >= 0) {
        const message = JSON.parse(this.buffer.slice(0, end)) as {
          id?: number;
          result?: unknown;
          error?: { message: string };
        };
        this.buffer = this.buffer.slice(end + 1);
        const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
        if (!waiting) continue;
        this.pending.delete(message.id!);
        if (message.error) waiting.reject(new Error(message.error.message));
        else waiting.resolve(message.result);
      }
    });
  }

  /** Starts Chromium with a fresh profile and opens one blank page. */
  static async launch(binary: string): Promise<Chromium> {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-chromium-'));
    const proc = spawn(
      binary,
      [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--remote-debugging-pipe',
        `--user-data-dir=${profile}`,
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] },
    );
    const browser = new Chromium(proc, profile);
    const { targetId } = await browser.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await browser.send('Target.attachToTarget', { targetId, flatten: true });
    browser.sessionId = sessionId;
    await browser.send('Runtime.enable', {}, true);
    return browser;
  }

  send(method: string, params: Record<string, unknown> = {}, inPage = false): Promise<any> {
    const id = this.nextId++;
    const input = this.proc.stdio[3] as Writable;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      input.write(`${JSON.stringify({ id, method, params, ...(inPage ? { sessionId: this.sessionId } : {}) })}\0`);
    });
  }

  async navigate(url: string): Promise<void> {
    await this.send('Page.navigate', { url }, true);
  }

  /** Evaluates an expression in the page (promises awaited) and returns its value. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const reply = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, true);
    if (reply.exceptionDetails)
      throw new Error(`in the page: ${reply.exceptionDetails.exception?.description ?? reply.exceptionDetails.text}`);
    return reply.result.value as T;
  }

  /** Polls an expression until it is truthy. */
  async waitFor(expression: string, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (await this.evaluate<boolean>(`!!(${expression})`)) return;
      } catch {
        // the page is still loading
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) resolve();
      else this.proc.once('exit', () => resolve());
    });
    this.send('Browser.close').catch(() => undefined);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}
