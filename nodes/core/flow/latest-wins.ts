/**
 * Runs one job at a time. A frame arriving while busy takes the single
 * pending slot (the previous pending frame is dropped and counted): latest
 * frame wins, nothing queues without bound. Other messages (photos,
 * commands) queue in order, bounded by `maxQueue`.
 */
export class LatestWins<T> {
  private running = false;
  private pendingFrame: T | null = null;
  private queue: T[] = [];
  dropped = 0;

  constructor(private readonly handle: (item: T) => Promise<void>, private readonly isFrame: (item: T) => boolean,
    private readonly onDrop: (item: T) => void = () => undefined, private readonly maxQueue = 100) {}

  push(item: T): void {
    if (this.isFrame(item)) {
      if (this.pendingFrame) {
        this.dropped++;
        this.onDrop(this.pendingFrame);
      }
      this.pendingFrame = item;
    } else {
      if (this.queue.length >= this.maxQueue) {
        this.dropped++;
        this.onDrop(item);
        return;
      }
      this.queue.push(item);
    }
    void this.pump();
  }

  get busy(): boolean {
    return this.running;
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
