/**
 * Who is present per device, from visit events: ON at `recognized`, OFF when
 * the person's last open track on that camera has `left`, or `offDelayMs`
 * after the latest `recognized` (mirroring HA's off_delay, which each new ON
 * restarts), so the retained state on the broker is the truth a restarted HA
 * reads back. Tracks are matched by track id: a `left` for a renamed person
 * still closes their visit.
 */
export class PresenceTracker {
  private readonly tracks = new Map<string, Map<string, string>>(); // device → trackId → personId
  private readonly on = new Map<string, Set<string>>(); // device → personIds ON
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly offDelayMs: number,
    private readonly changed: (deviceId: string, personId: string, on: boolean) => void,
  ) {}

  recognized(deviceId: string, personId: string, trackId: string): void {
    const tracks = this.tracksOf(deviceId);
    const before = tracks.get(trackId);
    // A corrected track (its 'left' lost or never wired): the person it named before is not here on its account.
    if (before !== undefined && before !== personId) this.left(deviceId, trackId);
    tracks.set(trackId, personId);
    this.onOf(deviceId).add(personId);
    this.restartTimer(deviceId, personId);
    // Published on every visit, even when already ON: in HA each ON restarts off_delay.
    this.changed(deviceId, personId, true);
  }

  left(deviceId: string, trackId: string): void {
    const tracks = this.tracksOf(deviceId);
    const personId = tracks.get(trackId);
    if (personId === undefined) return;
    tracks.delete(trackId);
    if ([...tracks.values()].includes(personId)) return; // still seen on another track
    this.turnOff(deviceId, personId);
  }

  isOn(deviceId: string, personId: string): boolean {
    return this.on.get(deviceId)?.has(personId) ?? false;
  }

  /** Drops a person (forgotten) without reporting. */
  forget(deviceId: string, personId: string): void {
    this.clearTimer(deviceId, personId);
    this.on.get(deviceId)?.delete(personId);
    const tracks = this.tracks.get(deviceId);
    if (tracks) for (const [track, id] of tracks) if (id === personId) tracks.delete(track);
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private turnOff(deviceId: string, personId: string): void {
    this.clearTimer(deviceId, personId);
    const set = this.onOf(deviceId);
    if (!set.delete(personId)) return;
    this.changed(deviceId, personId, false);
  }

  private restartTimer(deviceId: string, personId: string): void {
    this.clearTimer(deviceId, personId);
    if (this.offDelayMs <= 0) return;
    const timer = setTimeout(() => {
      this.timers.delete(`${deviceId}\u0000${personId}`);
      // The visit outlived off_delay: HA has turned the sensor off; forget its open tracks too.
      const tracks = this.tracksOf(deviceId);
      for (const [track, id] of tracks) if (id === personId) tracks.delete(track);
      this.turnOff(deviceId, personId);
    }, this.offDelayMs);
    timer.unref?.();
    this.timers.set(`${deviceId}\u0000${personId}`, timer);
  }

  private clearTimer(deviceId: string, personId: string): void {
    const key = `${deviceId}\u0000${personId}`;
    const timer = this.timers.get(key);
    if (timer) clearTimeout(timer);
    this.timers.delete(key);
  }

  private tracksOf(deviceId: string): Map<string, string> {
    let map = this.tracks.get(deviceId);
    if (!map) this.tracks.set(deviceId, (map = new Map<string, string>()));
    return map;
  }

  private onOf(deviceId: string): Set<string> {
    let set = this.on.get(deviceId);
    if (!set) this.on.set(deviceId, (set = new Set()));
    return set;
  }
}
