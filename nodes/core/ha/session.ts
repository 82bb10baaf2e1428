/**
 * The Home Assistant MQTT session: one broker connection, the HA devices it
 * announces (one per camera; the payloads are in discovery.ts), the states it
 * keeps for them, and the visit events it turns into HA events and triggers.
 * No Node-RED and no MQTT library here: the client is handed in (mqtt.js's
 * MqttClient is one), so the ha-face-entities node runs this against a real
 * broker and test/core/ha/session.test.ts against a fake one.
 *
 * Connection life cycle, and why:
 * - The last will "offline" on `<base>/status` makes HA grey out every
 *   entity when the process dies; "online" is published (retained) on connect.
 * - On connect the session first reads back the retained device payloads it
 *   published before (possibly in an earlier run), so it knows which
 *   components HA has and can remove the ones for people forgotten meanwhile
 *   the documented way, then publishes discovery and the current states.
 * - HA's birth message (`<prefix>/status` = online) means HA restarted:
 *   discovery and states are published again, after a short random delay as
 *   the HA docs recommend.
 * - Reconnects back off (1 s doubling to 30 s, with jitter) so a broker
 *   outage does not turn into a connect storm.
 * - Events and triggers are never retained or queued across a disconnect: a
 *   "Alice recognized" replayed minutes later could open a door. States are
 *   retained, so what the broker holds is always the current truth.
 */
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../common/errors';
import type { EmbedderInfo, FaceMessage, VisitPayload } from '../flow/messages';
import {
  buildDeviceDiscovery,
  componentPlatforms,
  deviceTopics,
  faceEventPayload,
  HA_VISITS,
  HaPerson,
  HaVisitEvent,
  isOurDiscovery,
  isTopicId,
  isVisitPayload,
  PAYLOAD_OFF,
  PAYLOAD_ON,
  peopleFromDiscovery,
  prettyName,
  removalStep,
  slugId,
  statusTopic,
  triggerSubtypes,
} from './discovery';
import { PresenceTracker } from './presence';

/** What the session needs of an MQTT client (mqtt.js's MqttClient has it all). */
export interface SessionClient {
  publish(
    topic: string,
    payload: string | Buffer,
    options: { qos: 1; retain: boolean },
    callback: (error?: Error) => void,
  ): unknown;
  subscribeAsync(topics: string[], options: { qos: 1 }): Promise<unknown>;
  unsubscribeAsync(topics: string[]): Promise<unknown>;
  /** Connects again after a close (the session decides when: reconnectPeriod is 0). */
  reconnect(): unknown;
  end(force: boolean, options: object, callback: () => void): unknown;
  on(event: 'connect' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer, packet: { retain?: boolean }) => void): unknown;
}

/** The connection options the session's protocol needs; the host adds broker, login and TLS. */
export interface SessionClientOptions {
  clean: true;
  keepalive: number;
  connectTimeout: number;
  /** The session's own backoff replaces mqtt.js's fixed-period retry. */
  reconnectPeriod: 0;
  will: { topic: string; payload: Buffer; qos: 1; retain: true };
}

/** Who the gallery knows (a Gallery is one); without it, people come from the visits. */
export interface HaPeopleSource {
  /** `ignored` people (a known-but-silent class) get no entities of their own; their visits are 'ignored' events. */
  listPeople(): readonly (HaPerson & { ignored?: boolean })[];
  getPerson(name: string): HaPerson | undefined;
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}

/** What the host shows as the session's status. */
export type SessionStatus =
  | { state: 'connecting' }
  | { state: 'syncing' }
  | { state: 'connected'; cameras: number; people: number }
  /** error is null when the broker was simply unreachable. */
  | { state: 'disconnected'; error: string | null; retryInSeconds: number }
  | { state: 'visit'; event: HaVisitEvent; name: string; camera: string }
  | { state: 'failed'; error: string };

/** What the host logs as a warning. */
export type SessionWarning =
  | { kind: 'dropped'; count: number }
  | { kind: 'sync'; error: string }
  | { kind: 'lost'; error: string | null }
  | { kind: 'notEnrolled'; name: string }
  | { kind: 'failed'; error: string };

