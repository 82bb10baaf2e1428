/**
 * Flows the package ships: the examples (Node-RED: Import > Examples) and the
 * demo that `coral-face demo` starts. Built here, once, so the demo and the
 * example files cannot drift apart (test/nodes/examples.test.ts checks that
 * examples/*.json are what these functions build, and that they deploy).
 */

import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_QUALITY_THRESHOLDS } from '../core/align/quality';
import { dialogDefault, SETTINGS } from '../core/flow/settings';
import { DEMO_LOOP_SECONDS } from './demo-clip';

export type FlowNode = Record<string, unknown> & { id: string; type: string };

export interface RecogniseFlowOptions {
  /** Tab label. */
  label: string;
  comment: string;
  camera: { name: string; url: string; fps?: number };
  detector: 'short' | 'full';
  device: string;
  galleryPath?: string;
  /** Add an inject + enrol pair for walk-up enrolment from this camera. */
  walkup?: boolean;
  /** How long the walk-up inject enrols for. Default 10 s. */
  walkupSeconds?: number;
}

/** Camera flows do not align faces the quality gate would refuse as too small anyway. */
const FLOW_MIN_FACE_SIZE = String(DEFAULT_QUALITY_THRESHOLDS.minBoxPx);

/** Stable ids per flow, readable in the JSON: "<prefix>-<role>". */
function ids(prefix: string) {
  return (role: string) => `${prefix}-${role}`;
}

/** What the editor shows on an unnamed node of these types (their label functions and en-US catalogs). */
const DEFAULT_LABELS: Record<string, (n: FlowNode) => string> = {
  'camera-in': () => 'camera in',
  align: (n) => `align (${n.detector === 'full' ? 'far' : 'near'})`,
  'edgetpu-embed': () => 'embed',
  'imprint-classify': () => 'classify',
  enrol: () => 'enrol',
  'ha-face-entities': (n) => (typeof n.camera === 'string' && n.camera ? `${n.camera} → HA` : 'HA face entities'),
  debug: (n) => (n.complete === 'true' ? 'msg' : `msg.${typeof n.complete === 'string' ? n.complete : 'payload'}`),
  inject: () => 'inject',
  comment: () => '',
};

/** The label Node-RED's editor draws on a node. */
export function nodeLabel(node: FlowNode): string {
  if (typeof node.name === 'string' && node.name) return node.name;
  return DEFAULT_LABELS[node.type]?.(node) ?? node.type;
}

/**
 * A node's box in the editor, estimated the way Node-RED's view computes it
 * (red/view.js): width = max(100, 20 * ceil((label width + 50 [icon and
 * padding] + 7 [input port]) / 20)), height = max(30, 15 per output); x, y
 * are the box's centre. The label is 14 px Helvetica: 8 px a character is a
 * little wider than its average, so the estimate errs on the large side.
 */
export function nodeBox(node: FlowNode): { left: number; right: number; top: number; bottom: number } {
  const inputs = ['camera-in', 'inject', 'comment'].includes(node.type) ? 0 : 1;
  const outputs =
    node.type === 'camera-in' || node.type === 'imprint-classify'
      ? 2
      : Array.isArray(node.wires)
        ? node.wires.length
        : 0;
  const width = Math.max(100, 20 * Math.ceil((nodeLabel(node).length * 8 + 50 + (inputs ? 7 : 0)) / 20));
  const height = Math.max(30, outputs * 15);
  const x = Number(node.x);
  const y = Number(node.y);
  return { left: x - width / 2, right: x + width / 2, top: y - height / 2, bottom: y + height / 2 };
}

const MARGIN = 40;
// Room for the status text under each node too (e.g. "4 faces · 16 ms · 9 dropped", about 180 px).
const GAP = 80;
const ROW = 80;

/**
 * Places rows of nodes left to right, each node after the previous one's
 * box, every box at positive coordinates. Rows are given top to bottom; a
 * row may start further right (`indent`, px) to sit under the node it hangs off.
 */
function laidOut(tab: string, rows: { nodes: FlowNode[]; indent?: number }[]): FlowNode[] {
  const out: FlowNode[] = [];
  rows.forEach((row, r) => {
    let left = MARGIN + (row.indent ?? 0);
    for (const node of row.nodes) {
      const probe = { ...node, x: 0, y: 0 };
      const box = nodeBox(probe);
      const width = box.right - box.left;
      out.push({ ...node, x: Math.round(left + width / 2), y: MARGIN + r * ROW, z: tab });
      left += width + GAP;
    }
  });
  return out;
}

