/**
 * Home Assistant MQTT device discovery for one camera: the payloads, the
 * topic layout, what each visit becomes. No MQTT client and no Node-RED here
 * (presence.ts keeps who is present; session.ts does the I/O).
 *
 * One camera is one HA device, announced with a single retained payload on
 * `<prefix>/device/<deviceId>/config` (HA "device discovery", `cmps` map):
 *
 *   face_event               event          event_types = enrolled names + "unknown" + "ignored" (HA_VISITS)
 *   unknown_trigger          device trigger "Unknown person detected"
 *   person_<id>_trigger      device trigger "<name> recognized"      (one per person, label sticky)
 *   person_<id>_presence     binary_sensor  occupancy, off_delay     (one per person)
 *   last_face                image          JPEG bytes of the last face crop
 *   last_person              sensor         name of the last person seen
 *   backend                  sensor         diagnostic: "Edge TPU usb:0" / "CPU (why)"
 *   inference_time           sensor         diagnostic: ms per face
 *   stream                   binary_sensor  diagnostic: connectivity of the camera stream
 *
 * Ids: the device id is a slug of the camera (or one the user pins), person
 * components are keyed by the gallery's person id, which never changes on a
 * rename. So unique_ids and entity ids survive renames and redeploys; display
 * names follow the gallery. Device triggers are the exception: since HA 2024.2
 * an automation finds its MQTT device trigger by device, type and subtype
 * (homeassistant/components/mqtt/device_trigger.py), so a subtype that
 * followed a rename would silently orphan every automation using it. A
 * trigger keeps the subtype it was first announced with (`triggerSubtypes`,
 * read back from the broker) until the person is forgotten.
 */
import { createHash } from 'node:crypto';
import { PACKAGE_NAME } from '../common/package';
import type { VisitPayload } from '../flow/messages';
import { UNKNOWN } from '../identify/imprint';

export const ORIGIN_NAME = PACKAGE_NAME;
export const MANUFACTURER = PACKAGE_NAME;
export const MODEL = 'Camera face recognition';
/** The event_type for a confirmed stranger (imprint-classify names them "unknown" too). */
export const UNKNOWN_EVENT_TYPE = UNKNOWN;
/**
 * The event_type of a person marked ignored in the face library (the postman): their own event
 * type on the event entity, never a person trigger, presence sensor or unknown alert.
 */
export const IGNORED_EVENT_TYPE = 'ignored';
/** Device trigger type/subtype. HA renders custom values as "<subtype> <type>". */
export const RECOGNIZED_TRIGGER_TYPE = 'recognized';
export const UNKNOWN_TRIGGER_TYPE = 'detected';
export const UNKNOWN_TRIGGER_SUBTYPE = 'Unknown person';
export const PAYLOAD_ON = 'ON';
export const PAYLOAD_OFF = 'OFF';

/** The HA topic id character class: `[a-zA-Z0-9_-]`. */
const TOPIC_ID = /^[a-zA-Z0-9_-]+$/;
const MAX_SLUG = 40;

export interface HaPerson {
  /** Stable id (the gallery's person id, or a slug of the name without a gallery). */
  id: string;
  /** Display name, as the gallery has it now. */
  name: string;
}

export interface HaDeviceOptions {
  discoveryPrefix: string;
  baseTopic: string;
  /** Stable `[a-zA-Z0-9_-]` id: discovery object id, topic segment, unique_id prefix. */
  deviceId: string;
  /** Shown in HA as the device name ("Front door"). */
  deviceName: string;
  people: readonly HaPerson[];
  /** Whether the gallery has people marked ignored (they are not in `people`): adds the "ignored" event type. */
  ignoredPeople?: boolean;
  /** binary_sensor off_delay in seconds; 0 leaves presence on until the visit ends. */
  offDelaySeconds: number;
  swVersion: string;
  /** personId → the trigger subtype announced before; kept so automations keep firing after a rename. */
  triggerSubtypes?: ReadonlyMap<string, string>;
}

