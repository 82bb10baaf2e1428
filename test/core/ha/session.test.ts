/**
 * The HA MQTT session without a broker: an in-memory broker and client
 * (test/helpers/fake-mqtt.ts) that log every publish and can drop the
 * connection or go down. The real gallery. Timings are shortened through
 * the session's timing option; everything else is the shipped code path.
 * test/nodes/ha-face-entities.test.ts runs the same session in Node-RED
 * against a real mosquitto.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { maskSecrets } from '../../../nodes/core/common/secrets';
import type { VisitPayload } from '../../../nodes/core/flow/messages';
import { Gallery } from '../../../nodes/core/gallery/gallery';
import {
  buildDeviceDiscovery,
  deviceTopics,
  eventTypes,
  faceEventPayload,
  HA_VISITS,
  isVisitPayload,
} from '../../../nodes/core/ha/discovery';
import {
  HaSession,
  HaSessionOptions,
  SessionStatus,
  SessionTiming,
  SessionWarning,
} from '../../../nodes/core/ha/session';
import { FakeBroker, FakeClient, Published } from '../../helpers/fake-mqtt';

const PREFIX = 'homeassistant';
const BASE = 'coral-face';
const STATUS = `${BASE}/status`;
const FAST: Partial<SessionTiming> = {
  backoffInitialMs: 50,
  backoffMaxMs: 200,
  syncTimeoutMs: 300,
  settleMs: 0,
  inferenceIntervalMs: 300,
  birthJitterMs: [5, 15],
  offlineGraceMs: 150,
  galleryQuietMs: 30,
  selfHealMs: 100,
  closeTimeoutMs: 300,
};
const t = deviceTopics(PREFIX, BASE, 'front_door');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => T | undefined | false | null, timeoutMs = 3000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

let seq = 0;
function visit(
  event: VisitPayload['event'],
  name: string,
  trackId = `track-${++seq}`,
): { payload: VisitPayload; image?: Buffer; topic: string } {
  const payload: VisitPayload = { event, name, camera: 'front_door', trackId, time: new Date().toISOString() };
  if (event === 'left') return { payload, topic: `front_door/${event}` };
  return {
    payload: { ...payload, cosine: 0.7, confidence: 0.9 },
    image: Buffer.from([0xff, 0xd8, seq & 0xff, 0xff, 0xd9]),
    topic: `front_door/${event}`,
  };
}

const crop = () => ({ image: { width: 4, height: 4, data: new Uint8Array(48).fill(128) } });
const text = (m: Published | undefined) => m?.payload.toString();
const json = (m: Published | undefined) => (m ? JSON.parse(m.payload.toString()) : undefined);

interface Rig {
  broker: FakeBroker;
  session: HaSession;
  client: () => FakeClient;
  statuses: SessionStatus[];
  warnings: SessionWarning[];
  connected: (since?: number) => Promise<SessionStatus>;
}

describe('core/ha/session (in-memory broker)', function () {
  this.timeout(20000);
  let dir: string;
  let gallery: Gallery;
  const sessions: HaSession[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-ha-session-'));
    gallery = await Gallery.open(dir, { create: true });
    await gallery.addCrops('Alice', [crop()]);
    await gallery.addCrops('Bob', [crop()]);
  });

  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function rig(options: Partial<HaSessionOptions> = {}, broker = new FakeBroker()): Rig {
    const statuses: SessionStatus[] = [];
    const warnings: SessionWarning[] = [];
    let client: FakeClient | undefined;
    const session = new HaSession({
      discoveryPrefix: PREFIX,
      baseTopic: BASE,
      camera: 'front_door',
      offDelaySeconds: 30,
      retainImage: true,
      swVersion: '9.9.9',
      gallery,
      timing: FAST,
      connect: (protocol) => (client = broker.client(protocol, 'session')),
      onStatus: (s) => statuses.push(s),
      onWarning: (w) => warnings.push(w),
      ...options,
    });
    sessions.push(session);
    const connected = (since = 0) =>
      waitFor('connected', () => statuses.slice(since).find((s) => s.state === 'connected'));
    return { broker, session, client: () => client!, statuses, warnings, connected };
  }

  it('connects: online (retained), reads back, announces the device and its states, then says connected', async () => {
    const { broker, session, statuses, connected, client } = rig();
    session.start();
    await connected();
    assert.deepEqual(client().options.will, { topic: STATUS, payload: Buffer.from('offline'), qos: 1, retain: true });
    assert.equal(client().options.reconnectPeriod, 0, 'the session backs off itself');
    assert.deepEqual(
      statuses.slice(0, 2).map((s) => s.state),
      ['connecting', 'syncing'],
    );
    assert.equal(broker.text(STATUS), 'online');
    const expected = buildDeviceDiscovery({
      discoveryPrefix: PREFIX,
      baseTopic: BASE,
      deviceId: 'front_door',
      deviceName: 'Front door',
      people: [
        { id: 'alice', name: 'Alice' },
        { id: 'bob', name: 'Bob' },
      ],
      offDelaySeconds: 30,
      swVersion: '9.9.9',
    });
    assert.equal(broker.text(t.discovery), JSON.stringify(expected.payload));
    assert.equal(broker.text(t.presence('alice')), 'OFF');
    assert.equal(broker.text(t.presence('bob')), 'OFF');
    assert.deepEqual(
      statuses.find((s) => s.state === 'connected'),
      { state: 'connected', cameras: 1, people: 2 },
    );
    // The sync marker went out unretained and the discovery wildcard was given up again.
    const marker = broker.log.find((m) => m.topic.startsWith(`${BASE}/_sync/`));
    assert.ok(marker && !marker.retain);
  });

  it('a visit gives one event and one trigger, never retained; unknown fires its own trigger; left clears presence', async () => {
    const { broker, session, statuses, connected } = rig();
    session.start();
    await connected();
    const since = broker.log.length;
    const alice = visit('recognized', 'Alice');
    await session.receive(alice);
    await session.receive(alice); // wired in twice
    assert.equal(broker.since(since, t.event).length, 1);
    assert.equal(broker.since(since, t.personTrigger('alice')).length, 1);
    const event = json(broker.since(since, t.event)[0]);
    assert.deepEqual(
      {
        event_type: event.event_type,
        event: event.event,
        name: event.name,
        person_id: event.person_id,
        track_id: event.track_id,
      },
      { event_type: 'Alice', event: 'recognized', name: 'Alice', person_id: 'alice', track_id: alice.payload.trackId },
    );
    assert.ok(
      broker
        .since(since)
        .filter((m) => m.topic === t.event || m.topic.includes('/trigger/'))
        .every((m) => !m.retain),
    );
    assert.equal(broker.retained.has(t.event), false);
    assert.equal(broker.text(t.presence('alice')), 'ON');
    assert.equal(broker.text(t.lastPerson), 'Alice');
    assert.deepEqual(broker.retained.get(t.face), alice.image);
    assert.deepEqual(statuses.at(-1), { state: 'visit', event: 'recognized', name: 'Alice', camera: 'front_door' });

    const before = broker.log.length;
    await session.receive(visit('unknown', 'unknown'));
    assert.equal(broker.since(before, t.unknownTrigger).length, 1);
    assert.equal(broker.since(before).filter((m) => m.topic.includes('/trigger/person/')).length, 0);
    assert.equal(json(broker.since(before, t.event)[0]).event_type, 'unknown');
    assert.equal(broker.text(t.presence('alice')), 'ON', 'a stranger does not touch presence');

    await session.receive(visit('left', 'Alice', alice.payload.trackId));
    assert.equal(broker.text(t.presence('alice')), 'OFF');
  });

  it('a message sent before the connection is up waits for discovery, then goes out', async () => {
    const { broker, session, connected } = rig();
    session.start();
    await session.receive(visit('recognized', 'Bob'));
    await connected();
    const discovery = broker.log.findIndex((m) => m.topic === t.discovery);
    const event = broker.log.findIndex((m) => m.topic === t.event);
    assert.ok(discovery >= 0 && event > discovery, `discovery (${discovery}) before the event (${event})`);
  });

  it('reads back its earlier discovery: forgotten people removed the documented way, trigger subtypes kept, others left alone', async () => {
    const broker = new FakeBroker();
    broker.replayDelayMs = 100; // the session waits for its sync marker, not for the subscribe's acknowledgement
    const earlier = buildDeviceDiscovery({
      discoveryPrefix: PREFIX,
      baseTopic: BASE,
      deviceId: 'front_door',
      deviceName: 'Front door',
      swVersion: '0.0.1',
      offDelaySeconds: 30,
      people: [
        { id: 'alice', name: 'Alice' },
        { id: 'bob', name: 'Bob' },
        { id: 'carol', name: 'Carol' },
      ],
    });
    broker.retained.set(t.discovery, Buffer.from(JSON.stringify(earlier.payload)));
    broker.retained.set(t.presence('carol'), Buffer.from('ON'));
    // Another integration's device, and ours under another base topic: not ours to touch.
    const foreign = `${PREFIX}/device/garage/config`;
    broker.retained.set(foreign, Buffer.from(JSON.stringify({ o: { name: 'zigbee2mqtt' }, cmps: {} })));
    // Since then: Carol forgotten (the gallery has Alice and Bob), Alice renamed.
    await gallery.rename('Alice', 'Alicia');

    const { session, connected } = rig({}, broker);
    session.start();
    await connected();
    const published = broker.log.filter((m) => m.topic === t.discovery).map(json);
    assert.equal(published.length, 2, 'the removal step, then the payload without the removed components');
    const [removal, final] = published;
    assert.deepEqual(removal.cmps.person_carol_presence, { p: 'binary_sensor' });
    assert.deepEqual(removal.cmps.person_carol_trigger, { p: 'device_automation' });
    assert.ok(!('person_carol_presence' in final.cmps) && !('person_carol_trigger' in final.cmps));
    assert.equal(broker.retained.has(t.presence('carol')), false, 'no retained ghost state');
    assert.equal(final.cmps.person_alice_presence.name, 'Alicia');
    assert.equal(
      final.cmps.person_alice_trigger.subtype,
      'Alice',
      'automations on "Alice recognized" keep firing after the rename',
    );
    assert.equal(broker.log.filter((m) => m.topic === foreign).length, 0);
  });

  it("republishes on Home Assistant's birth message, once per burst", async () => {
    const { broker, session, connected } = rig();
    session.start();
    await connected();
    const ha = broker.client(
      { ...session.clientOptions(), will: { topic: 'ha/will', payload: Buffer.from('x'), qos: 1, retain: true } },
      'ha',
    );
    await waitFor('ha connected', () => ha.connected);
    const since = broker.log.length;
    const birth = () =>
      new Promise<void>((resolve) =>
        ha.publish(`${PREFIX}/status`, 'online', { qos: 1, retain: false }, () => resolve()),
      );
    await birth();
    await birth();
    await waitFor('republished', () => broker.since(since, t.presence('bob')).length > 0);
    await sleep(100);
    assert.equal(broker.since(since, t.discovery).length, 1);
    ha.end(true, {}, () => undefined);
  });

  it('a lost connection: backoff that grows to a cap, stale events dropped and counted, states brought up to date on reconnect', async () => {
    const { broker, session, statuses, warnings, connected, client } = rig();
    session.start();
    await connected();
    broker.stop({ forgetRetained: true });
    await waitFor('lost', () => warnings.find((w) => w.kind === 'lost'));
    assert.equal(broker.text(STATUS), undefined, 'the broker forgot everything (persistence off)');
    const offline = session.receive(visit('recognized', 'Alice'));
    await waitFor('six reconnect attempts', () => client().reconnectCalls.length >= 6, 5000);
    await offline; // waited offlineGraceMs for the connection, then kept the states only
    const disconnected = statuses.filter((s) => s.state === 'disconnected');
    assert.ok(disconnected.length >= 6);
    assert.ok(disconnected.every((s) => s.state === 'disconnected' && s.retryInSeconds === 1));
    const calls = client().reconnectCalls;
    const gaps = calls.slice(1).map((c, i) => c - calls[i]);
    // Timers never fire early: each gap is at least 0.8 x its step (50, 100, 200, 200...); the cap keeps the 5th far below 50 x 2^5.
    gaps.forEach((gap, i) =>
      assert.ok(gap >= Math.min(200, 50 * 2 ** (i + 1)) * 0.8 - 2, `gap ${i}: ${gap} ms in ${gaps}`),
    );
    assert.ok(gaps[4] < 1000, `capped: ${gaps}`);

    const since = broker.log.length;
    broker.start();
    await connected(statuses.length);
    assert.equal(broker.since(since, t.event).length, 0, 'an event is never replayed late');
    assert.deepEqual(
      warnings.find((w) => w.kind === 'dropped'),
      { kind: 'dropped', count: 1 },
    );
    assert.equal(broker.text(STATUS), 'online');
    assert.ok(broker.text(t.discovery), 'announced again');
    assert.equal(broker.text(t.lastPerson), 'Alice', 'the state of the dropped visit is published');
    assert.equal(broker.text(t.presence('alice')), 'ON');
  });

  it('a dropped client leaves its will; the next connection says online again', async () => {
    const { broker, session, connected, client, statuses } = rig();
    session.start();
    await connected();
    client().drop();
    assert.equal(broker.text(STATUS), 'offline');
    await connected(statuses.length);
    assert.equal(broker.text(STATUS), 'online');
    assert.equal(client().connects, 2);
  });

  it('answers a stale "offline" will on its status topic with "online"', async () => {
    const { broker, session, connected } = rig();
    session.start();
    await connected();
    broker.route({ topic: STATUS, payload: Buffer.from('offline'), retain: true, from: 'an older client' });
    await waitFor('self-heal', () => broker.text(STATUS) === 'online');
  });

  it('gallery changes in a burst give one republish naming the new person', async () => {
    const { broker, session, connected } = rig();
    session.start();
    await connected();
    const since = broker.log.length;
    await gallery.addCrops('Zoë', [crop()]);
    await gallery.addCrops('Zoë', [crop()]);
    const zoe = gallery.getPerson('Zoë')!;
    await waitFor('republished', () => broker.since(since, t.presence(zoe.id)).length > 0);
    await sleep(100);
    const published = broker.since(since, t.discovery).map(json);
    assert.equal(published.length, 1);
    assert.deepEqual(published[0].cmps.face_event.event_types, ['Alice', 'Bob', 'Zoë', 'unknown']);
    assert.equal(broker.text(t.presence(zoe.id)), 'OFF');
  });

  it('without a gallery, a new name grows the device before its trigger fires', async () => {
    const { broker, session, connected } = rig({ gallery: null });
    session.start();
    await connected();
    const since = broker.log.length;
    await session.receive(visit('recognized', 'Dana'));
    const log = broker.since(since);
    const announced = log.findIndex((m) => m.topic === t.discovery && json(m).cmps.person_dana_trigger);
    const fired = log.findIndex((m) => m.topic === t.personTrigger('dana'));
    assert.ok(announced >= 0 && fired > announced, `announced at ${announced}, fired at ${fired}`);
  });

  it('diagnostics: backend on change, inference time at most once per interval, stream state', async () => {
    const { broker, session, connected } = rig();
    session.start();
    await connected();
    const since = broker.log.length;
    const embedder = (msPerFace: number) =>
      session.receive({ embedder: { id: 'm', backend: 'CPU', msPerFace }, frame: { camera: 'front_door' } as never });
    await embedder(6.123);
    await embedder(6.5);
    assert.equal(broker.since(since, t.backend).length, 1);
    assert.deepEqual(broker.since(since, t.inferenceTime).map(text), ['6.12']);
    await sleep(350);
    await embedder(7);
    assert.deepEqual(broker.since(since, t.inferenceTime).map(text), ['6.12', '7']);
    await session.receive({ topic: 'front_door/status', payload: { online: false } });
    assert.equal(broker.text(t.stream), 'OFF');
  });

  it('close says offline (retained), ends the client and stops its timers', async () => {
    const { broker, session, connected, client } = rig();
    session.start();
    await connected();
    await session.receive(visit('recognized', 'Alice')); // starts an off_delay timer
    await gallery.addCrops('Eve', [crop()]); // starts the gallery burst timer
    await session.close();
    assert.equal(broker.text(STATUS), 'offline');
    assert.equal(client().ended, true);
    assert.equal(gallery.listenerCount('change'), 0, 'no longer listens to the gallery');
    const since = broker.log.length;
    await sleep(150);
    assert.equal(broker.since(since).length, 0, 'nothing published after close');
  });

  it('masks secrets in what it reports', async () => {
    const secret = 'hunter2-secret';
    const { session, connected, client, warnings } = rig({ mask: (s) => maskSecrets(s, [secret]) });
    session.start();
    await connected();
    client().failPublishes = new Error(`not authorised: ${secret}`);
    await session.receive(visit('recognized', 'Alice'));
    client().failPublishes = null;
    client().drop();
    const lost = await waitFor('lost', () => warnings.find((w) => w.kind === 'lost'));
    assert.deepEqual(lost, { kind: 'lost', error: 'not authorised: ***' });
  });
});

describe('core/ha/discovery: HA_VISITS, the one map from visit events to HA', () => {
  it('every kind of visit has a fixed event type in event_types or the person name, and is accepted as input', () => {
    // With someone ignored, as when an 'ignored' visit can happen at all.
    const types = eventTypes([{ id: 'alice', name: 'Alice' }], true);
    for (const [event, rule] of Object.entries(HA_VISITS)) {
      const input: VisitPayload = {
        event: event as keyof typeof HA_VISITS,
        name: 'Alice',
        camera: 'c',
        trackId: '1',
        time: '',
      };
      assert.ok(isVisitPayload(input), event);
      const payload = faceEventPayload(
        { ...input, event: event as keyof typeof HA_VISITS },
        rule.person ? 'alice' : null,
        'c',
      );
      assert.ok(types.includes(payload.event_type), `${event}: ${payload.event_type} in ${types}`);
      assert.equal(payload.person_id, rule.person ? 'alice' : null);
    }
    assert.ok(isVisitPayload({ event: 'left', name: 'Alice', trackId: '1' }));
    assert.ok(!isVisitPayload({ event: 'waved', name: 'Alice', trackId: '1' }));
    assert.ok(!isVisitPayload({ event: 'toString', name: 'Alice', trackId: '1' }), "only the table's own rows");
  });
});