export function recogniseFlow(prefix: string, options: RecogniseFlowOptions): FlowNode[] {
  const id = ids(prefix);
  const comment: FlowNode = {
    id: id('comment'),
    type: 'comment',
    name: options.label,
    info: options.comment,
    wires: [],
  };
  const camera: FlowNode = {
    id: id('camera'),
    type: 'camera-in',
    name: options.camera.name,
    url: options.camera.url,
    transport: 'tcp',
    fps: String(options.camera.fps ?? SETTINGS['camera-in'].fps.default),
    maxWidth: dialogDefault('camera-in', 'maxWidth'),
    stallSeconds: dialogDefault('camera-in', 'stallSeconds'),
    wires: [[id('align')], []],
  };
  const chain: FlowNode[] = [
    camera,
    {
      id: id('align'),
      type: 'align',
      name: '',
      detector: options.detector,
      minFaceSize: '40',
      minScore: dialogDefault('align', 'minScore'),
      maxFaces: dialogDefault('align', 'maxFaces'),
      tiles: false,
      carefulFrames: dialogDefault('align', 'carefulFrames'),
      wires: [[id('embed')]],
    },
    {
      id: id('embed'),
      type: 'edgetpu-embed',
      name: '',
      device: id('device'),
      embedAll: false,
      reuseMs: dialogDefault('edgetpu-embed', 'reuseMs'),
      wires: [[id('classify')]],
    },
    {
      // Output 2 (every frame) is off: a debug sidebar flooded with frames hides the visits.
      id: id('classify'),
      type: 'imprint-classify',
      name: '',
      gallery: id('gallery'),
      confirmFrames: dialogDefault('imprint-classify', 'confirmFrames'),
      unknownFrames: dialogDefault('imprint-classify', 'unknownFrames'),
      cooldown: dialogDefault('imprint-classify', 'cooldown'),
      maxMissed: dialogDefault('imprint-classify', 'maxMissed'),
      perFrame: false,
      wires: [[id('visits')], [id('frames')]],
    },
    { id: id('visits'), type: 'debug', name: 'visits', active: true, tosidebar: true, complete: 'payload', wires: [] },
  ];
  // Under the visits debug: the per-frame debug, off, for whoever wants it (tick classify's Output 2 too).
  const frames: FlowNode = {
    id: id('frames'),
    type: 'debug',
    name: 'every frame (off)',
    active: false,
    tosidebar: true,
    complete: 'faces',
    wires: [],
  };
  const rows: { nodes: FlowNode[]; indent?: number }[] = [{ nodes: [comment] }, { nodes: chain }];
  const chainRow = laidOut(prefix, rows)[rows[0].nodes.length + chain.length - 1];
  rows.push({ nodes: [frames], indent: Math.round(nodeBox(chainRow).left) - MARGIN });
  if (options.walkup) {
    rows.push({
      nodes: [
        {
          id: id('walkup'),
          type: 'inject',
          name: `walk-up: enrol Alice (${options.walkupSeconds ?? 10} s)`,
          props: [{ p: 'payload' }],
          repeat: '',
          once: false,
          payload: JSON.stringify({
            action: 'walkup',
            name: 'Alice',
            camera: options.camera.name,
            seconds: options.walkupSeconds ?? 10,
          }),
          payloadType: 'json',
          wires: [[id('enrol')]],
        },
        {
          id: id('enrol'),
          type: 'enrol',
          name: '',
          gallery: id('gallery'),
          minPhotos: dialogDefault('enrol', 'minPhotos'),
          walkupSeconds: dialogDefault('enrol', 'walkupSeconds'),
          wires: [[id('report')]],
        },
        {
          id: id('report'),
          type: 'debug',
          name: 'enrolment report',
          active: true,
          tosidebar: true,
          complete: 'payload',
          wires: [],
        },
      ],
    });
  }
  return [
    { id: prefix, type: 'tab', label: options.label, disabled: false, info: options.comment },
    ...laidOut(prefix, rows),
    {
      id: id('device'),
      type: 'edgetpu-device',
      name: options.device === 'cpu' ? 'CPU' : 'Coral (auto)',
      device: options.device,
      performance: 'high',
      model: '',
      threads: '',
    },
    {
      id: id('gallery'),
      type: 'face-gallery',
      name: 'people',
      path: options.galleryPath ?? '',
      threshold: '',
      margin: '',
      device: id('device'),
    },
  ];
}

