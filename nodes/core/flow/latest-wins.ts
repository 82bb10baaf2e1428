/**
 * Runs one job at a time. A frame arriving while busy takes the single
 * pending slot (the previous pending frame is dropped and counted): latest
 * frame wins, nothing queues without bound. Other messages (photos,
 * commands) queue in order, up to `maxQueue`; beyond that push() refuses
 * them (returns false) so the caller can fail each one with an error: a
 * photo is never dropped silently.
 */
/** Messages other than frames waiting at most, per node. */
export const DEFAULT_MAX_QUEUE = 100;

export class LatestWins<T> {
  private running = false;
  private pendingFrame: T | null = null;
  private queue: T[] = [];
  /** Frames replaced by a newer one before they were handled. */
  dropped = 0;
  /** Other messages refused because the queue was full. */
  refused = 0;

  constructor(
    private readonly handle: (item: T) => Promise<void>,
    private readonly isFrame: (item: T) => boolean,
    private readonly onDrop: (item: T) => void = () => undefined,
    readonly maxQueue = DEFAULT_MAX_QUEUE,
  ) {}

  /** Takes the item; false when it is not a frame and the queue is full (the caller owns the item then). */
  push(item: T): boolean {
    if (this.isFrame(item)) {
      if (this.pendingFrame) {
        this.dropped++;
        this.onDrop(this.pendingFrame);
      }
      this.pendingFrame = item;
    } else {
      if (this.queue.length >= this.maxQueue) {
        this.refused++;
        return false;
      }
      this.queue.push(item);
    }
    void this.pump();
    return true;
  }

  get busy(): boolean {
    return this.running;
  }

  /** Messages waiting (not counting the one being handled nor the pending frame). */
  get queued(): number {
    return this.queue.length;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const next = this.queue.shift() ?? this.pendingFrame;
        if (next === null || next === undefined) break;
        if (next === this.pendingFrame) this.pendingFrame = null;
        await this.handle(next);
      }
    } finally {
      this.running = false;
    }
  }
}
