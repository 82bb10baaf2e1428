/**
 * The adapter kit: what every Node-RED node of this package shares, so that
 * the nodes stay thin (read the config, call nodes/core, report) and report
 * the same way.
 *
 * - One status vocabulary: a state decides the colour and shape, the text is
 *   short (Node-RED shows it under the node; the detail goes to the log, the
 *   debug sidebar or msg).
 * - One config parser (nodes/core/flow/settings.ts): numbers from the edit dialog (strings) checked against
 *   their range, with the node's default for a blank field, and an error that
 *   names the field for anything else.
 * - One failure path: the error's message in the status, `done(error)` so a
 *   Catch node sees it.
 */
import type { Node, NodeAPI } from 'node-red';
import { errorMessage } from './core/common/errors';
import {
  ConfigError,
  numberSetting,
  SETTINGS,
  type NodeType,
  type NumberRule,
  type NumericSetting,
} from './core/flow/settings';

export { ConfigError, numberSetting, type NumberRule };

/** What a node is doing; each state has one look, the same on every node. */
export type NodeState =
  /** configured and waiting for input */
  | 'ready'
  /** connecting, opening, collecting (walk-up) */
  | 'pending'
  /** working as it should: frames flowing, a person recognised */
  | 'ok'
  /** works on the CPU, or reports something the user should notice (a stranger) */
  | 'notice'
  /** working, but degraded or retrying */
  | 'warning'
  /** not working: bad config, a failed message */
  | 'error'
  | 'stopped';

const LOOK: Record<NodeState, { fill: 'green' | 'yellow' | 'red' | 'blue' | 'grey'; shape: 'dot' | 'ring' }> = {
  ready: { fill: 'grey', shape: 'dot' },
  pending: { fill: 'blue', shape: 'ring' },
  ok: { fill: 'green', shape: 'dot' },
  notice: { fill: 'blue', shape: 'dot' },
  warning: { fill: 'yellow', shape: 'ring' },
  error: { fill: 'red', shape: 'dot' },
  stopped: { fill: 'grey', shape: 'ring' },
};

/** Node-RED draws the status under the node: past this it runs into its neighbours. */
export const MAX_STATUS_LENGTH = 40;

export function showStatus(node: Node, state: NodeState, text: string): void {
  const short = text.length > MAX_STATUS_LENGTH ? `${text.slice(0, MAX_STATUS_LENGTH - 1)}…` : text;
  node.status({ ...LOOK[state], text: short });
}

export function clearStatus(node: Node): void {
  node.status({});
}

/** An error as one line: its message and, when it has one, its code (one definition, in the engine). */
export { errorMessage };

/**
 * The one failure path of a message: the status says what went wrong (the
 * message alone, without the code, to stay short) and done(error) hands the
 * error to Node-RED (log, Catch nodes).
 */
export function fail(node: Node, error: unknown, done: (error?: Error) => void): void {
  const message = (error as { message?: unknown } | null)?.message;
  showStatus(node, 'error', typeof message === 'string' ? message : String(error));
  done(error instanceof Error ? error : new Error(String(error)));
}

/**
 * Finishes a node's close once the promise settles, whatever the outcome: a
 * close that never calls done stalls every redeploy, and a failed release is
 * only worth a log line.
 */
export function closeWhen(node: Node, promise: Promise<unknown>, done: () => void): void {
  promise.then(
    () => done(),
    (error) => {
      node.warn(errorMessage(error));
      done();
    },
  );
}

/** Node-RED's userDir, where galleries live by default. */
export function userDir(RED: NodeAPI): string {
  return (RED.settings as unknown as { userDir?: string }).userDir ?? process.cwd();
}

/** A node's numeric setting (config field or message property), by the one table of defaults and ranges. */
export function configNumber<T extends NodeType>(
  type: T,
  field: keyof (typeof SETTINGS)[T] & string,
  value: unknown,
): number {
  const rule = (SETTINGS[type] as Record<string, NumericSetting>)[field];
  return numberSetting(field, value, rule.default, rule);
}