export function enrolFromFolderFlow(prefix: string): FlowNode[] {
  const id = ids(prefix);
  const command = (payload: unknown) => JSON.stringify(payload);
  const nodes: FlowNode[] = [
    {
      id: id('comment'),
      type: 'comment',
      name: 'Enrol people from photos',
      wires: [],
      info:
        'Teach a person from 5-10 photos: edit the inject node (name and image paths, or send Buffers), then click it. ' +
        'The enrol node reports per photo what was accepted and why anything was rejected. Forget, rename and list work the same way.',
    },
    {
      id: id('enrol-alice'),
      type: 'inject',
      name: 'enrol Alice from photos',
      props: [{ p: 'payload' }],
      payload: command({
        action: 'enrol',
        name: 'Alice',
        images: [
          '/photos/alice/1.jpg',
          '/photos/alice/2.jpg',
          '/photos/alice/3.jpg',
          '/photos/alice/4.jpg',
          '/photos/alice/5.jpg',
        ],
      }),
      payloadType: 'json',
      repeat: '',
      once: false,
      wires: [[id('enrol')]],
    },
    {
      id: id('list'),
      type: 'inject',
      name: 'list people',
      props: [{ p: 'payload' }],
      payload: command({ action: 'list' }),
      payloadType: 'json',
      repeat: '',
      once: false,
      wires: [[id('enrol')]],
    },
    {
      id: id('rename'),
      type: 'inject',
      name: 'rename Alice to Alice Smith',
      props: [{ p: 'payload' }],
      payload: command({ action: 'rename', name: 'Alice', newName: 'Alice Smith' }),
      payloadType: 'json',
      repeat: '',
      once: false,
      wires: [[id('enrol')]],
    },
    {
      id: id('forget'),
      type: 'inject',
      name: 'forget Alice',
      props: [{ p: 'payload' }],
      payload: command({ action: 'forget', name: 'Alice' }),
      payloadType: 'json',
      repeat: '',
      once: false,
      wires: [[id('enrol')]],
    },
    {
      id: id('enrol'),
      type: 'enrol',
      name: '',
      gallery: id('gallery'),
      minPhotos: dialogDefault('enrol', 'minPhotos'),
      walkupSeconds: dialogDefault('enrol', 'walkupSeconds'),
      wires: [[id('report')]],
    },
    { id: id('report'), type: 'debug', name: 'report', active: true, tosidebar: true, complete: 'payload', wires: [] },
  ];
  const [comment, ...injects] = nodes.slice(0, 5);
  const [enrol, report] = nodes.slice(5);
  // The injects in a column, the enrol node and its report to the right of the widest.
  const column = injects.map((n) => ({ nodes: [n] }));
  const placed = laidOut(prefix, [{ nodes: [comment] }, ...column]);
  const right = Math.max(...placed.slice(1).map((n) => nodeBox(n).right));
  const middle = placed[1 + Math.floor(injects.length / 2)].y as number;
  const tail = laidOut(prefix, [{ nodes: [enrol, report], indent: right + GAP - MARGIN }]).map((n) => ({
    ...n,
    y: middle,
  }));
  return [
    { id: prefix, type: 'tab', label: 'Enrol from photos', disabled: false, info: '' },
    ...placed,
    ...tail,
    {
      id: id('device'),
      type: 'edgetpu-device',
      name: 'Coral (auto)',
      device: 'auto',
      performance: 'high',
      model: '',
      threads: '',
    },
    {
      id: id('gallery'),
      type: 'face-gallery',
      name: 'people',
      path: '',
      threshold: '',
      margin: '',
      device: id('device'),
    },
  ];
}

/** The files in examples/, by name. */
export function exampleFlows(): Record<string, FlowNode[]> {
  return {
    'recognise-rtsp-camera': recogniseFlow('ex-rtsp', {
      label: 'Recognise faces from an RTSP camera',
      comment:
        'Set the camera URL (and user/password, kept in Node-RED credentials) in camera-in. Output 1 of imprint-classify ' +
        'sends one message per visit: recognized, unknown, left. Use the near detector for a doorbell, far for a yard camera.',
      camera: { name: 'front_door', url: 'rtsp://192.0.2.10:554/stream1' },
      detector: 'short',
      device: 'auto',
    }),
    'enrol-from-folder': enrolFromFolderFlow('ex-folder'),
    'walk-up-enrolment': recogniseFlow('ex-walkup', {
      label: 'Walk-up enrolment',
      comment:
        'Click the inject node, then walk past the camera for 10 s: every face that passes the quality gate is ' +
        'taken (two a second at most) and Alice is enrolled. The report says which frames were accepted and why others were not.',
      camera: { name: 'hall', url: 'rtsp://192.0.2.11:554/stream1' },
      detector: 'short',
      device: 'auto',
      walkup: true,
    }),
    'cpu-only': recogniseFlow('ex-cpu', {
      label: 'Recognise without a Coral (CPU only)',
      comment:
        'The same flow on the CPU: device "cpu" in the edgetpu-device config. MobileFaceNet with XNNPACK takes about ' +
        '6 ms per face on two cores, so a few cameras at 5 fps need no Coral.',
      camera: { name: 'garden', url: 'rtsp://192.0.2.12:554/stream1' },
      detector: 'full',
      device: 'cpu',
    }),
  };
}

