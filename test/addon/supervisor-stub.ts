/**
 * A stand-in for the Supervisor API on 127.0.0.1: GET /services/mqtt answers
 * like supervisor/api/services.py (200 {"result":"ok","data":{...}} for the
 * right bearer token, 401/403 otherwise, 400 "Service not enabled" when there
 * is no broker), and records every request.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';

export interface MqttService {
  host: string;
  port: number;
  ssl?: boolean;
  protocol?: string;
  username?: string;
  password?: string;
  addon?: string;
}

export interface SupervisorStub {
  url: string;
  token: string;
  requests: { method: string; path: string; authorization?: string; status: number }[];
  /** null: the MQTT service is not enabled. */
  mqtt: MqttService | null;
  close(): Promise<void>;
}

export async function startSupervisorStub(token: string, mqtt: MqttService | null): Promise<SupervisorStub> {
  const stub: Partial<SupervisorStub> = { token, mqtt, requests: [] };
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      stub.requests!.push({
        method: req.method ?? '',
        path: req.url ?? '',
        authorization: req.headers.authorization,
        status,
      });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const auth = req.headers.authorization;
    if (!auth) return reply(401, { result: 'error', message: 'Unauthorized' });
    if (auth !== `Bearer ${token}`) return reply(403, { result: 'error', message: 'Forbidden' });
    if (req.method === 'GET' && req.url === '/services/mqtt') {
      if (!stub.mqtt) return reply(400, { result: 'error', message: 'Service not enabled' });
      return reply(200, {
        result: 'ok',
        data: { ssl: false, protocol: '3.1.1', addon: 'core_mosquitto', ...stub.mqtt },
      });
    }
    return reply(404, { result: 'error', message: 'Not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return stub as SupervisorStub;
}
