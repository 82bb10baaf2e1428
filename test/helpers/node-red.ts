/** node-red-node-test-helper, typed just enough for our tests, on Node-RED 4.1. */
import * as fs from 'fs';
import * as path from 'path';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper') as NodeRedTestHelper;
helper.init(require.resolve('node-red'));

export interface TestNode {
  id: string;
  on(event: 'input', listener: (msg: any) => void): void;
  receive(msg: unknown): void;
  status?: unknown;
  [key: string]: any;
}

export interface NodeRedTestHelper {
  init(path: string): void;
  startServer(done: (error?: Error) => void): void;
  stopServer(done: (error?: Error) => void): void;
  load(nodes: unknown[], flow: unknown[], credentials?: Record<string, unknown>): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): TestNode;
  settings(settings: Record<string, unknown>): void;
  _RED: any;
}

/**
 * The test helper's RED._ returns the message id itself; the nodes' status
 * texts are asserted on, so translate from the real en-US catalogs that the
 * build lays out beside each node (i18next's __name__ placeholders).
 */
export function translate(key: string, vars: Record<string, unknown> = {}): string {
  const type = key.split('.')[0];
  const file = path.join(__dirname, '..', '..', 'nodes', type, 'locales', 'en-US', `${type}.json`);
  let text: unknown = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
  const parts = key.split('.');
  for (const part of parts.slice(0, -1)) text = (text as Record<string, unknown> | undefined)?.[part];
  // i18next plurals: key_one / key_other chosen by vars.count.
  const last = parts[parts.length - 1];
  const table = text as Record<string, unknown> | undefined;
  text =
    table?.[last] ??
    (typeof vars.count === 'number' ? table?.[`${last}_${vars.count === 1 ? 'one' : 'other'}`] : undefined);
  if (typeof text !== 'string') return key;
  return text.replace(/__([a-zA-Z0-9_]+)__/g, (_all, name: string) =>
    name in vars ? String(vars[name]) : `__${name}__`,
  );
}

function withCatalog(register: (red: { _: unknown }) => unknown) {
  return (red: { _: unknown }) => {
    red._ = translate;
    return register(red);
  };
}

export function nodeModule(type: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return withCatalog(require(`../../nodes/${type}/${type}`));
}

export const NODES = ['edgetpu-device', 'face-gallery', 'align', 'edgetpu-embed', 'imprint-classify', 'enrol'].map(
  nodeModule,
);

export default helper;

/**
 * A flow for helper.load: flow nodes go on one tab with a position (Node-RED
 * treats a node without x/y as a config node), config nodes stay global.
 */
export function onTab(nodes: Record<string, unknown>[]): Record<string, unknown>[] {
  return [
    { id: 'tab', type: 'tab' },
    ...nodes.map((n) => ('wires' in n || n.type === 'helper' ? { ...n, z: 'tab', x: 100, y: 100 } : n)),
  ];
}
