/**
 * Config node: one embedding runtime per Coral (or the CPU), shared by every
 * edgetpu-embed node, face-gallery and enrol node that names it. Opening it
 * twice would try to open the same Edge TPU twice.
 */
import * as os from 'os';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { BackendInfo, Performance } from '../../native';
import type { TfliteEmbedder } from '../core/embed/embedder';
import { acquireEmbedder, releaseEmbedder } from '../core/flow/resources';
import { describeBackend, EdgeTpuDeviceNode } from '../config-types';
import { configNumber } from '../kit';

interface EdgeTpuDeviceDef extends NodeDef {
  device: string;
  performance: Performance;
  model: string;
  threads: string;
}

export = function register(RED: NodeAPI): void {
  function EdgeTpuDevice(this: EdgeTpuDeviceNode, config: EdgeTpuDeviceDef): void {
    RED.nodes.createNode(this, config);
    const threads = configNumber('edgetpu-device', 'threads', config.threads);
    this.spec = {
      device: config.device || 'auto',
      performance: config.performance || 'high',
      model: config.model?.trim() || undefined,
      // Blank: half the cores. A camera flow runs the detector, ffmpeg and
      // the embedder side by side; on two cores one XNNPACK thread processed
      // 23 of 25 fps with 0.8 cores where two threads managed 21 with 1.1
      // (bench:stream), the idle pool threads spinning against the rest.
      threads: threads > 0 ? threads : Math.max(1, Math.floor(os.availableParallelism() / 2)),
    };
    let opened: Promise<TfliteEmbedder> | null = null;
    this.embedder = () => {
      opened ??= acquireEmbedder(this.spec).then((embedder) => {
        this.log(`embedder ${embedder.id} on ${describeBackend(embedder.backend)}`);
        embedder.inference.on('backend', (b: BackendInfo) => this.warn(`backend changed: ${describeBackend(b)}`));
        return embedder;
      });
      return opened;
    };
    this.on('close', (done: () => void) => {
      const wasOpen = opened !== null;
      opened = null;
      (wasOpen ? releaseEmbedder(this.spec) : Promise.resolve()).finally(done);
    });
  }
  RED.nodes.registerType('edgetpu-device', EdgeTpuDevice as unknown as (this: Node, def: NodeDef) => void);
};
