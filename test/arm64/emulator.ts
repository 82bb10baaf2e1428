/**
 * Runs Node.js programs of this checkout on other CPUs with Debian's
 * qemu-user (no binfmt_misc needed, so it works in a container):
 * - arm64: Debian bookworm's arm64 Node.js from a root that
 *   test/arm64/make-root.sh unpacks (qemu-aarch64 -L <root>);
 * - x64 without AVX: this machine's own node under qemu-x86_64 -cpu Nehalem,
 *   which raises SIGILL on any AVX instruction.
 * Both set PREBUILDS_ONLY=1, so node-gyp-build loads the shipped prebuilt
 * addon (native/prebuilds/), never the developer's native/build.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findRepoRoot } from '../helpers/fake-edgetpu';

export const ROOT = findRepoRoot();

export function arm64Root(): string {
  return process.env.CORAL_FACE_ARM64_ROOT ?? path.join(os.homedir(), '.cache', 'coral-face', 'arm64-bookworm');
}

/** sharp's arm64 binaries, put there by make-root.sh and found through NODE_PATH. */
export function arm64Modules(): string {
  return path.join(arm64Root(), 'opt', 'coral-face', 'node_modules');
}

export function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, command)));
}

/** What is missing to run the emulated tests, as the commands that install it; empty when all is there. */
export function missingForEmulation(): string[] {
  const missing: string[] = [];
  if (!onPath('qemu-aarch64') || !onPath('qemu-x86_64')) missing.push('apt-get install -y qemu-user');
  if (!onPath('aarch64-linux-gnu-gcc')) missing.push('apt-get install -y g++-aarch64-linux-gnu');
  if (!fs.existsSync(path.join(arm64Root(), 'usr', 'bin', 'node')) || !fs.existsSync(arm64Modules()))
    missing.push('test/arm64/make-root.sh (needs debootstrap)');
  for (const platform of ['linux-x64', 'linux-arm64']) {
    if (!fs.existsSync(path.join(ROOT, 'native', 'prebuilds', platform, 'coral_face_native.napi.glibc.node')))
      missing.push('npm run prebuilds');
  }
  return [...new Set(missing)];
}

export type Machine = 'x64' | 'x64-no-avx' | 'arm64';

/**
 * A wrapper that starts the arm64 node under qemu. Programs under test fork
 * children with process.execPath (the Edge TPU host): exec-wrapper.js points
 * it here, since without binfmt_misc the kernel cannot exec an arm64 binary.
 */
export function arm64NodeWrapper(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-arm64-node-'));
  const wrapper = path.join(dir, 'node');
  const root = arm64Root();
  // qemu reports a guest's fatal signal on stderr ("qemu: uncaught target
  // signal 6 (Aborted) - core dumped"); a real arm64 machine prints no such
  // line, and the Edge TPU supervisor quotes the child's last error line.
  fs.writeFileSync(
    wrapper,
    `#!/bin/bash
exec qemu-aarch64 -L '${root}' '${path.join(root, 'usr', 'bin', 'node')}' "$@" 2> >(grep --line-buffered -v '^qemu: uncaught target signal' >&2)
`,
    { mode: 0o755 },
  );
  return wrapper;
}

export function commandFor(machine: Machine, nodeArgs: string[]): { command: string; args: string[] } {
  switch (machine) {
    case 'x64':
      return { command: process.execPath, args: nodeArgs };
    case 'x64-no-avx':
      return { command: 'qemu-x86_64', args: ['-cpu', 'Nehalem', process.execPath, ...nodeArgs] };
    case 'arm64': {
      const root = arm64Root();
      return { command: 'qemu-aarch64', args: ['-L', root, path.join(root, 'usr', 'bin', 'node'), ...nodeArgs] };
    }
  }
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs node with `nodeArgs` on `machine`, from the repository root. */
export function runNode(
  machine: Machine,
  nodeArgs: string[],
  env: Record<string, string> = {},
  timeoutMs = 15 * 60_000,
): Promise<RunResult> {
  const { command, args } = commandFor(machine, nodeArgs);
  const started = Date.now();
  if (machine === 'arm64') env = { NODE_PATH: arm64Modules(), ...env };
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, PREBUILDS_ONLY: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}