export interface DeviceTopics {
  discovery: string;
  status: string;
  event: string;
  unknownTrigger: string;
  personTrigger(personId: string): string;
  presence(personId: string): string;
  face: string;
  lastPerson: string;
  lastPersonAttributes: string;
  backend: string;
  inferenceTime: string;
  stream: string;
}

export type Component = Record<string, unknown> & { p: string };

export interface DeviceDiscovery {
  dev: { ids: string[]; name: string; mf: string; mdl: string; sw: string };
  o: { name: string; sw: string };
  availability: { topic: string; payload_available: string; payload_not_available: string }[];
  qos: number;
  cmps: Record<string, Component>;
}

// ---------------------------------------------------------------- ids and topics

/** 8 hex digits of SHA-1: a short, stable tag for names a slug cannot carry. */
function shortHash(text: string): string {
  return createHash('sha1').update(text, 'utf8').digest('hex').slice(0, 8);
}

/**
 * A topic- and object-id-safe slug (`[a-z0-9_]`). Accents are dropped
 * ("Haustür" → "haustur"); when characters are lost that the slug cannot
 * spell (CJK, emoji, "/", "#") or the name is cut, a hash of the whole name
 * is appended, so "玄関" and "車庫" stay two devices ("id_1a2b3c4d").
 */
export function slugId(name: string): string {
  const nfc = name.normalize('NFC').trim();
  const folded = nfc.normalize('NFKD').replace(/\p{M}+/gu, '');
  const base = folded
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  const lossy = /[^A-Za-z0-9 _.-]/.test(folded) || base.length > MAX_SLUG || base.length === 0;
  const cut = base.slice(0, MAX_SLUG).replace(/_+$/, '');
  return lossy ? `${cut || 'id'}_${shortHash(nfc)}` : cut;
}

