/**
 * Mocha root hooks (.mocharc.json `require`): after the last test, the run
 * must end by itself. A timer, which holds nothing open itself, waits a grace
 * period; if the process is still alive when it fires, something leaked (a
 * socket, a child process, a server, a timer): it prints what is still open
 * and fails the run, instead of hanging CI until its time limit.
 *
 * CORAL_LEAKS=why also records where each handle was created
 * (why-is-node-running, loaded before any test so it sees them all; it slows
 * the run). CORAL_LEAK_GRACE_MS sets the grace period (default 10000).
 */
const GRACE_MS = Number(process.env.CORAL_LEAK_GRACE_MS) || 10000;

type WhyIsNodeRunning = (logger?: { error(...args: unknown[]): void }) => void;

let why: WhyIsNodeRunning | null = null;
if (process.env.CORAL_LEAKS === 'why') {
  try {
    // An ES module: Node >= 20.19 requires it like CommonJS.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    why = (require('why-is-node-running') as { default: WhyIsNodeRunning }).default;
  } catch (error) {
    process.stderr.write(`CORAL_LEAKS=why needs why-is-node-running and Node >= 20.19: ${(error as Error).message}\n`);
  }
}

/** Child processes, sockets and servers still open, described (timers have no handle to describe). */
function describeHandles(): string[] {
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  return handles.flatMap((handle) => {
    const h = handle as {
      constructor?: { name?: string };
      pid?: number;
      spawnargs?: string[];
      remoteAddress?: string;
      remotePort?: number;
      address?: () => unknown;
      fd?: number;
    };
    const kind = h.constructor?.name ?? typeof handle;
    if (kind === 'ChildProcess') return [`child process ${h.pid}: ${(h.spawnargs ?? []).join(' ').slice(0, 200)}`];
    if (kind === 'Socket' && h.remoteAddress) return [`socket to ${h.remoteAddress}:${h.remotePort}`];
    if (kind === 'Server' && typeof h.address === 'function') return [`server on ${JSON.stringify(h.address())}`];
    // The test runner's own stdout/stderr.
    if (
      (kind === 'WriteStream' || kind === 'Socket' || kind === 'ReadStream') &&
      (h.fd === 1 || h.fd === 2 || h.fd === 0)
    )
      return [];
    return [kind];
  });
}

/**
 * why-is-node-running's report, kept to the kinds of resource still open: it
 * also lists file handles, DNS channels and closed sockets, which hold nothing.
 */
function creationStacks(report: WhyIsNodeRunning, open: string[]): string {
  // The two APIs name the same resources differently: PipeWrap / PIPEWRAP, TCPSocketWrap / TCPWRAP.
  const kind = (name: string) => name.toUpperCase().replace(/(SOCKET)?WRAP$/, '');
  const active = new Set(open.map(kind));
  const lines: string[] = [];
  report({ error: (...args: unknown[]) => lines.push(args.join(' ')) });
  const blocks = lines
    .join('\n')
    .split(/\n(?=# )/)
    .slice(1);
  const holding = blocks.filter(
    (block) => active.has(kind(/^# (\S+)/.exec(block)?.[1] ?? '')) && !block.includes('(unknown stack trace)'),
  );
  return holding.length ? `Created at:\n${holding.join('\n')}\n` : '';
}

export const mochaHooks = {
  afterAll(): void {
    const timer = setTimeout(() => {
      const resources = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
      process.stderr.write(
        `\nThe test run did not exit ${GRACE_MS / 1000} s after the last test. Still open: ${resources.join(', ')}\n` +
          describeHandles()
            .map((line) => `  ${line}\n`)
            .join('') +
          (why ? '' : 'Run with CORAL_LEAKS=why to see where each was created.\n'),
      );
      if (why) process.stderr.write(creationStacks(why, resources));
      // Mocha sets the exit code from the failures in its own 'exit' listener; this one runs after it.
      process.on('exit', () => {
        process.exitCode = Math.max(Number(process.exitCode) || 0, 1);
      });
      process.exit(1);
    }, GRACE_MS);
    timer.unref();
  },
};
