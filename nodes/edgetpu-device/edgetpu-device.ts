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
import { closeWhen, configNumber } from '../kit';

interface EdgeTpuDeviceDef extends NodeDef {
  device: string;
  performance: Performance;
  model: string;
  /** The CPU side of the built-in pair: float (default) or int8. */
  cpuModel?: string;
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
      // The Edge TPU always runs the compiled int8 model; the CPU runs the
      // float one (most accurate) unless int8 is chosen, which keeps the
      // same embeddings when the Coral drops out.
      cpuModel: config.cpuModel === 'int8' ? 'int8' : 'float',
      // Blank: half the cores. A camera flow runs the detector, ffmpeg and
      // the embedder side by side; on two cores one XNNPACK thread kept up
      // with more frames, on less CPU, than two, whose idle pool threads spin
      // against the rest (bench:stream; the figures are in the README's design notes).
      threads: threads > 0 ? threads : Math.max(1, Math.floor(os.availableParallelism() / 2)),
    };
    let opened: Promise<TfliteEmbedder> | null = null;
    this.embedder = () => {
      opened ??= acquireEmbedder(this.spec).then((embedder) => {
        this.log(RED._('edgetpu-device.log.opened', { id: embedder.id, backend: describeBackend(embedder.backend) }));
        embedder.inference.on('backend', (b: BackendInfo) =>
          this.warn(RED._('edgetpu-device.warn.backend', { backend: describeBackend(b) })),
        );
        return embedder;
      });
      return opened;
    };
    this.on('close', (done: () => void) => {
      const held = opened;
      opened = null;
      // Release only an embedder this node acquired: after a failed open the pool has no entry of ours, and
      // a release would take away the one another node opened since.
      closeWhen(
        this,
        held
          ? held.then(
              () => releaseEmbedder(this.spec),
              () => undefined,
            )
          : Promise.resolve(),
        done,
      );
    });
  }
  RED.nodes.registerType('edgetpu-device', EdgeTpuDevice as unknown as (this: Node, def: NodeDef) => void);
};