export interface SessionTiming {
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** How long to wait for the broker to replay our retained discovery payloads after subscribing. */
  syncTimeoutMs: number;
  /** After a discovery change, HA subscribes the new components' topics; events wait this long. */
  settleMs: number;
  /** The inference time changes every frame; HA's history needs it far less often. */
  inferenceIntervalMs: number;
  birthJitterMs: readonly [number, number];
  /**
   * While disconnected, a message waits this long (from its arrival) for the
   * connection before its event is dropped: right after a deploy or during a
   * blip, seconds-old events are still worth delivering; minutes-old ones are not.
   */
  offlineGraceMs: number;
  /** Enrolment adds crops in bursts: one republish per burst. */
  galleryQuietMs: number;
  /** At most one answer per this long to a stale "offline" will on our status topic. */
  selfHealMs: number;
  /** A clean disconnect that takes longer than this is forced. */
  closeTimeoutMs: number;
}

export const DEFAULT_TIMING: Readonly<SessionTiming> = Object.freeze({
  backoffInitialMs: 1000,
  backoffMaxMs: 30000,
  syncTimeoutMs: 3000,
  settleMs: 1000,
  inferenceIntervalMs: 10000,
  birthJitterMs: [100, 600] as const,
  offlineGraceMs: 5000,
  galleryQuietMs: 200,
  selfHealMs: 5000,
  closeTimeoutMs: 2000,
});

export interface HaSessionOptions {
  discoveryPrefix: string;
  baseTopic: string;
  /** Pins the session to one camera's device (its name); '' or undefined: from each message. */
  camera?: string;
  /** Pins the device id; '' or undefined: a slug of the camera. */
  deviceId?: string;
  offDelaySeconds: number;
  retainImage: boolean;
  swVersion: string;
  gallery: HaPeopleSource | null;
  /** Creates the client (once; reconnects go through client.reconnect()). */
  connect(options: SessionClientOptions): SessionClient;
  /** Masks secrets in any text the session reports. */
  mask?: (text: string) => string;
  onStatus(status: SessionStatus): void;
  onWarning(warning: SessionWarning): void;
  timing?: Partial<SessionTiming>;
}

/** The message properties the session reads. */
export type SessionMessage = Pick<FaceMessage, 'topic' | 'payload' | 'embedder' | 'frame'> & {
  image?: unknown;
  republish?: unknown;
};

/** One camera's HA device: what was announced and the last states, to republish after a restart. */
interface Device {
  id: string;
  name: string;
  camera: string;
  /** Components HA has for this device (key → platform), as last published or read back from the broker. */
  announced: Map<string, string>;
  /** personId → the device trigger subtype HA knows (sticky across renames: automations key on it). */
  subtypes: Map<string, string>;
  /** The discovery JSON last published on this connection; null forces the next publish. */
  lastJson: string | null;
  /** Events wait until HA has had time to set up newly announced components. */
  readyAt: number;
  lastPerson?: { state: string; attributes: Record<string, unknown> };
  image?: Buffer;
  backend?: string;
  inferenceMs?: number;
  inferencePublishedAt: number;
  stream?: boolean;
}

/**
 * Opens when the current connection has synced and published discovery. A
 * lost connection opens it too (waiters go on and find publish() refusing),
 * so nothing waits forever; the next connection starts a closed one.
 */
class Gate {
  open: () => void = () => undefined;
  readonly promise = new Promise<void>((resolve) => {
    this.open = resolve;
  });
}