/** "front_door" → "Front door"; anything that is not a plain identifier is shown as given. */
export function prettyName(camera: string): string {
  if (!/^[a-z0-9]+(?:[_-][a-z0-9]+)*$/.test(camera)) return camera;
  const words = camera.replace(/[_-]+/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * Checks a configured topic prefix ("homeassistant", "coral-face", "site/a"):
 * no wildcards, no empty levels, no leading or trailing "/". Returns the
 * problem, or null.
 */
export function topicPrefixProblem(prefix: string): string | null {
  if (prefix.length === 0) return 'is empty';
  if (/[+#]/.test(prefix)) return 'contains an MQTT wildcard (+ or #)';
  if (prefix.split('/').some((level) => level.length === 0))
    return 'has an empty level (leading, trailing or double "/")';
  if (/\p{Cc}/u.test(prefix)) return 'contains control characters';
  return null;
}

export function isTopicId(id: string): boolean {
  return TOPIC_ID.test(id);
}

export function statusTopic(baseTopic: string): string {
  return `${baseTopic}/status`;
}

export function deviceTopics(discoveryPrefix: string, baseTopic: string, deviceId: string): DeviceTopics {
  const root = `${baseTopic}/${deviceId}`;
  return {
    discovery: `${discoveryPrefix}/device/${deviceId}/config`,
    status: statusTopic(baseTopic),
    event: `${root}/event`,
    // "unknown" and person ids live on different levels: a person may be called "Unknown".
    unknownTrigger: `${root}/trigger/unknown`,
    personTrigger: (personId) => `${root}/trigger/person/${personId}`,
    presence: (personId) => `${root}/presence/${personId}`,
    face: `${root}/face`,
    lastPerson: `${root}/last_person`,
    lastPersonAttributes: `${root}/last_person/attributes`,
    backend: `${root}/diagnostics/backend`,
    inferenceTime: `${root}/diagnostics/inference_time`,
    stream: `${root}/diagnostics/stream`,
  };
}

export const personKey = {
  trigger: (personId: string) => `person_${personId}_trigger`,
  presence: (personId: string) => `person_${personId}_presence`,
};

/**
 * Every enrolled display name, then the fixed event types of HA_VISITS
 * ("unknown", and "ignored" while someone is ignored), once each, in a
 * stable order.
 */
export function eventTypes(people: readonly HaPerson[], ignoredPeople = false): string[] {
  const names = [...new Set(people.map((p) => p.name))].sort((a, b) => a.localeCompare(b));
  const fixed = Object.values(HA_VISITS).flatMap((rule: HaVisitRule) =>
    rule.eventType === null ? [] : [rule.eventType],
  );
  return [...new Set([...names, ...fixed.filter((type) => ignoredPeople || type !== IGNORED_EVENT_TYPE)])];
}

// ---------------------------------------------------------------- discovery payload

/**
 * The device discovery payload (publish retained). Availability is shared at
 * the root (allowed there by the HA docs), so the last will "offline" on
 * `<base>/status` greys out every entity of every camera of this connection.
 */
export function buildDeviceDiscovery(options: HaDeviceOptions): { topic: string; payload: DeviceDiscovery } {
  const { deviceId } = options;
  if (!isTopicId(deviceId)) throw new Error(`device id '${deviceId}' must only use [a-zA-Z0-9_-]`);
  for (const person of options.people) {
    if (!isTopicId(person.id)) throw new Error(`person id '${person.id}' must only use [a-zA-Z0-9_-]`);
  }
  const t = deviceTopics(options.discoveryPrefix, options.baseTopic, deviceId);
  const uid = (key: string) => `coral_face_${deviceId}_${key}`;
  const cmps: Record<string, Component> = {
    face_event: {
      p: 'event',
      unique_id: uid('face_event'),
      name: 'Face',
      icon: 'mdi:face-recognition',
      // No device_class: HA's event classes are button, doorbell and motion; a face is none of them.
      state_topic: t.event,
      event_types: eventTypes(options.people, options.ignoredPeople),
    },
    unknown_trigger: {
      p: 'device_automation',
      automation_type: 'trigger',
      topic: t.unknownTrigger,
      type: UNKNOWN_TRIGGER_TYPE,
      subtype: UNKNOWN_TRIGGER_SUBTYPE,
    },
    last_face: {
      p: 'image',
      unique_id: uid('last_face'),
      name: 'Last face',
      image_topic: t.face,
      content_type: 'image/jpeg',
    },
    last_person: {
      p: 'sensor',
      unique_id: uid('last_person'),
      name: 'Last person',
      icon: 'mdi:account-eye',
      state_topic: t.lastPerson,
      json_attributes_topic: t.lastPersonAttributes,
    },
    backend: {
      p: 'sensor',
      unique_id: uid('backend'),
      name: 'Inference backend',
      icon: 'mdi:chip',
      entity_category: 'diagnostic',
      state_topic: t.backend,
    },
    inference_time: {
      p: 'sensor',
      unique_id: uid('inference_time'),
      name: 'Inference time per face',
      entity_category: 'diagnostic',
      device_class: 'duration',
      unit_of_measurement: 'ms',
      state_class: 'measurement',
      suggested_display_precision: 1,
      state_topic: t.inferenceTime,
    },
    stream: {
      p: 'binary_sensor',
      unique_id: uid('stream'),
      name: 'Camera stream',
      entity_category: 'diagnostic',
      device_class: 'connectivity',
      state_topic: t.stream,
    },
  };
  const subtypes = assignSubtypes(options.people, options.triggerSubtypes ?? new Map());
  for (const person of [...options.people].sort((a, b) => a.id.localeCompare(b.id))) {
    cmps[personKey.trigger(person.id)] = {
      p: 'device_automation',
      automation_type: 'trigger',
      topic: t.personTrigger(person.id),
      type: RECOGNIZED_TRIGGER_TYPE,
      subtype: subtypes.get(person.id)!,
    };
    const presence: Component = {
      p: 'binary_sensor',
      unique_id: uid(personKey.presence(person.id)),
      name: person.name,
      device_class: 'occupancy',
      state_topic: t.presence(person.id),
    };
    if (options.offDelaySeconds > 0) presence.off_delay = Math.round(options.offDelaySeconds);
    cmps[personKey.presence(person.id)] = presence;
  }
  return {
    topic: t.discovery,
    payload: {
      dev: {
        ids: [`coral_face_${deviceId}`],
        name: options.deviceName,
        mf: MANUFACTURER,
        mdl: MODEL,
        sw: options.swVersion,
      },
      o: { name: ORIGIN_NAME, sw: options.swVersion },
      availability: [{ topic: t.status, payload_available: 'online', payload_not_available: 'offline' }],
      qos: 1,
      cmps,
    },
  };
}

/**
 * Trigger subtypes: a person keeps an earlier one; a new person gets their
 * name, or "<name> (<id>)" when a renamed person still holds that name (HA
 * refuses two triggers with the same type and subtype on one device).
 */
function assignSubtypes(people: readonly HaPerson[], previous: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  const taken = new Set<string>();
  const ordered = [...people].sort((a, b) => a.id.localeCompare(b.id));
  for (const person of ordered) {
    const kept = previous.get(person.id);
    if (kept !== undefined && !taken.has(kept)) {
      out.set(person.id, kept);
      taken.add(kept);
    }
  }
  for (const person of ordered) {
    if (out.has(person.id)) continue;
    const subtype = taken.has(person.name) ? `${person.name} (${person.id})` : person.name;
    out.set(person.id, subtype);
    taken.add(subtype);
  }
  return out;
}

/** personId → trigger subtype of the person triggers in a (parsed) device payload. */
export function triggerSubtypes(payload: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const cmps = (payload as { cmps?: Record<string, unknown> } | null)?.cmps;
  if (!cmps || typeof cmps !== 'object') return out;
  for (const [key, value] of Object.entries(cmps)) {
    const match = /^person_([a-zA-Z0-9_-]+)_trigger$/.exec(key);
    const subtype = (value as { subtype?: unknown } | null)?.subtype;
    if (match && typeof subtype === 'string') out.set(match[1], subtype);
  }
  return out;
}

/** A component entry that only says its platform: HA's way to remove it from a device. */
export function isRemovalEntry(component: unknown): boolean {
  return (
    !!component &&
    typeof component === 'object' &&
    Object.keys(component).length === 1 &&
    typeof (component as Component).p === 'string'
  );
}

/** key → platform of the live components of a (parsed) device payload; removal entries excluded. */
export function componentPlatforms(payload: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const cmps =
    (payload as { cmps?: unknown; components?: unknown } | null)?.cmps ??
    (payload as { components?: unknown } | null)?.components;
  if (!cmps || typeof cmps !== 'object') return out;
  for (const [key, value] of Object.entries(cmps as Record<string, unknown>)) {
    const platform =
      (value as { p?: unknown; platform?: unknown } | null)?.p ?? (value as { platform?: unknown } | null)?.platform;
    if (typeof platform === 'string' && !isRemovalEntry(value)) out.set(key, platform);
  }
  return out;
}

/**
 * The HA docs' two-step removal of single components from a device: first
 * the device payload with each removed component reduced to `{"p": <platform>}`
 * ("this will explicitly remove ... and its entry"), then the payload with
 * them omitted. Returns the first step, or null when nothing was removed.
 * Leaving a component out without the first step removes nothing.
 */
export function removalStep(next: DeviceDiscovery, previous: ReadonlyMap<string, string>): DeviceDiscovery | null {
  const removed = [...previous].filter(([key]) => !(key in next.cmps));
  if (removed.length === 0) return null;
  const cmps: Record<string, Component> = { ...next.cmps };
  for (const [key, platform] of removed) cmps[key] = { p: platform };
  return { ...next, cmps };
}

/** Whether a retained device payload was published by us for this base topic (so it is ours to update). */
export function isOurDiscovery(payload: unknown, baseTopic: string): boolean {
  const p = payload as { o?: { name?: unknown }; availability?: { topic?: unknown }[] } | null;
  return (
    !!p &&
    p.o?.name === ORIGIN_NAME &&
    Array.isArray(p.availability) &&
    p.availability[0]?.topic === statusTopic(baseTopic)
  );
}

/** People as a previous payload announced them (presence components), for running without a gallery. */
export function peopleFromDiscovery(payload: unknown): HaPerson[] {
  const cmps = (payload as { cmps?: Record<string, unknown> } | null)?.cmps;
  if (!cmps || typeof cmps !== 'object') return [];
  const people: HaPerson[] = [];
  for (const [key, value] of Object.entries(cmps)) {
    const match = /^person_([a-zA-Z0-9_-]+)_presence$/.exec(key);
    const name = (value as { name?: unknown } | null)?.name;
    if (match && typeof name === 'string' && !isRemovalEntry(value)) people.push({ id: match[1], name });
  }
  return people;
}

// ---------------------------------------------------------------- visits and state payloads

/** What one kind of visit becomes in Home Assistant. */
export interface HaVisitRule {
  /** The event entity's event_type: null for the person's name, else a fixed type (listed in every event_types). */
  eventType: string | null;
  /** The visit names a person (name, person_id, presence); otherwise it is a stranger's. */
  person: boolean;
  /** The device trigger it fires: the person's, the one for strangers, or none. */
  trigger: 'person' | 'unknown' | null;
  /** It turns the person's presence sensor on (and restarts off_delay). */
  presence: boolean;
}

/**
 * The one place that maps visit events to HA: event entity, trigger and
 * presence, per kind of visit (`left` only ends presence, so it has no row).
 * A new kind of visit is a row here; the session and the payloads follow it.
 */
export const HA_VISITS = {
  recognized: { eventType: null, person: true, trigger: 'person', presence: true },
  unknown: { eventType: UNKNOWN_EVENT_TYPE, person: false, trigger: 'unknown', presence: false },
  // A known-but-silent person (the postman): their own event type, no trigger, no presence, never an unknown alert.
  ignored: { eventType: IGNORED_EVENT_TYPE, person: true, trigger: null, presence: false },
} as const satisfies Record<Exclude<VisitPayload['event'], 'left'>, HaVisitRule>;

/** The visit events HA hears about as events. */
export type HaVisitEvent = keyof typeof HA_VISITS;

export interface FaceEventPayload {
  event_type: string;
  event: HaVisitEvent;
  name: string;
  person_id: string | null;
  camera: string;
  time: string;
  track_id: string;
  cosine: number | null;
  confidence: number | null;
  /** The name this track was announced as before (a corrected decision), else null. */
  revises: string | null;
}

/**
 * The JSON for the event entity and the device trigger of one visit. HA
 * needs `event_type` (one of event_types); every other key becomes an event
 * attribute, and in a device trigger automation `trigger.payload_json`.
 */
export function faceEventPayload(
  visit: VisitPayload & { event: HaVisitEvent },
  personId: string | null,
  camera: string,
): FaceEventPayload {
  const rule: HaVisitRule = HA_VISITS[visit.event];
  return {
    event_type: rule.eventType ?? visit.name,
    event: visit.event,
    name: rule.person ? visit.name : UNKNOWN_EVENT_TYPE,
    person_id: rule.person ? personId : null,
    camera,
    time: visit.time,
    track_id: visit.trackId,
    cosine: typeof visit.cosine === 'number' ? visit.cosine : null,
    confidence: typeof visit.confidence === 'number' ? visit.confidence : null,
    revises: typeof visit.revises === 'string' ? visit.revises : null,
  };
}

/** Accepts what imprint-classify sends on output 1, nothing else. */
export function isVisitPayload(value: unknown): value is VisitPayload {
  const v = value as Partial<VisitPayload> | null;
  return (
    !!v &&
    typeof v === 'object' &&
    typeof v.event === 'string' &&
    (v.event === 'left' || Object.hasOwn(HA_VISITS, v.event)) &&
    typeof v.name === 'string' &&
    typeof v.trackId === 'string'
  );
}
