/**
 * Preloaded (node -r) into the emulated arm64 node that runs mocha:
 * - child processes that the code under test forks with process.execPath
 *   (the Edge TPU host) go through the qemu wrapper that emulator.ts writes,
 *   because without binfmt_misc the kernel cannot exec an arm64 binary itself
 *   (forked children inherit the -r, so theirs do too);
 * - with CORAL_FACE_TIMEOUT_SCALE, every mocha timeout, including the ones the
 *   tests set themselves, is that many times longer: one emulated inference
 *   takes 10-50 times as long as on the host.
 */
if (process.env.CORAL_FACE_NODE_WRAPPER) process.execPath = process.env.CORAL_FACE_NODE_WRAPPER;

const scale = Number(process.env.CORAL_FACE_TIMEOUT_SCALE ?? 1);
if (scale > 1 && /mocha/.test(process.argv[1] ?? '')) {
  type WithTimeout = { timeout(this: unknown, ms?: number | string): unknown };
  for (const file of ['mocha/lib/runnable', 'mocha/lib/suite']) {
    let proto: WithTimeout;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      proto = (require(file) as { prototype: WithTimeout }).prototype;
    } catch {
      continue;
    }
    // Called with the runnable's own this below.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const original = proto.timeout;
    proto.timeout = function (this: unknown, ...args: [(number | string)?]) {
      if (args.length === 0) return original.call(this);
      const [ms] = args;
      return original.call(this, typeof ms === 'number' && ms > 0 ? ms * scale : ms);
    };
  }
}
