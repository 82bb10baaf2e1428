/** Messages between the supervisor (edgetpu.ts) and the Edge TPU child (edgetpu-host.ts). */
import type { EdgeTpuDevice } from './devices';
import type { NativeTensorInfo } from './addon';

export interface OpenRequest {
  type: 'open';
  model: string;
  library: string;
  device: string;
  performance: string;
  threads: number;
  xnnpack: boolean;
}

export interface ProbeRequest {
  type: 'probe';
  library: string;
}

export interface InvokeRequest {
  type: 'invoke';
  id: number;
  inputs: ArrayBufferView[];
}

export type HostRequest = OpenRequest | ProbeRequest | InvokeRequest;

export interface ProbeReply {
  type: 'probe';
  loaded: boolean;
  error?: string;
  version?: string;
  devices: EdgeTpuDevice[];
}

export type OpenReply =
  | {
      type: 'opened';
      ok: true;
      device: string;
      devicePath: string;
      version?: string;
      inputs: NativeTensorInfo[];
      outputs: NativeTensorInfo[];
    }
  | { type: 'opened'; ok: false; code: string; reason: string };

export type InvokeReply =
  { type: 'result'; id: number; outputs: ArrayBuffer[] } | { type: 'error'; id: number; code: string; message: string };

export type HostReply = ProbeReply | OpenReply | InvokeReply;
