/**
 * ha-face-entities: imprint-classify's visit events in, Home Assistant
 * entities out over MQTT. Each camera becomes one HA device (discovery in
 * nodes/core/ha-discovery.ts) with an event entity, a device trigger per
 * person, presence sensors, the last face image and diagnostics.
 *
 * Connection life cycle, and why:
 * - The last will "offline" on `<base>/status` makes HA grey out every
 *   entity when Node-RED dies; "online" is published (retained) on connect.
 * - On connect the node first reads back the retained device payloads it
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
import * as fs from 'node:fs';
import { connect, IClientOptions, MqttClient } from 'mqtt';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { FaceGalleryNode } from '../config-types';
import type { Gallery } from '../core/gallery/gallery';
import {
  buildDeviceDiscovery, componentPlatforms, deviceTopics, faceEventPayload, HaPerson, isOurDiscovery, isTopicId,
  isVisitPayload, PAYLOAD_OFF, PAYLOAD_ON, peopleFromDiscovery,
  prettyName, removalStep, slugId, statusTopic, topicPrefixProblem, triggerSubtypes,
} from '../core/ha/discovery';
import type { EmbedderInfo, FaceMessage, VisitPayload } from '../core/flow/messages';
import { maskSecrets } from '../core/common/secrets';
import { packageVersion } from '../core/common/package';
import { PresenceTracker } from '../core/ha/presence';
import { extrasFor } from '../core/library/registry';
import { errorMessage, NodeState, showStatus } from '../kit';

interface HaDef extends NodeDef {
  broker: string;
  caFile: string;
  rejectUnauthorized: boolean | string;
  discoveryPrefix: string;
  baseTopic: string;
  camera: string;
  deviceId: string;
  gallery: string;
  offDelay: string;
  retainImage: boolean | string;
}

interface HaCredentials {
  user?: string;
  password?: string;
}

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

const BACKOFF_INITIAL_MS = 1000;
const BACKOFF_MAX_MS = 30000;
/** How long to wait for the broker to replay our retained discovery payloads after subscribing. */
const SYNC_TIMEOUT_MS = 3000;
/** After a discovery change, HA subscribes the new components' topics; events wait this long. */
const SETTLE_MS = 1000;
/** The inference time changes every frame; HA's history needs it far less often. */
const INFERENCE_INTERVAL_MS = 10000;
const BIRTH_JITTER_MS = [100, 600] as const;
/**
 * While disconnected, a message waits this long (from its arrival) for the
 * connection before its event is dropped: right after a deploy or during a
 * blip, seconds-old events are still worth delivering; minutes-old ones are not.
 */
const OFFLINE_GRACE_MS = 5000;
const DEDUPE_SIZE = 256;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function bool(value: boolean | string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return value === true || value === 'true';
}

/** The first level of a topic like `<camera>/status`, naming the camera when the payload does not. */
function cameraFromTopic(topic: unknown): string | undefined {
  if (typeof topic !== 'string' || !topic.includes('/')) return undefined;
  const first = topic.split('/')[0];
  return first || undefined;
}

