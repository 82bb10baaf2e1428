/**
 * Runs async jobs one at a time, in order. One runtime runs one inference at
 * a time anyway; queueing here instead of in native code keeps the libuv
 * thread pool free for file and DNS work while invokes wait.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /** Jobs queued or running. */
  get pending(): number {
    return this.waiting;
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    this.waiting++;
    const result = this.tail.then(job).finally(() => {
      this.waiting--;
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}