/** The demo: a looping clip as the camera, recognition, walk-up enrolment. */
export function demoFlow(clip: string, galleryPath: string): FlowNode[] {
  return recogniseFlow('demo', {
    label: 'coral-face demo',
    comment:
      'A looping 20 s clip made from photos stands in for a camera: 8 s of one woman walking up to it, then four ' +
      'group photos of strangers. Open the camera-in node to see the live view with boxes and names. Everyone is ' +
      '"unknown" until enrolled: click the walk-up inject (it watches one loop) to enrol the woman who walks up as ' +
      'Alice; the debug sidebar then shows "recognized Alice" within a loop, on the same visit if she is on screen.',
    camera: { name: 'demo', url: clip, fps: 5 },
    detector: 'full',
    device: 'auto',
    galleryPath,
    walkup: true,
    walkupSeconds: DEMO_LOOP_SECONDS,
  });
}

/** The nodes of one camera's chain into Home Assistant, in wiring order (the add-on keys its node ids on them). */
export const HA_CHAIN_ROLES = ['camera-in', 'align', 'edgetpu-embed', 'imprint-classify', 'ha-face-entities'] as const;
export type HaChainRole = (typeof HA_CHAIN_ROLES)[number];

export interface HaChainOptions {
  /** The id of each node of the chain. */
  id: (role: HaChainRole) => string;
  camera: { name: string; url: string };
  detector: 'short' | 'full';
  /** Ids of the edgetpu-device and face-gallery config nodes the chain uses. */
  device: string;
  gallery: string;
  /** The MQTT broker URL ('' until one is known). */
  broker: string;
}

/**
 * One camera into Home Assistant, as the add-on generates it for each camera
 * (addon/rootfs/usr/lib/coral-face/generate.js): camera-in -> align ->
 * edgetpu-embed -> imprint-classify -> ha-face-entities, and camera-in's
 * stream status to ha-face-entities too. Defaults come from the settings
 * table; the add-on adds positions and decides which properties it manages.
 */
export function homeAssistantChain(options: HaChainOptions): FlowNode[] {
  const { id } = options;
  return [
    {
      id: id('camera-in'),
      type: 'camera-in',
      name: options.camera.name,
      url: options.camera.url,
      transport: 'tcp',
      fps: dialogDefault('camera-in', 'fps'),
      maxWidth: dialogDefault('camera-in', 'maxWidth'),
      stallSeconds: dialogDefault('camera-in', 'stallSeconds'),
      wires: [[id('align')], [id('ha-face-entities')]],
    },
    {
      id: id('align'),
      type: 'align',
      name: '',
      detector: options.detector,
      minScore: dialogDefault('align', 'minScore'),
      maxFaces: dialogDefault('align', 'maxFaces'),
      minFaceSize: FLOW_MIN_FACE_SIZE,
      tiles: false,
      minSharpness: '',
      maxYaw: '',
      wires: [[id('edgetpu-embed')]],
    },
    {
      id: id('edgetpu-embed'),
      type: 'edgetpu-embed',
      name: '',
      device: options.device,
      embedAll: false,
      wires: [[id('imprint-classify')]],
    },
    {
      id: id('imprint-classify'),
      type: 'imprint-classify',
      name: '',
      gallery: options.gallery,
      confirmFrames: dialogDefault('imprint-classify', 'confirmFrames'),
      unknownFrames: dialogDefault('imprint-classify', 'unknownFrames'),
      cooldown: dialogDefault('imprint-classify', 'cooldown'),
      maxMissed: dialogDefault('imprint-classify', 'maxMissed'),
      perFrame: false,
      wires: [[id('ha-face-entities')], []],
    },
    {
      id: id('ha-face-entities'),
      type: 'ha-face-entities',
      name: '',
      broker: options.broker,
      caFile: '',
      rejectUnauthorized: true,
      discoveryPrefix: 'homeassistant',
      baseTopic: 'coral-face',
      camera: options.camera.name,
      deviceId: '',
      gallery: options.gallery,
      offDelay: dialogDefault('ha-face-entities', 'offDelay'),
      retainImage: true,
      wires: [],
    },
  ];
}

/** Rewrites examples/*.json from the builders above (`npm run examples`). */
export function writeExamples(dir: string): string[] {
  return Object.entries(exampleFlows()).map(([name, flow]) => {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, `${JSON.stringify(flow, null, 2)}\n`);
    return file;
  });
}

if (require.main === module) {
  for (const file of writeExamples(process.argv[2] ?? 'examples')) process.stdout.write(`wrote ${file}\n`);
}