const DEDUPE_SIZE = 256;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for the promise, or at most ms; the timer does not outlive the wait. */
async function waitAtMost(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first level of a topic like `<camera>/status`, naming the camera when the payload does not. */
function cameraFromTopic(topic: unknown): string | undefined {
  if (typeof topic !== 'string' || !topic.includes('/')) return undefined;
  return topic.split('/')[0] || undefined;
}

export class HaSession {
  private readonly timing: SessionTiming;
  private readonly prefix: string;
  private readonly base: string;
  private readonly fixedCamera: string;
  private readonly fixedDeviceId: string;
  private readonly status: string;
  private readonly haStatus: string;
  private readonly discoveryWildcard: string;
  private readonly mask: (text: string) => string;
  private readonly devices = new Map<string, Device>();
  /** Without a gallery: people seen in visits or read back from the broker. */
  private readonly seenPeople = new Map<string, HaPerson>();
  private readonly presence: PresenceTracker;
  /** Backend and speed reported before any camera was known: every device starts with them. */
  private readonly sharedDiagnostics: { backend?: string; inferenceMs?: number } = {};
  private readonly seenVisits: string[] = [];
  private readonly seenVisitSet = new Set<string>();

  private client: SessionClient | null = null;
  private connected = false;
  private closing = false;
  private gate = new Gate();
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private birthTimer: NodeJS.Timeout | null = null;
  private changeTimer: NodeJS.Timeout | null = null;
  private lastError = '';
  private droppedWhileOffline = 0;
  private lastSelfHeal = 0;
  private sync: { nonce: string; topic: string; done: () => void } | null = null;
  /** Messages, republishes and gallery changes run one at a time (see enqueue). */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: HaSessionOptions) {
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.prefix = options.discoveryPrefix;
    this.base = options.baseTopic;
    this.fixedCamera = options.camera ?? '';
    this.fixedDeviceId = options.deviceId ?? '';
    this.status = statusTopic(this.base);
    this.haStatus = `${this.prefix}/status`;
    this.discoveryWildcard = `${this.prefix}/device/+/config`;
    this.mask = options.mask ?? ((text) => text);
    this.presence = new PresenceTracker(options.offDelaySeconds * 1000, (deviceId, personId, on) => {
      if (this.devices.has(deviceId))
        void this.publish(this.topics(deviceId).presence(personId), on ? PAYLOAD_ON : PAYLOAD_OFF, true);
    });
    options.gallery?.on('change', this.onGalleryChange);
  }

  /** The connection options the host passes to its MQTT client, with broker, login and TLS added. */
  clientOptions(): SessionClientOptions {
    return {
      clean: true,
      keepalive: 30,
      connectTimeout: 10000,
      reconnectPeriod: 0,
      will: { topic: this.status, payload: Buffer.from('offline'), qos: 1, retain: true },
    };
  }

  /** Connects; call once, after the gallery (if any) is open, so the first discovery names the people. */
  start(): void {
    if (this.closing || this.client) return;
    this.options.onStatus({ state: 'connecting' });
    let client: SessionClient;
    try {
      client = this.options.connect(this.clientOptions());
    } catch (error) {
      this.options.onStatus({ state: 'failed', error: this.describe(error) });
      return;
    }
    this.client = client;
    client.on('connect', () => {
      void this.onConnect().catch((error) => this.warnFailed(error));
    });
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    client.on('error', (error) => {
      this.lastError = this.describe(error);
    });
    client.on('close', () => this.onClose());
  }

  /**
   * A message from the flow: a visit, a camera's stream status, embedder
   * diagnostics, or `republish: true`. Messages run one at a time, in order.
   */
  receive(msg: SessionMessage): Promise<void> {
    const arrived = Date.now();
    return this.enqueue(() => this.handle(msg, arrived)).catch((error) => {
      throw new Error(this.describe(error));
    });
  }

  /** Says "offline" (a clean disconnect sends no will) and disconnects; stops every timer. */
  close(): Promise<void> {
    this.closing = true;
    for (const timer of [this.retryTimer, this.birthTimer, this.changeTimer]) if (timer) clearTimeout(timer);
    this.presence.close();
    this.options.gallery?.off('change', this.onGalleryChange);
    const client = this.client;
    this.client = null;
    const wasConnected = this.connected;
    this.connected = false;
    if (!client) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => client.end(true, {}, resolve), this.timing.closeTimeoutMs);
      const finish = () => {
        clearTimeout(force);
        resolve();
      };
      if (wasConnected) {
        client.publish(this.status, 'offline', { qos: 1, retain: true }, () => client.end(false, {}, finish));
      } else {
        client.end(true, {}, finish);
      }
    });
  }

  // ---------------------------------------------------------------- connection

  private publish(topic: string, payload: string | Buffer, retain: boolean): Promise<boolean> {
    const client = this.client;
    if (!client || !this.connected) return Promise.resolve(false);
    return new Promise((resolve) => {
      client.publish(topic, payload, { qos: 1, retain }, (error) => {
        if (error) this.lastError = this.describe(error);
        resolve(!error);
      });
    });
  }

  private onClose(): void {
    const was = this.connected;
    this.connected = false;
    this.sync = null;
    this.gate.open();
    this.gate = new Gate();
    if (was && !this.closing) this.options.onWarning({ kind: 'lost', error: this.lastError || null });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.retryTimer) return;
    const base = Math.min(this.timing.backoffMaxMs, this.timing.backoffInitialMs * 2 ** this.attempt);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt++;
    this.options.onStatus({
      state: 'disconnected',
      error: this.lastError || null,
      retryInSeconds: Math.ceil(delay / 1000),
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closing) this.client?.reconnect();
    }, delay);
  }

  private async onConnect(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.attempt = 0;
    this.connected = true;
    this.lastError = '';
    const gate = this.gate;
    this.options.onStatus({ state: 'syncing' });
    if (this.droppedWhileOffline) {
      this.options.onWarning({ kind: 'dropped', count: this.droppedWhileOffline });
      this.droppedWhileOffline = 0;
    }
    await this.publish(this.status, 'online', true);
    // Read back what we announced before (retained), then a marker: the broker
    // delivers on one connection in order, so once the marker is back, so are they.
    const nonce = randomBytes(8).toString('hex');
    const syncTopic = `${this.base}/_sync/${nonce}`;
    const synced = new Promise<void>((resolve) => {
      this.sync = { nonce, topic: syncTopic, done: resolve };
    });
    const current = () => this.connected && this.client === client;
    try {
      await client.subscribeAsync([this.haStatus, this.status, this.discoveryWildcard, syncTopic], { qos: 1 });
      await this.publish(syncTopic, nonce, false);
      await waitAtMost(synced, this.timing.syncTimeoutMs);
      this.sync = null;
      // Other integrations' discovery traffic is none of our business.
      await client.unsubscribeAsync([this.discoveryWildcard, syncTopic]);
      await this.publishAll(true);
      gate.open();
      if (current()) this.showConnected();
    } catch (error) {
      this.sync = null;
      this.lastError = this.describe(error);
      // A connection lost meanwhile says so itself (and the next one syncs again).
      if (current()) this.options.onWarning({ kind: 'sync', error: this.lastError });
      // Best effort: announce anyway so HA gets the entities.
      await this.publishAll(true).catch(() => undefined);
      gate.open();
    }
  }

  private onMessage(topic: string, payload: Buffer, packet: { retain?: boolean }): void {
    const sync = this.sync;
    if (sync && topic === sync.topic) {
      if (payload.toString() === sync.nonce) sync.done();
      return;
    }
    const devicePrefix = `${this.prefix}/device/`;
    if (sync && topic.startsWith(devicePrefix) && topic.endsWith('/config')) {
      this.learnDevice(topic.slice(devicePrefix.length, -'/config'.length), payload);
      return;
    }
    if (topic === this.haStatus && payload.toString() === 'online' && !packet.retain) {
      // A fresh birth: HA (re)started and has forgotten everything not retained.
      if (this.birthTimer) return;
      const [min, max] = this.timing.birthJitterMs;
      this.birthTimer = setTimeout(
        () => {
          this.birthTimer = null;
          this.whenConnected(() => this.publishAll(true));
        },
        min + Math.random() * (max - min),
      );
      return;
    }
    if (
      topic === this.status &&
      payload.toString() === 'offline' &&
      this.connected &&
      Date.now() - this.lastSelfHeal > this.timing.selfHealMs
    ) {
      // A stale will (e.g. from the client this one replaced) must not leave HA thinking we are gone.
      this.lastSelfHeal = Date.now();
      void this.publish(this.status, 'online', true);
    }
  }

  /** Queues a republish for the current connection; offline, the next connection publishes everything anyway. */
  private whenConnected(task: () => Promise<void>): void {
    this.enqueue(async () => {
      if (!this.connected) return;
      await this.gate.promise;
      await task();
    }).catch((error) => this.warnFailed(error));
  }

  private readonly onGalleryChange = (): void => {
    if (this.changeTimer) clearTimeout(this.changeTimer);
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      this.whenConnected(() => this.republish());
    }, this.timing.galleryQuietMs);
  };

  /**
   * Runs tasks one at a time, so events leave in the order they came and two
   * discovery updates never interleave.
   */
  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ---------------------------------------------------------------- people

  private people(): HaPerson[] {
    const gallery = this.options.gallery;
    return gallery
      ? gallery
          .listPeople()
          .filter((p) => !p.ignored)
          .map((p) => ({ id: p.id, name: p.name }))
      : [...this.seenPeople.values()];
  }

  private personIdFor(name: string): string | null {
    const gallery = this.options.gallery;
    if (gallery) return gallery.getPerson(name)?.id ?? null;
    const id = slugId(name);
    if (this.seenPeople.get(id)?.name !== name) this.seenPeople.set(id, { id, name });
    return id;
  }

  // ---------------------------------------------------------------- devices and discovery

  private topics(deviceId: string) {
    return deviceTopics(this.prefix, this.base, deviceId);
  }

  /** The camera name a device is labelled with: the configured one wins over the message's. */
  private cameraLabel(camera: string | undefined): string {
    return this.fixedCamera || camera || this.fixedDeviceId || 'default';
  }

  private deviceIdFor(camera: string | undefined): string {
    return this.fixedDeviceId || slugId(this.cameraLabel(camera));
  }

  /** Finds or creates a device; a name read back from the broker is kept only until the camera shows up. */
  private deviceFor(deviceId: string, name: string, camera: string | undefined): Device {
    let device = this.devices.get(deviceId);
    if (!device) {
      device = {
        id: deviceId,
        name,
        camera: camera ?? name,
        announced: new Map(),
        subtypes: new Map(),
        lastJson: null,
        readyAt: 0,
        inferencePublishedAt: 0,
        backend: this.sharedDiagnostics.backend,
        inferenceMs: this.sharedDiagnostics.inferenceMs,
      };
      this.devices.set(deviceId, device);
    } else if (camera !== undefined) {
      device.camera = camera;
      device.name = name;
    }
    return device;
  }

  private localDevice(camera: string | undefined): Device {
    const label = this.cameraLabel(camera);
    return this.deviceFor(this.deviceIdFor(camera), prettyName(label), label);
  }

  /** The device for a camera named in a message; a new one is announced before anything is published for it. */
  private async ensureDevice(camera: string | undefined): Promise<Device> {
    const device = this.localDevice(camera);
    if (this.connected && device.lastJson === null) {
      await this.publishDiscovery(device, false);
      await this.publishStates(device);
      this.showConnected();
    }
    return device;
  }

  /** A retained device payload read back at connect: ours (same origin and base) → remember its components. */
  private learnDevice(deviceId: string, payload: Buffer): void {
    if (payload.length === 0 || !isTopicId(deviceId)) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (!isOurDiscovery(parsed, this.base)) return;
    // Bound to one device: only that one is ours to update.
    if ((this.fixedDeviceId || this.fixedCamera) && deviceId !== this.deviceIdFor(undefined)) return;
    const name = (parsed as { dev?: { name?: unknown } }).dev?.name;
    const device = this.deviceFor(deviceId, typeof name === 'string' ? name : deviceId, undefined);
    device.announced = componentPlatforms(parsed);
    device.subtypes = triggerSubtypes(parsed);
    if (!this.options.gallery) {
      for (const person of peopleFromDiscovery(parsed))
        if (!this.seenPeople.has(person.id)) this.seenPeople.set(person.id, person);
    }
  }

  private async publishDiscovery(device: Device, force: boolean): Promise<void> {
    const { topic, payload } = buildDeviceDiscovery({
      discoveryPrefix: this.prefix,
      baseTopic: this.base,
      deviceId: device.id,
      deviceName: device.name,
      people: this.people(),
      ignoredPeople: this.options.gallery?.listPeople().some((p) => p.ignored) ?? false,
      offDelaySeconds: this.options.offDelaySeconds,
      swVersion: this.options.swVersion,
      triggerSubtypes: device.subtypes,
    });
    const json = JSON.stringify(payload);
    if (!force && json === device.lastJson) return;
    const changed = json !== device.lastJson;
    const removal = removalStep(payload, device.announced);
    // HA docs: a component reduced to its platform removes it; the next update then omits it.
    if (removal && !(await this.publish(topic, JSON.stringify(removal), true))) return;
    if (!(await this.publish(topic, json, true))) return;
    if (removal) {
      const t = this.topics(device.id);
      for (const key of device.announced.keys()) {
        const match = /^person_(.+)_presence$/.exec(key);
        if (match && !(key in payload.cmps)) {
          this.presence.forget(device.id, match[1]);
          // Clears the retained state, so no ghost entity comes back with it.
          await this.publish(t.presence(match[1]), '', true);
        }
      }
    }
    device.announced = componentPlatforms(payload);
    device.subtypes = triggerSubtypes(payload);
    device.lastJson = json;
    if (changed) device.readyAt = Date.now() + this.timing.settleMs;
  }

  private async publishPresence(device: Device): Promise<void> {
    const t = this.topics(device.id);
    for (const person of this.people()) {
      await this.publish(
        t.presence(person.id),
        this.presence.isOn(device.id, person.id) ? PAYLOAD_ON : PAYLOAD_OFF,
        true,
      );
    }
  }

  private async publishStates(device: Device): Promise<void> {
    const t = this.topics(device.id);
    await this.publishPresence(device);
    if (device.lastPerson) {
      await this.publish(t.lastPersonAttributes, JSON.stringify(device.lastPerson.attributes), true);
      await this.publish(t.lastPerson, device.lastPerson.state, true);
    }
    if (device.image) await this.publish(t.face, device.image, this.options.retainImage);
    if (device.backend !== undefined) await this.publish(t.backend, device.backend, true);
    if (device.inferenceMs !== undefined) await this.publish(t.inferenceTime, String(device.inferenceMs), true);
    if (device.stream !== undefined) await this.publish(t.stream, device.stream ? PAYLOAD_ON : PAYLOAD_OFF, true);
  }

  private async publishAll(force: boolean): Promise<void> {
    if (this.fixedCamera || this.fixedDeviceId) this.localDevice(undefined);
    for (const device of this.devices.values()) {
      if (force) device.lastJson = null;
      await this.publishDiscovery(device, force);
      await this.publishStates(device);
    }
  }

  private async republish(): Promise<void> {
    for (const device of this.devices.values()) await this.publishDiscovery(device, false);
    // Newly enrolled people start as "not present" rather than "unknown".
    for (const device of this.devices.values()) await this.publishPresence(device);
    if (this.connected) this.showConnected();
  }

  private showConnected(): void {
    this.options.onStatus({ state: 'connected', cameras: this.devices.size, people: this.people().length });
  }

  // ---------------------------------------------------------------- messages in

  private async handle(msg: SessionMessage, arrived: number): Promise<void> {
    const wait = arrived + this.timing.offlineGraceMs - Date.now();
    if (!this.connected && wait > 0 && !this.closing) await waitAtMost(this.gate.promise, wait);
    // Nothing goes out before the connection's discovery has.
    if (this.connected) await this.gate.promise;
    const payload = msg.payload as Record<string, unknown> | undefined;
    if (msg.republish === true) {
      await this.publishAll(true);
      return;
    }
    if (isVisitPayload(payload)) {
      await this.onVisit(payload, msg.image, msg.topic);
      return;
    }
    if (
      typeof msg.topic === 'string' &&
      /\/status$/.test(msg.topic) &&
      payload &&
      typeof payload === 'object' &&
      (typeof payload.online === 'boolean' || typeof payload.state === 'string')
    ) {
      const online = typeof payload.online === 'boolean' ? payload.online : payload.state === 'online';
      const camera = typeof payload.camera === 'string' && payload.camera ? payload.camera : cameraFromTopic(msg.topic);
      await this.onStream(online, camera);
      return;
    }
    if (msg.embedder && typeof msg.embedder === 'object') await this.onEmbedder(msg.embedder, msg.frame?.camera);
  }

  /** The same visit wired in twice must not fire two triggers. */
  private firstTime(key: string): boolean {
    if (this.seenVisitSet.has(key)) return false;
    this.seenVisitSet.add(key);
    this.seenVisits.push(key);
    if (this.seenVisits.length > DEDUPE_SIZE) this.seenVisitSet.delete(this.seenVisits.shift()!);
    return true;
  }

  private async onVisit(visit: VisitPayload, image: unknown, topic: unknown): Promise<void> {
    const camera = visit.camera || cameraFromTopic(topic);
    // Keyed by name too: a corrected track sends a second decision (and its left) under the same trackId.
    if (!this.firstTime(`${this.deviceIdFor(camera)}\u0000${visit.trackId}\u0000${visit.event}\u0000${visit.name}`))
      return;
    // Offline, the states are still kept (and published on reconnect); the event is not.
    const device = this.connected ? await this.ensureDevice(camera) : this.localDevice(camera);
    if (visit.event === 'left') {
      this.presence.left(device.id, visit.trackId);
      return;
    }
    const event = visit.event;
    const rule = HA_VISITS[event];
    let personId: string | null = null;
    if (rule.person) {
      const before = this.people().length;
      personId = this.personIdFor(visit.name);
      if (personId === null) this.options.onWarning({ kind: 'notEnrolled', name: visit.name });
      // Without a gallery a new name grows the device: announce it before its trigger fires.
      if (!this.options.gallery && this.people().length !== before) await this.republish();
    }
    const t = this.topics(device.id);
    const payload = faceEventPayload({ ...visit, event }, personId, visit.camera || device.camera);
    if (this.connected) {
      const wait = device.readyAt - Date.now();
      if (wait > 0) await sleep(wait);
      const json = JSON.stringify(payload);
      await this.publish(t.event, json, false);
      if (rule.trigger === 'unknown') await this.publish(t.unknownTrigger, json, false);
      else if (rule.trigger === 'person' && personId !== null)
        await this.publish(t.personTrigger(personId), json, false);
    } else {
      // Stale by the time the broker is back: an event is never replayed.
      this.droppedWhileOffline++;
    }
    if (rule.presence && personId !== null) this.presence.recognized(device.id, personId, visit.trackId);
    const { event_type: _eventType, ...attributes } = payload;
    device.lastPerson = { state: payload.name, attributes };
    await this.publish(t.lastPersonAttributes, JSON.stringify(attributes), true);
    await this.publish(t.lastPerson, payload.name, true);
    if (Buffer.isBuffer(image) && image.length > 0) {
      device.image = image;
      await this.publish(t.face, image, this.options.retainImage);
    }
    if (this.connected) this.options.onStatus({ state: 'visit', event, name: payload.name, camera: device.camera });
  }

  private async onEmbedder(info: Partial<EmbedderInfo>, camera: string | undefined): Promise<void> {
    const pinned = Boolean(this.fixedCamera || this.fixedDeviceId);
    // The backend is per process, not per camera: without a camera it applies to every device.
    if (!camera && !pinned) {
      if (typeof info.backend === 'string') this.sharedDiagnostics.backend = info.backend;
      if (typeof info.msPerFace === 'number')
        this.sharedDiagnostics.inferenceMs = Math.round(info.msPerFace * 100) / 100;
    }
    const targets = camera || pinned ? [await this.ensureDevice(camera)] : [...this.devices.values()];
    for (const device of targets) {
      const t = this.topics(device.id);
      if (typeof info.backend === 'string' && info.backend !== device.backend) {
        device.backend = info.backend;
        await this.publish(t.backend, info.backend, true);
      }
      if (typeof info.msPerFace === 'number' && Number.isFinite(info.msPerFace) && info.msPerFace > 0) {
        device.inferenceMs = Math.round(info.msPerFace * 100) / 100;
        if (
          Date.now() - device.inferencePublishedAt >= this.timing.inferenceIntervalMs &&
          (await this.publish(t.inferenceTime, String(device.inferenceMs), true))
        )
          device.inferencePublishedAt = Date.now();
      }
    }
  }

  private async onStream(online: boolean, camera: string | undefined): Promise<void> {
    const device = await this.ensureDevice(camera);
    device.stream = online;
    await this.publish(this.topics(device.id).stream, online ? PAYLOAD_ON : PAYLOAD_OFF, true);
  }

  // ---------------------------------------------------------------- reporting

  private describe(error: unknown): string {
    return this.mask(errorMessage(error));
  }

  private warnFailed(error: unknown): void {
    this.options.onWarning({ kind: 'failed', error: this.describe(error) });
  }
}