export = function register(RED: NodeAPI): void {
  function HaFaceEntities(this: Node & { credentials?: HaCredentials }, config: HaDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const credentials: HaCredentials = node.credentials ?? {};
    const secrets = [credentials.password];
    try {
      // A password written into the broker URL is just as secret.
      const url = new URL((config.broker ?? '').trim());
      if (url.password) secrets.push(decodeURIComponent(url.password));
    } catch {
      // not a URL: the configuration check below says so
    }
    const mask = (text: string) => maskSecrets(text, secrets);
    const fail = (text: string) => {
      const masked = mask(text);
      showStatus(node, 'error', masked);
      node.error(masked);
    };

    const broker = (config.broker ?? '').trim();
    const discoveryPrefix = (config.discoveryPrefix ?? '').trim() || 'homeassistant';
    const baseTopic = (config.baseTopic ?? '').trim() || 'coral-face';
    const fixedCamera = (config.camera ?? '').trim();
    const fixedDeviceId = (config.deviceId ?? '').trim();
    const offDelayText = (config.offDelay ?? '').toString().trim();
    const offDelaySeconds = offDelayText === '' ? 30 : Number(offDelayText);
    const retainImage = bool(config.retainImage, true);
    const swVersion = packageVersion();

    // ------------------------------------------------------------ configuration checks
    const problems: string[] = [];
    if (!/^(mqtts?|wss?):\/\/[^/\s]+/i.test(broker)) problems.push(RED._('ha-face-entities.errors.broker'));
    const prefixProblem = topicPrefixProblem(discoveryPrefix);
    if (prefixProblem) problems.push(RED._('ha-face-entities.errors.topic', { what: 'discovery prefix', problem: prefixProblem }));
    const baseProblem = topicPrefixProblem(baseTopic);
    if (baseProblem) problems.push(RED._('ha-face-entities.errors.topic', { what: 'base topic', problem: baseProblem }));
    if (fixedDeviceId && !isTopicId(fixedDeviceId)) problems.push(RED._('ha-face-entities.errors.deviceId'));
    if (!Number.isFinite(offDelaySeconds) || offDelaySeconds < 0) problems.push(RED._('ha-face-entities.errors.offDelay'));
    let ca: Buffer | undefined;
    if ((config.caFile ?? '').trim()) {
      try {
        ca = fs.readFileSync(config.caFile.trim());
      } catch (error) {
        problems.push(RED._('ha-face-entities.errors.ca', { file: config.caFile.trim(), error: errorMessage(error) }));
      }
    }
    if (problems.length) {
      fail(problems.join('; '));
      node.on('input', (_msg, _send, done) => done(new Error(mask(problems.join('; ')))));
      return;
    }

    const status = statusTopic(baseTopic);
    const haStatus = `${discoveryPrefix}/status`;
    const discoveryWildcard = `${discoveryPrefix}/device/+/config`;
    const devices = new Map<string, Device>();
    let closing = false;

    // ------------------------------------------------------------ people
    let gallery: Gallery | null = null;
    /** People marked ignored in the face library: no person entities, their visits are 'ignored' events. */
    let ignoredIds: () => ReadonlySet<string> = () => new Set();
    /** Without a gallery: people seen in visits or read back from the broker. */
    const seenPeople = new Map<string, HaPerson>();
    const people = (): HaPerson[] => (gallery
      ? gallery.listPeople().filter((p) => !ignoredIds().has(p.id)).map((p) => ({ id: p.id, name: p.name }))
      : [...seenPeople.values()]);
    const personIdFor = (name: string): string | null => {
      if (gallery) return gallery.getPerson(name)?.id ?? null;
      const id = slugId(name);
      if (seenPeople.get(id)?.name !== name) seenPeople.set(id, { id, name });
      return id;
    };

    const presence = new PresenceTracker(offDelaySeconds * 1000, (deviceId, personId, on) => {
      const device = devices.get(deviceId);
      if (device) void publish(deviceTopics(discoveryPrefix, baseTopic, deviceId).presence(personId), on ? PAYLOAD_ON : PAYLOAD_OFF, true);
    });

    // ------------------------------------------------------------ MQTT
    const clientOptions: IClientOptions = {
      clientId: `coral-face-${node.id.replace(/[^a-zA-Z0-9]/g, '').slice(0, 12)}-${randomBytes(3).toString('hex')}`,
      clean: true,
      keepalive: 30,
      connectTimeout: 10000,
      // Our own backoff (below) instead of mqtt.js's fixed-period retry.
      reconnectPeriod: 0,
      will: { topic: status, payload: Buffer.from('offline'), qos: 1, retain: true },
      rejectUnauthorized: bool(config.rejectUnauthorized, true),
      ...(ca ? { ca } : {}),
      ...(credentials.user ? { username: credentials.user } : {}),
      ...(credentials.password ? { password: credentials.password } : {}),
    };
    const brokerLabel = mask(broker);
    let client: MqttClient | null = null;
    let connected = false;
    /**
     * Opens when the current connection has synced and published discovery.
     * A lost connection opens it too (waiters go on and find publish() refusing),
     * so nothing waits forever; the next connection starts a closed one.
     */
    const newGate = () => {
      let open: () => void = () => undefined;
      const promise = new Promise<void>((resolve) => { open = resolve; });
      return { promise, open };
    };
    let gate = newGate();
    let attempt = 0;
    let retryTimer: NodeJS.Timeout | null = null;
    let birthTimer: NodeJS.Timeout | null = null;
    let lastError = '';
    let droppedWhileOffline = 0;
    let lastSelfHeal = 0;
    let sync: { nonce: string; topic: string; done: () => void } | null = null;

    const showConnected = (state: NodeState = 'ok', text?: string) => showStatus(node, state,
      text ?? RED._('ha-face-entities.status.connected', { cameras: devices.size, people: people().length }));

    function publish(topic: string, payload: string | Buffer, retain: boolean): Promise<boolean> {
      const c = client;
      if (!c || !connected) return Promise.resolve(false);
      return new Promise((resolve) => {
        c.publish(topic, payload, { qos: 1, retain }, (error) => {
          if (error) {
            lastError = mask(errorMessage(error));
            resolve(false);
          } else {
            resolve(true);
          }
        });
      });
    }

    function scheduleReconnect(): void {
      if (closing || retryTimer) return;
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** attempt);
      const delay = Math.round(base * (0.8 + Math.random() * 0.4));
      attempt++;
      showStatus(node, 'error', RED._('ha-face-entities.status.disconnected', {
        error: lastError || RED._('ha-face-entities.status.noBroker'), seconds: Math.ceil(delay / 1000),
      }));
      retryTimer = setTimeout(() => {
        retryTimer = null;
        if (!closing) client?.reconnect();
      }, delay);
    }

    async function onConnect(): Promise<void> {
      const c = client;
      if (!c) return;
      attempt = 0;
      connected = true;
      lastError = '';
      const myGate = gate;
      showStatus(node, 'pending', RED._('ha-face-entities.status.syncing', { broker: brokerLabel }));
      if (droppedWhileOffline) {
        node.warn(RED._('ha-face-entities.warn.dropped', { count: droppedWhileOffline }));
        droppedWhileOffline = 0;
      }
      await publish(status, 'online', true);
      // Read back what we announced before (retained), then a marker: the broker
      // delivers on one connection in order, so once the marker is back, so are they.
      const nonce = randomBytes(8).toString('hex');
      const syncTopic = `${baseTopic}/_sync/${nonce}`;
      const synced = new Promise<void>((resolve) => { sync = { nonce, topic: syncTopic, done: resolve }; });
      try {
        await c.subscribeAsync([haStatus, status, discoveryWildcard, syncTopic], { qos: 1 });
        await publish(syncTopic, nonce, false);
        await Promise.race([synced, sleep(SYNC_TIMEOUT_MS)]);
        sync = null;
        // Other integrations' discovery traffic is none of our business.
        await c.unsubscribeAsync([discoveryWildcard, syncTopic]);
        await publishAll(true);
        myGate.open();
        if (connected && client === c) showConnected();
      } catch (error) {
        sync = null;
        lastError = mask(errorMessage(error));
        // A connection lost meanwhile says so itself (and the next one syncs again).
        if (connected && client === c) node.warn(RED._('ha-face-entities.warn.sync', { error: lastError }));
        // Best effort: announce anyway so HA gets the entities.
        await publishAll(true).catch(() => undefined);
        myGate.open();
      }
    }

    function onMessage(topic: string, payload: Buffer, packet: { retain?: boolean }): void {
      if (sync && topic === sync.topic) {
        if (payload.toString() === sync.nonce) sync.done();
        return;
      }
      if (sync && topic.startsWith(`${discoveryPrefix}/device/`) && topic.endsWith('/config')) {
        learnDevice(topic.slice(discoveryPrefix.length + '/device/'.length, -'/config'.length), payload);
        return;
      }
      if (topic === haStatus && payload.toString() === 'online' && !packet.retain) {
        // A fresh birth: HA (re)started and has forgotten everything not retained.
        if (birthTimer) return;
        const [min, max] = BIRTH_JITTER_MS;
        birthTimer = setTimeout(() => {
          birthTimer = null;
          enqueue(async () => {
            if (!connected) return; // the next connection publishes everything anyway
            await gate.promise;
            await publishAll(true);
          }).catch((e) => node.warn(mask(errorMessage(e))));
        }, min + Math.random() * (max - min));
        return;
      }
      if (topic === status && payload.toString() === 'offline' && connected && Date.now() - lastSelfHeal > 5000) {
        // A stale will (e.g. from the client this one replaced) must not leave HA thinking we are gone.
        lastSelfHeal = Date.now();
        void publish(status, 'online', true);
      }
    }

    /** A retained device payload read back at connect: ours (same origin and base) → remember its components. */
    function learnDevice(deviceId: string, payload: Buffer): void {
      if (payload.length === 0 || !isTopicId(deviceId)) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(payload.toString('utf8'));
      } catch {
        return;
      }
      if (!isOurDiscovery(parsed, baseTopic)) return;
      // Bound to one device: only that one is ours to update.
      if ((fixedDeviceId || fixedCamera) && deviceId !== deviceIdFor(undefined)) return;
      const name = (parsed as { dev?: { name?: unknown } }).dev?.name;
      const device = deviceFor(deviceId, typeof name === 'string' ? name : deviceId, undefined);
      device.announced = componentPlatforms(parsed);
      device.subtypes = triggerSubtypes(parsed);
      if (!gallery) for (const person of peopleFromDiscovery(parsed)) if (!seenPeople.has(person.id)) seenPeople.set(person.id, person);
    }

    function start(): void {
      showStatus(node, 'pending', RED._('ha-face-entities.status.connecting', { broker: brokerLabel }));
      try {
        client = connect(broker, clientOptions);
      } catch (error) {
        fail(errorMessage(error));
        return;
      }
      client.on('connect', () => { void onConnect().catch((e) => node.warn(mask(errorMessage(e)))); });
      client.on('message', onMessage);
      client.on('error', (error) => { lastError = mask(errorMessage(error)); });
      client.on('close', () => {
        const was = connected;
        connected = false;
        sync = null;
        gate.open();
        gate = newGate();
        if (was && !closing) node.warn(RED._('ha-face-entities.warn.lost', { broker: brokerLabel, error: lastError || '-' }));
        scheduleReconnect();
      });
    }

    // ------------------------------------------------------------ devices and discovery
    /** Backend and speed reported before any camera was known: every device starts with them. */
    const sharedDiagnostics: { backend?: string; inferenceMs?: number } = {};

    /** The camera name a device is labelled with: the configured one wins over the message's. */
    function cameraLabel(camera: string | undefined): string {
      return fixedCamera || camera || fixedDeviceId || 'default';
    }

    function deviceIdFor(camera: string | undefined): string {
      return fixedDeviceId || slugId(cameraLabel(camera));
    }

    /** Finds or creates a device; a name read back from the broker is kept only until the camera shows up. */
    function deviceFor(deviceId: string, name: string, camera: string | undefined): Device {
      let device = devices.get(deviceId);
      if (!device) {
        device = {
          id: deviceId, name, camera: camera ?? name, announced: new Map(), subtypes: new Map(), lastJson: null, readyAt: 0, inferencePublishedAt: 0,
          backend: sharedDiagnostics.backend, inferenceMs: sharedDiagnostics.inferenceMs,
        };
        devices.set(deviceId, device);
      } else if (camera !== undefined) {
        device.camera = camera;
        device.name = name;
      }
      return device;
    }

    function localDevice(camera: string | undefined): Device {
      const label = cameraLabel(camera);
      return deviceFor(deviceIdFor(camera), prettyName(label), label);
    }

    /** The device for a camera named in a message; a new one is announced before anything is published for it. */
    async function ensureDevice(camera: string | undefined): Promise<Device> {
      const device = localDevice(camera);
      if (connected && device.lastJson === null) {
        await publishDiscovery(device, false);
        await publishStates(device);
        showConnected();
      }
      return device;
    }

    async function publishDiscovery(device: Device, force: boolean): Promise<void> {
      const { topic, payload } = buildDeviceDiscovery({
        discoveryPrefix, baseTopic, deviceId: device.id, deviceName: device.name,
        people: people(), ignoredPeople: ignoredIds().size > 0, offDelaySeconds, swVersion, triggerSubtypes: device.subtypes,
      });
      const json = JSON.stringify(payload);
      if (!force && json === device.lastJson) return;
      const changed = json !== device.lastJson;
      const removal = removalStep(payload, device.announced);
      if (removal) {
        // HA docs: a component reduced to its platform removes it; the next update then omits it.
        if (!await publish(topic, JSON.stringify(removal), true)) return;
      }
      if (!await publish(topic, json, true)) return;
      if (removal) {
        const t = deviceTopics(discoveryPrefix, baseTopic, device.id);
        for (const key of device.announced.keys()) {
          const match = /^person_(.+)_presence$/.exec(key);
          if (match && !(key in payload.cmps)) {
            presence.forget(device.id, match[1]);
            // Clears the retained state, so no ghost entity comes back with it.
            await publish(t.presence(match[1]), '', true);
          }
        }
      }
      device.announced = componentPlatforms(payload);
      device.subtypes = triggerSubtypes(payload);
      device.lastJson = json;
      if (changed) device.readyAt = Date.now() + SETTLE_MS;
    }

    async function publishPresence(device: Device): Promise<void> {
      const t = deviceTopics(discoveryPrefix, baseTopic, device.id);
      for (const person of people()) {
        await publish(t.presence(person.id), presence.isOn(device.id, person.id) ? PAYLOAD_ON : PAYLOAD_OFF, true);
      }
    }

    async function publishStates(device: Device): Promise<void> {
      const t = deviceTopics(discoveryPrefix, baseTopic, device.id);
      await publishPresence(device);
      if (device.lastPerson) {
        await publish(t.lastPersonAttributes, JSON.stringify(device.lastPerson.attributes), true);
        await publish(t.lastPerson, device.lastPerson.state, true);
      }
      if (device.image) await publish(t.face, device.image, retainImage);
      if (device.backend !== undefined) await publish(t.backend, device.backend, true);
      if (device.inferenceMs !== undefined) await publish(t.inferenceTime, String(device.inferenceMs), true);
      if (device.stream !== undefined) await publish(t.stream, device.stream ? PAYLOAD_ON : PAYLOAD_OFF, true);
    }

    async function publishAll(force: boolean): Promise<void> {
      if (fixedCamera || fixedDeviceId) localDevice(undefined);
      for (const device of devices.values()) {
        if (force) device.lastJson = null;
        await publishDiscovery(device, force);
        await publishStates(device);
      }
    }

    // ------------------------------------------------------------ messages in
    const seenVisits: string[] = [];
    const seenVisitSet = new Set<string>();
    /** The same visit wired in twice must not fire two triggers. */
    function firstTime(key: string): boolean {
      if (seenVisitSet.has(key)) return false;
      seenVisitSet.add(key);
      seenVisits.push(key);
      if (seenVisits.length > DEDUPE_SIZE) seenVisitSet.delete(seenVisits.shift()!);
      return true;
    }

    async function onVisit(visit: VisitPayload, image: unknown, topic: unknown): Promise<void> {
      const camera = visit.camera || cameraFromTopic(topic);
      if (!firstTime(`${deviceIdFor(camera)}\u0000${visit.trackId}\u0000${visit.event}`)) return;
      // Offline, the states are still kept (and published on reconnect); the event is not.
      const device = connected ? await ensureDevice(camera) : localDevice(camera);
      if (visit.event === 'left') {
        presence.left(device.id, visit.trackId);
        return;
      }
      let personId: string | null = null;
      if (visit.event === 'ignored') personId = gallery?.getPerson(visit.name)?.id ?? null;
      if (visit.event === 'recognized') {
        const before = people().length;
        personId = personIdFor(visit.name);
        if (personId === null) node.warn(RED._('ha-face-entities.warn.notEnrolled', { name: visit.name }));
        // Without a gallery a new name grows the device: announce it before its trigger fires.
        if (!gallery && people().length !== before) await republish();
      }
      const t = deviceTopics(discoveryPrefix, baseTopic, device.id);
      const event = faceEventPayload(visit, personId, visit.camera || device.camera);
      if (connected) {
        const wait = device.readyAt - Date.now();
        if (wait > 0) await sleep(wait);
        const json = JSON.stringify(event);
        await publish(t.event, json, false);
        if (visit.event === 'unknown') await publish(t.unknownTrigger, json, false);
        else if (visit.event === 'recognized' && personId !== null) await publish(t.personTrigger(personId), json, false);
      } else {
        // Stale by the time the broker is back: an event is never replayed.
        droppedWhileOffline++;
      }
      if (visit.event === 'recognized' && personId !== null) presence.recognized(device.id, personId, visit.trackId);
      const { event_type: _eventType, ...attributes } = event;
      device.lastPerson = { state: event.name, attributes };
      await publish(t.lastPersonAttributes, JSON.stringify(attributes), true);
      await publish(t.lastPerson, event.name, true);
      if (Buffer.isBuffer(image) && image.length > 0) {
        device.image = image;
        await publish(t.face, image, retainImage);
      }
      if (connected) {
        showConnected(visit.event === 'recognized' ? 'ok' : 'notice',
          RED._(`ha-face-entities.status.${visit.event}`, { name: event.name, camera: device.camera }));
      }
    }

    async function onEmbedder(info: Partial<EmbedderInfo>, camera: string | undefined): Promise<void> {
      // The backend is per process, not per camera: without a camera it applies to every device.
      if (!camera && !fixedCamera && !fixedDeviceId) {
        if (typeof info.backend === 'string') sharedDiagnostics.backend = info.backend;
        if (typeof info.msPerFace === 'number') sharedDiagnostics.inferenceMs = Math.round(info.msPerFace * 100) / 100;
      }
      const targets = camera || fixedCamera || fixedDeviceId ? [await ensureDevice(camera)] : [...devices.values()];
      for (const device of targets) {
        const t = deviceTopics(discoveryPrefix, baseTopic, device.id);
        if (typeof info.backend === 'string' && info.backend !== device.backend) {
          device.backend = info.backend;
          await publish(t.backend, info.backend, true);
        }
        if (typeof info.msPerFace === 'number' && Number.isFinite(info.msPerFace) && info.msPerFace > 0) {
          device.inferenceMs = Math.round(info.msPerFace * 100) / 100;
          if (Date.now() - device.inferencePublishedAt >= INFERENCE_INTERVAL_MS
            && await publish(t.inferenceTime, String(device.inferenceMs), true)) device.inferencePublishedAt = Date.now();
        }
      }
    }

    async function onStream(online: boolean, camera: string | undefined): Promise<void> {
      const device = await ensureDevice(camera);
      device.stream = online;
      await publish(deviceTopics(discoveryPrefix, baseTopic, device.id).stream, online ? PAYLOAD_ON : PAYLOAD_OFF, true);
    }

    async function republish(): Promise<void> {
      for (const device of devices.values()) await publishDiscovery(device, false);
      // Newly enrolled people start as "not present" rather than "unknown".
      for (const device of devices.values()) await publishPresence(device);
      if (connected) showConnected();
    }

    async function handle(msg: NodeMessageInFlow & FaceMessage, arrived: number): Promise<void> {
      const wait = arrived + OFFLINE_GRACE_MS - Date.now();
      if (!connected && wait > 0 && !closing) await Promise.race([gate.promise, sleep(wait)]);
      // Nothing goes out before the connection's discovery has.
      if (connected) await gate.promise;
      const payload = msg.payload as Record<string, unknown> | undefined;
      if (msg.republish === true) {
        await publishAll(true);
        return;
      }
      if (isVisitPayload(payload)) {
        await onVisit(payload, msg.image, msg.topic);
        return;
      }
      const topicCamera = cameraFromTopic(msg.topic);
      if (typeof msg.topic === 'string' && /\/status$/.test(msg.topic) && payload && typeof payload === 'object'
        && (typeof payload.online === 'boolean' || typeof payload.state === 'string')) {
        const online = typeof payload.online === 'boolean' ? payload.online : payload.state === 'online';
        const camera = typeof payload.camera === 'string' && payload.camera ? payload.camera : topicCamera;
        await onStream(online, camera);
        return;
      }
      if (msg.embedder && typeof msg.embedder === 'object') {
        await onEmbedder(msg.embedder, msg.frame?.camera);
      }
    }

    // Messages, republishes and gallery changes run one at a time, so events
    // leave in the order they came and two discovery updates never interleave.
    let queue: Promise<void> = Promise.resolve();
    function enqueue(task: () => Promise<void>): Promise<void> {
      const run = queue.then(task);
      queue = run.catch(() => undefined);
      return run;
    }
    node.on('input', (raw, _send, done) => {
      const arrived = Date.now();
      enqueue(() => handle(raw as NodeMessageInFlow & FaceMessage, arrived)).then(() => done(), (error) => {
        done(new Error(mask(errorMessage(error))));
      });
    });

    // ------------------------------------------------------------ gallery
    let changeTimer: NodeJS.Timeout | null = null;
    const onGalleryChange = () => {
      // Enrolment adds crops in bursts: one republish per burst.
      if (changeTimer) clearTimeout(changeTimer);
      changeTimer = setTimeout(() => {
        changeTimer = null;
        enqueue(async () => {
          if (!connected) return; // the next connection publishes the new people anyway
          await gate.promise;
          await republish();
        }).catch((e) => node.warn(mask(errorMessage(e))));
      }, 200);
    };
    let galleryReady: Promise<void> = Promise.resolve();
    let offExtras = () => undefined as unknown;
    if (config.gallery) {
      const galleryNode = RED.nodes.getNode(config.gallery) as FaceGalleryNode | null;
      if (!galleryNode) {
        fail(RED._('ha-face-entities.errors.gallery'));
      } else {
        galleryReady = Promise.all([galleryNode.gallery(), extrasFor(galleryNode.directory)]).then(([g, extras]) => {
          gallery = g;
          g.on('change', onGalleryChange);
          ignoredIds = () => extras.ignoredIds();
          extras.on('change', onGalleryChange);
          offExtras = () => extras.off('change', onGalleryChange);
        }, (error) => fail(errorMessage(error)));
      }
    }

    // The gallery names the people before the first discovery goes out.
    void galleryReady.then(() => { if (!closing) start(); });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      for (const timer of [retryTimer, birthTimer, changeTimer]) if (timer) clearTimeout(timer);
      presence.close();
      gallery?.off('change', onGalleryChange);
      offExtras();
      const c = client;
      client = null;
      if (!c) {
        done();
        return;
      }
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        done();
      };
      const force = setTimeout(() => c.end(true, {}, finish), 2000);
      const end = () => c.end(false, {}, () => { clearTimeout(force); finish(); });
      if (connected) {
        // A clean disconnect sends no will: say "offline" ourselves.
        c.publish(status, 'offline', { qos: 1, retain: true }, end);
      } else {
        c.end(true, {}, () => { clearTimeout(force); finish(); });
      }
      connected = false;
    });
  }

  RED.nodes.registerType('ha-face-entities', HaFaceEntities as unknown as (this: Node, def: NodeDef) => void, {
    credentials: {
      user: { type: 'text' },
      password: { type: 'password' },
    },
  });
};
