/**
 * An in-memory MQTT broker and client for testing nodes/core/ha/session.ts
 * without mosquitto: retained messages, `+`/`#` subscriptions, in-order
 * delivery per client (retained replay on subscribe, then live traffic),
 * last wills, and a broker that can go down and come back. Every publish is
 * logged. test/nodes/ha-face-entities.test.ts covers the same session
 * against a real mosquitto.
 */
import type { SessionClient, SessionClientOptions } from '../../nodes/core/ha/session';

export interface Published {
  topic: string;
  payload: Buffer;
  retain: boolean;
  /** The client that sent it; 'broker' for a will. */
  from: string;
}

type Listener = (...args: any[]) => void;

export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

export class FakeBroker {
  readonly log: Published[] = [];
  readonly retained = new Map<string, Buffer>();
  readonly clients = new Set<FakeClient>();
  up = true;
  /**
   * Delays the retained replay after a subscribe (the acknowledgements are
   * not delayed): a broker that is slow to look its retained store up. Live
   * messages still arrive after the replay, as MQTT orders one connection's
   * messages.
   */
  replayDelayMs = 0;
  private seq = 0;

  client(options: SessionClientOptions, name = `client-${++this.seq}`): FakeClient {
    return new FakeClient(this, options, name);
  }

  /** Takes a message from a client (or a will) and delivers it to every matching subscription. */
  route(message: Published): void {
    this.log.push(message);
    if (message.retain) {
      if (message.payload.length === 0) this.retained.delete(message.topic);
      else this.retained.set(message.topic, message.payload);
    }
    for (const client of this.clients) client.deliver(message.topic, message.payload, false);
  }

  /** The broker goes away: every client loses its connection (wills are sent first, to nobody). */
  stop({ forgetRetained = false } = {}): void {
    this.up = false;
    for (const client of [...this.clients]) client.drop();
    if (forgetRetained) this.retained.clear();
  }

  start(): void {
    this.up = true;
  }

  /** Messages logged since `since` (an index into log), optionally for one topic. */
  since(since: number, topic?: string): Published[] {
    return this.log.slice(since).filter((m) => topic === undefined || m.topic === topic);
  }

  text(topic: string): string | undefined {
    return this.retained.get(topic)?.toString();
  }
}

export class FakeClient implements SessionClient {
  connected = false;
  ended = false;
  connects = 0;
  reconnectCalls: number[] = [];
  private readonly listeners = new Map<string, Listener[]>();
  private readonly subscriptions = new Set<string>();
  /** One delivery chain per client: MQTT keeps a connection's messages in order (acknowledgements go apart). */
  private chain: Promise<void> = Promise.resolve();
  /** Make the next publish callbacks fail with this error. */
  failPublishes: Error | null = null;

  constructor(
    private readonly broker: FakeBroker,
    readonly options: SessionClientOptions,
    readonly name: string,
  ) {
    this.attempt();
  }

  on(event: string, listener: Listener): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }

  private emit(event: string, ...args: unknown[]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }

  /** Queues a step on the delivery chain, after `delayMs`. */
  private later(step: () => void, delayMs = 0): Promise<void> {
    const run = this.chain.then(
      () =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            step();
            resolve();
          }, delayMs),
        ),
    );
    this.chain = run;
    return run;
  }

  /** An acknowledgement: soon, but not behind queued messages. */
  private ack(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  private attempt(): void {
    void this.later(() => {
      if (this.ended) return;
      if (!this.broker.up) {
        this.emit('error', new Error('connect ECONNREFUSED 127.0.0.1:1883'));
        this.emit('close');
        return;
      }
      this.connected = true;
      this.connects++;
      this.subscriptions.clear();
      this.broker.clients.add(this);
      this.emit('connect');
    });
  }

  deliver(topic: string, payload: Buffer, retain: boolean): void {
    if (![...this.subscriptions].some((filter) => topicMatches(filter, topic))) return;
    void this.later(() => {
      if (this.connected) this.emit('message', topic, payload, { retain });
    });
  }

  publish(
    topic: string,
    payload: string | Buffer,
    options: { qos: 1; retain: boolean },
    callback: (error?: Error) => void,
  ): this {
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const failure = this.failPublishes;
    if (!this.connected) {
      void this.ack().then(() => callback(new Error('client disconnecting')));
      return this;
    }
    if (!failure) this.broker.route({ topic, payload: body, retain: options.retain, from: this.name });
    void this.ack().then(() => callback(failure ?? undefined));
    return this;
  }

  async subscribeAsync(topics: string[]): Promise<unknown> {
    for (const filter of topics) this.subscriptions.add(filter);
    const replay = [...this.broker.retained].filter(([topic]) => topics.some((filter) => topicMatches(filter, topic)));
    void this.later(() => undefined, this.broker.replayDelayMs);
    for (const [topic, payload] of replay) {
      void this.later(() => {
        if (this.connected) this.emit('message', topic, payload, { retain: true });
      });
    }
    await this.ack();
    return [];
  }

  async unsubscribeAsync(topics: string[]): Promise<unknown> {
    for (const filter of topics) this.subscriptions.delete(filter);
    await this.ack();
    return undefined;
  }

  reconnect(): this {
    this.reconnectCalls.push(Date.now());
    if (!this.connected && !this.ended) this.attempt();
    return this;
  }

  end(_force: boolean, _options: object, callback: () => void): this {
    const was = this.connected;
    this.ended = true;
    this.connected = false;
    this.broker.clients.delete(this);
    void this.later(() => {
      if (was) this.emit('close');
      callback();
    });
    return this;
  }

  /** The network drops: the broker sends the will, the client sees a close. */
  drop(): void {
    if (!this.connected) return;
    this.connected = false;
    this.broker.clients.delete(this);
    const { will } = this.options;
    this.broker.route({ topic: will.topic, payload: will.payload, retain: will.retain, from: 'broker' });
    void this.later(() => this.emit('close'));
  }
}
