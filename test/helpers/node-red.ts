/** node-red-node-test-helper, typed just enough for our tests, on Node-RED 4.1. */
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
  _RED: any;
}

export const NODES = ['edgetpu-device', 'face-gallery', 'align', 'edgetpu-embed', 'imprint-classify', 'enrol']
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  .map((type) => require(`../../nodes/${type}/${type}`));

export default helper;
