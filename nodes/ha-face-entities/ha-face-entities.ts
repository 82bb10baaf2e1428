/**
 * ha-face-entities: imprint-classify's visit events in, Home Assistant
 * entities out over MQTT. Each camera becomes one HA device with an event
 * entity, a device trigger per person, presence sensors, the last face image
 * and diagnostics. The session (nodes/core/ha/session.ts) does the MQTT work;
 * this node reads the config, opens the client and reports.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { connect } from 'mqtt';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { FaceGalleryNode } from '../config-types';
import { maskSecrets } from '../core/common/secrets';
import { packageVersion } from '../core/common/package';
import type { FaceMessage } from '../core/flow/messages';
import type { Gallery } from '../core/gallery/gallery';
import { isTopicId, topicPrefixProblem } from '../core/ha/discovery';
import { HaSession, SessionStatus, SessionWarning } from '../core/ha/session';
import { closeWhen, configNumber, errorMessage, fail, showStatus } from '../kit';

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

function bool(value: boolean | string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return value === true || value === 'true';
}

export = function register(RED: NodeAPI): void {
  function HaFaceEntities(this: Node & { credentials?: HaCredentials }, config: HaDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const credentials: HaCredentials = node.credentials ?? {};
    const broker = (config.broker ?? '').trim();
    const secrets = [credentials.password];
    try {
      // A password written into the broker URL is just as secret.
      const url = new URL(broker);
      if (url.password) secrets.push(decodeURIComponent(url.password));
    } catch {
      // not a URL: the configuration check below says so
    }
    const mask = (text: string) => maskSecrets(text, secrets);
    const brokerLabel = mask(broker);
    // The status has room for the host only; the log lines name the whole (masked) URL.
    const brokerHost = URL.canParse(broker) ? new URL(broker).host : brokerLabel;
    const report = (text: string) => {
      const masked = mask(text);
      showStatus(node, 'error', masked);
      node.error(masked);
    };

    const discoveryPrefix = (config.discoveryPrefix ?? '').trim() || 'homeassistant';
    const baseTopic = (config.baseTopic ?? '').trim() || 'coral-face';
    const deviceId = (config.deviceId ?? '').trim();
    const problems: string[] = [];
    if (!/^(mqtts?|wss?):\/\/[^/\s]+/i.test(broker)) problems.push(RED._('ha-face-entities.errors.broker'));
    const prefixProblem = topicPrefixProblem(discoveryPrefix);
    if (prefixProblem)
      problems.push(RED._('ha-face-entities.errors.topic', { what: 'discovery prefix', problem: prefixProblem }));
    const baseProblem = topicPrefixProblem(baseTopic);
    if (baseProblem)
      problems.push(RED._('ha-face-entities.errors.topic', { what: 'base topic', problem: baseProblem }));
    if (deviceId && !isTopicId(deviceId)) problems.push(RED._('ha-face-entities.errors.deviceId'));
    let offDelaySeconds = 0;
    try {
      offDelaySeconds = configNumber('ha-face-entities', 'offDelay', config.offDelay);
    } catch {
      problems.push(RED._('ha-face-entities.errors.offDelay'));
    }
    const caFile = (config.caFile ?? '').trim();
    let ca: Buffer | undefined;
    try {
      if (caFile) ca = fs.readFileSync(caFile);
    } catch (error) {
      problems.push(RED._('ha-face-entities.errors.ca', { file: caFile, error: errorMessage(error) }));
    }
    if (problems.length) {
      report(problems.join('; '));
      node.on('input', (_msg, _send, done) => done(new Error(mask(problems.join('; ')))));
      return;
    }

    let lastConnectError: string | null = null;
    const onStatus = (status: SessionStatus) => {
      switch (status.state) {
        case 'connecting':
          return showStatus(node, 'pending', RED._('ha-face-entities.status.connecting', { broker: brokerHost }));
        case 'syncing':
          return showStatus(node, 'pending', RED._('ha-face-entities.status.syncing'));
        case 'connected':
          lastConnectError = null;
          return showStatus(
            node,
            'ok',
            RED._('ha-face-entities.status.connected', { cameras: status.cameras, people: status.people }),
          );
        case 'disconnected': {
          // The reason goes to the log, once per reason: a wrong password retried all night is one line.
          const error = status.error ?? RED._('ha-face-entities.status.noBroker');
          if (error !== lastConnectError)
            node.warn(RED._('ha-face-entities.warn.connect', { broker: brokerLabel, error }));
          lastConnectError = error;
          return showStatus(
            node,
            'error',
            RED._('ha-face-entities.status.disconnected', { seconds: status.retryInSeconds }),
          );
        }
        case 'visit':
          return showStatus(
            node,
            status.event === 'recognized' ? 'ok' : 'notice',
            RED._(`ha-face-entities.status.${status.event}`, { name: status.name, camera: status.camera }),
          );
        case 'failed':
          return report(status.error);
      }
    };
    const onWarning = (warning: SessionWarning) => {
      switch (warning.kind) {
        case 'dropped':
          return node.warn(RED._('ha-face-entities.warn.dropped', { count: warning.count }));
        case 'sync':
          return node.warn(RED._('ha-face-entities.warn.sync', { error: warning.error }));
        case 'lost':
          return node.warn(RED._('ha-face-entities.warn.lost', { broker: brokerLabel, error: warning.error ?? '-' }));
        case 'notEnrolled':
          return node.warn(RED._('ha-face-entities.warn.notEnrolled', { name: warning.name }));
        case 'failed':
          return node.warn(warning.error);
      }
    };

    let session: HaSession | null = null;
    let closing = false;
    const open = (gallery: Gallery | null) => {
      if (closing) return;
      session = new HaSession({
        discoveryPrefix,
        baseTopic,
        camera: (config.camera ?? '').trim(),
        deviceId,
        offDelaySeconds,
        retainImage: bool(config.retainImage, true),
        swVersion: packageVersion(),
        gallery,
        mask,
        onStatus,
        onWarning,
        connect: (protocol) =>
          connect(broker, {
            ...protocol,
            clientId: `coral-face-${node.id.replace(/[^a-zA-Z0-9]/g, '').slice(0, 12)}-${randomBytes(3).toString('hex')}`,
            rejectUnauthorized: bool(config.rejectUnauthorized, true),
            ...(ca ? { ca } : {}),
            ...(credentials.user ? { username: credentials.user } : {}),
            ...(credentials.password ? { password: credentials.password } : {}),
          }),
      });
      session.start();
    };

    // The gallery names the people before the first discovery goes out.
    const galleryNode = config.gallery ? (RED.nodes.getNode(config.gallery) as FaceGalleryNode | null) : null;
    if (config.gallery && !galleryNode) report(RED._('ha-face-entities.errors.gallery'));
    const ready = galleryNode ? galleryNode.gallery() : Promise.resolve(null);
    ready.then(open, (error) => {
      report(errorMessage(error));
      open(null);
    });

    node.on('input', (raw, _send, done) => {
      const msg = raw as NodeMessageInFlow & FaceMessage;
      // Before the gallery is open there is no session yet: wait for it (after close there is none).
      ready
        .catch(() => null)
        .then(() => session?.receive(msg))
        .then(
          () => done(),
          (error) => fail(node, new Error(mask(errorMessage(error))), done),
        );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      const current = session;
      session = null;
      closeWhen(node, current ? current.close() : Promise.resolve(), done);
    });
  }

  RED.nodes.registerType('ha-face-entities', HaFaceEntities as unknown as (this: Node, def: NodeDef) => void, {
    credentials: {
      user: { type: 'text' },
      password: { type: 'password' },
    },
  });
};
