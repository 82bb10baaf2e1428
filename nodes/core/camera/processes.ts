/**
 * Every ffmpeg this process started, so that none outlives it: a process
 * 'exit' hook SIGKILLs whatever is still running (see source.ts for what
 * happens when Node dies without running exit hooks).
 */
import type { ChildProcess } from 'child_process';

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every ffmpeg still running when Node exits: 'exit' handlers must be synchronous, SIGKILL is. */
export function trackChild(child: ChildProcess): void {
  liveChildren.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of liveChildren) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
}

/** The child has exited: nothing left to kill. */
export function untrackChild(child: ChildProcess): void {
  liveChildren.delete(child);
}
