/**
 * edgetpu-embed: aligned crops in (msg.faces from align), an L2-normalised
 * embedding per face out. Runs on the Coral named by its device config when a
 * compiled model and the device are there, on the CPU otherwise; the status
 * says which and why, and the time per face.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { BackendInfo } from '../../native';
import { describeBackend, EdgeTpuDeviceNode, shortModelLabel } from '../config-types';
import type { TfliteEmbedder } from '../core/embed/embedder';
import type { FaceMessage, FaceRecord } from '../core/flow/messages';
import { EmbeddingReuse } from '../core/embed/embedding-reuse';
import { pixels } from '../core/media/pixel-store';
import { LatestWins } from '../core/flow/latest-wins';
import { BadFacesError, cropProblem, faceProblem, type FaceProblem } from '../core/flow/face-checks';
import { isPixelRef } from '../core/media/pixel-store';
import { CodedError } from '../core/common/errors';
import { ConfigError, configNumber, errorMessage, fail, showStatus } from '../kit';

interface EmbedDef extends NodeDef {
  device: string;
  embedAll: boolean;
  reuseMs: string;
}

interface Job {
  msg: NodeMessageInFlow & FaceMessage;
  send: (msg: FaceMessage) => void;
  done: (error?: Error) => void;
}

export = function register(RED: NodeAPI): void {
  function EdgeTpuEmbed(this: Node, config: EmbedDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const device = RED.nodes.getNode(config.device) as EdgeTpuDeviceNode | null;
    let embedder: Promise<TfliteEmbedder>;
    let reuseMs = 0;
    try {
      if (!device) throw new ConfigError(RED._('edgetpu-embed.errors.device'));
      reuseMs = configNumber('edgetpu-embed', 'reuseMs', config.reuseMs);
      embedder = device.embedder();
    } catch (error) {
      embedder = Promise.reject(error);
      showStatus(node, 'error', (error as Error).message);
    }
    embedder.catch(() => undefined);
    let msPerFace = 0;
    const showBackend = (backend: BackendInfo) => {
      // Short enough for the status: the reason goes to the log and msg.embedder.
      const model = shortModelLabel(backend);
      const backendText =
        backend.kind === 'edgetpu'
          ? RED._('edgetpu-embed.status.edgetpu', { device: backend.device ?? '', model })
          : RED._(
              backend.reasonCode === 'ERR_EDGETPU_CRASHED'
                ? 'edgetpu-embed.status.cpuFallback'
                : 'edgetpu-embed.status.cpu',
              { model },
            );
      showStatus(
        node,
        backend.kind === 'edgetpu' ? 'ok' : backend.reasonCode === 'ERR_EDGETPU_CRASHED' ? 'warning' : 'notice',
        msPerFace
          ? RED._('edgetpu-embed.status.speed', { backend: backendText, ms: msPerFace.toFixed(1) })
          : backendText,
      );
    };
    const onBackend = (backend: BackendInfo) => {
      node.warn(describeBackend(backend));
      showBackend(backend);
    };
    embedder.then(
      (e) => {
        node.log(describeBackend(e.backend));
        showBackend(e.backend);
        e.inference.on('backend', onBackend);
      },
      (error) => showStatus(node, 'error', errorMessage(error)),
    );

    let lastStatus = 0;
    const reuse = new EmbeddingReuse(reuseMs);
    const worker = new LatestWins<Job>(
      async ({ msg, send, done }) => {
        try {
          const e = await embedder;
          // Each face that cannot be embedded (not a face, no crop, an expired crop) is marked and
          // reported; the others are embedded all the same.
          const faces: unknown[] = msg.faces ?? [];
          const problems: FaceProblem[] = [];
          const usable: FaceRecord[] = [];
          faces.forEach((face, index) => {
            const problem = faceProblem(face, index) ?? cropProblem(face as FaceRecord, index, pixels, e.inputSize);
            if (!problem) return void usable.push(face as FaceRecord);
            problems.push(problem);
            if (face && typeof face === 'object')
              (face as FaceRecord).error = { code: problem.code, message: problem.message };
          });
          const chosen = usable.filter((f) => config.embedAll || f.quality?.ok !== false);
          // Frames of a camera: a face that was embedded a moment ago at the same place keeps that embedding.
          const camera = msg.frame?.camera;
          const now = msg.frame?.timestamp ?? Date.now();
          // Reused embeddings come from the model running now (e.id); when the
          // fresh ones turn out to come from the other side of the pair (a
          // fallback just happened), every face is embedded again, so that one
          // message never mixes two models.
          const reusedId = e.id;
          // A careful face (a photo's, a new face's first frames: align) is always embedded, with its mirror image.
          let fresh = chosen.filter((f) => {
            const known = camera === undefined || f.careful ? undefined : reuse.lookup(camera, f.box, now, reusedId);
            if (known) f.embedding = Array.from(known);
            return !known;
          });
          const embedFresh = () =>
            e.embedTagged(
              fresh.map((f) => pixels.get(f.crop)),
              { mirror: fresh.map((f) => f.careful === true) },
            );
          const started = performance.now();
          let tagged = await embedFresh();
          if (tagged.id !== reusedId && fresh.length < chosen.length) {
            fresh = chosen;
            tagged = await embedFresh();
          }
          const vectors = tagged.embeddings;
          fresh.forEach((f, i) => {
            f.embedding = Array.from(vectors[i]);
          });
          if (camera !== undefined)
            reuse.remember(
              camera,
              fresh.map((f, i) => ({ box: f.box, embedding: vectors[i] })),
              now,
              tagged.id,
            );
          if (fresh.length) msPerFace = (performance.now() - started) / fresh.length;
          msg.embedder = {
            id: tagged.id,
            backend: describeBackend(e.backend),
            msPerFace: Math.round(msPerFace * 100) / 100,
          };
          send(msg);
          if (problems.length) return fail(node, new BadFacesError(problems, faces.length), done);
          done();
          if (Date.now() - lastStatus > 1000) {
            lastStatus = Date.now();
            showBackend(e.backend);
          }
        } catch (error) {
          fail(node, error, done);
        }
      },
      (job) => isPixelRef(job.msg.frame),
      (job) => job.done(),
    );

    node.on('input', (raw, send, done) => {
      const msg = raw as Job['msg'];
      if (!Array.isArray(msg.faces))
        return fail(node, new CodedError('ERR_INPUT', RED._('edgetpu-embed.errors.input')), done);
      // A full queue refuses the message with an error rather than dropping it unseen.
      if (!worker.push({ msg, send, done })) {
        showStatus(node, 'error', RED._('edgetpu-embed.status.refused', { count: worker.refused }));
        done(new CodedError('ERR_QUEUE_FULL', RED._('edgetpu-embed.errors.queueFull', { max: worker.maxQueue })));
      }
    });
    node.on('close', () => {
      embedder.then(
        (e) => e.inference.off('backend', onBackend),
        () => undefined,
      );
    });
  }
  RED.nodes.registerType('edgetpu-embed', EdgeTpuEmbed as unknown as (this: Node, def: NodeDef) => void);
};
