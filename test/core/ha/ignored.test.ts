/** Ignored people in Home Assistant's discovery and event payloads: their own event type, no person components. */
import { strict as assert } from 'assert';
import { buildDeviceDiscovery, eventTypes, faceEventPayload, isVisitPayload } from '../../../nodes/core/ha/discovery';

describe('ha: ignored people', () => {
  const options = {
    discoveryPrefix: 'homeassistant',
    baseTopic: 'coral-face',
    deviceId: 'door',
    deviceName: 'Door',
    offDelaySeconds: 30,
    swVersion: '0',
  };

  it('adds the "ignored" event type only while someone is ignored, and gives ignored people no components', () => {
    assert.deepEqual(eventTypes([{ id: 'alice', name: 'Alice' }]), ['Alice', 'unknown']);
    assert.deepEqual(eventTypes([{ id: 'alice', name: 'Alice' }], true), ['Alice', 'unknown', 'ignored']);
    // The node passes the people without the ignored ones: the postman has no trigger and no presence sensor.
    const { payload } = buildDeviceDiscovery({
      ...options,
      people: [{ id: 'alice', name: 'Alice' }],
      ignoredPeople: true,
    });
    assert.deepEqual(payload.cmps.face_event.event_types, ['Alice', 'unknown', 'ignored']);
    assert.ok(Object.keys(payload.cmps).every((key) => !key.includes('postman')));
  });

  it('an ignored visit is its own event, with the name, never an unknown or a person event', () => {
    const visit = {
      event: 'ignored' as const,
      name: 'Postman',
      camera: 'door',
      trackId: 'door-4',
      time: '2026-01-01T00:00:00Z',
      cosine: 0.7,
      confidence: 0.9,
    };
    assert.equal(isVisitPayload(visit), true);
    const event = faceEventPayload(visit, 'postman', 'door');
    assert.equal(event.event_type, 'ignored');
    assert.equal(event.event, 'ignored');
    assert.equal(event.name, 'Postman');
    assert.equal(event.person_id, 'postman');
    assert.equal(isVisitPayload({ ...visit, event: 'bogus' }), false);
  });
});
