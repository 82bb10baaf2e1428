/**
 * A warning that may repeat for as long as a problem lasts (a camera that
 * refuses its password, a bound that stays reached): logged the first time,
 * then at most once per interval with the count of repeats held back, so the
 * log says it is still going on without filling up. A different warning (a
 * new cause) is logged at once.
 */
export class RepeatedWarning {
  private lastKey: string | null = null;
  private lastLoggedAt = -Infinity;
  private held = 0;

  constructor(readonly intervalMs: number) {}

  /**
   * Whether to log `key` now: null to stay quiet, or how many times it came
   * since it was last logged (0 the first time).
   */
  next(key: string, nowMs: number): { repeats: number } | null {
    if (key !== this.lastKey || nowMs - this.lastLoggedAt >= this.intervalMs) {
      const repeats = key === this.lastKey ? this.held : 0;
      this.lastKey = key;
      this.lastLoggedAt = nowMs;
      this.held = 0;
      return { repeats };
    }
    this.held++;
    return null;
  }

  /** The problem is over: the next warning, even the same one, is logged at once. */
  reset(): void {
    this.lastKey = null;
    this.lastLoggedAt = -Infinity;
    this.held = 0;
  }
}
