/**
 * The face library's Node-RED side: a plugin (package.json "node-red.plugins"), not a node, because
 * the page serves every gallery and camera of the running flows and must record visits whatever is
 * deployed. It only translates: HTTP in, nodes/core/library out.
 *
 *   <httpAdminRoot>/coral-face/        the page (static files from build/nodes/face-library/ui)
 *   <httpAdminRoot>/coral-face/api/…   the JSON API (README, "Face library API")
 *
 * Safety: every API route is behind Node-RED's adminAuth with the permission `coral-face.read`
 * (viewing, face images included) or `coral-face.write` (changes). Requests from another site are
 * refused, reads included (see fromThisPage: Node-RED's own CORS would let any site read and
 * post), and changes must also carry the header `X-Coral-Face: 1` (a cross-site form or image
 * cannot set one). The page itself holds no data, so it loads without auth and asks for the
 * editor's login when the API answers 401.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import Busboy from 'busboy';
import type { NextFunction, Request, Response } from 'express';
import type { NodeAPI } from 'node-red';
import type { FaceGalleryNode } from '../config-types';
import { faceBus, type VisitObservation } from '../core/flow/face-bus';
import { FacePipeline } from '../core/pipeline';
import type { Embedder } from '../core/embed/embedder';
import { FaceLibrary, LibraryError, type FaceLibraryDeps } from '../core/library/library';
import { libraryFor } from '../core/library/registry';
import { MAX_IMPORT_BYTES } from '../core/library/transfer';
import { kindOf, type VisitRecord } from '../core/library/visit-store';
import { errorCodeOf } from '../core/common/errors';

/** Upload bounds: phone photos are 2–12 MB; decoding is bounded again by the pixel limit. */
const UPLOAD_LIMITS = { fileBytes: 20 * 1024 * 1024, files: 30 };
const UI_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

type Handler = (req: Request, res: Response) => Promise<unknown>;

export = function register(RED: NodeAPI): void {
  RED.plugins.registerPlugin('coral-face-library', { type: 'coral-face-library' });

  // ---------------------------------------------------------------- galleries of the running flows
  const galleryNodes = (): FaceGalleryNode[] => {
    const found: FaceGalleryNode[] = [];
    RED.nodes.eachNode((config: { id: string; type: string }) => {
      if (config.type !== 'face-gallery') return;
      const node = RED.nodes.getNode(config.id) as FaceGalleryNode | null;
      if (node?.directory) found.push(node);
    });
    return found;
  };
  const nodesFor = (dir: string) => galleryNodes().filter((n) => path.resolve(n.directory) === path.resolve(dir));
  const firstNode = (dir: string): FaceGalleryNode => {
    const node = nodesFor(dir)[0];
    if (!node)
      throw new LibraryError('ERR_NOT_FOUND', `No deployed face-gallery uses ${dir}: deploy a flow with it first.`);
    return node;
  };

  const pipelines = new WeakMap<Embedder, Promise<FacePipeline>>();
  const depsFor = (dir: string): FaceLibraryDeps => ({
    gallery: () => firstNode(dir).gallery(),
    embedder: () => firstNode(dir).deviceNode().embedder(),
    async pipeline() {
      const embedder = await firstNode(dir).deviceNode().embedder();
      let pipeline = pipelines.get(embedder);
      // Uploaded photos are near faces: the short-range detector, the gallery's own embedder.
      if (!pipeline)
        pipelines.set(embedder, (pipeline = FacePipeline.withEmbedder(embedder, { detector: { variant: 'short' } })));
      return pipeline;
    },
    async recognition() {
      const recognizer = await firstNode(dir).recognizer();
      return { threshold: recognizer.threshold, margin: recognizer.margin };
    },
    async applyRecognition(options) {
      for (const node of nodesFor(dir)) {
        const own = node.recognitionSettings();
        const recognizer = await node.recognizer();
        await recognizer.setOptions({
          threshold: options.threshold ?? own.threshold,
          margin: options.margin ?? own.margin,
        });
      }
    },
  });
  const library = (dir: string) => libraryFor(dir, depsFor(dir));

  // ---------------------------------------------------------------- visits in (always, page open or not)
  let lastWarning = 0;
  faceBus.on('visit', (observation: VisitObservation) => {
    const { galleryDir, ...visit } = observation;
    library(galleryDir)
      .then((lib) => lib.record(visit))
      .catch((error: unknown) => {
        // One line a minute at most: a full disk must not flood the log.
        if (Date.now() - lastWarning > 60_000) {
          lastWarning = Date.now();
          RED.log.warn(`coral-face library: a visit was not stored: ${(error as Error).message}`);
        }
      });
  });

  // ---------------------------------------------------------------- HTTP plumbing
  const readPermission = RED.auth.needsPermission('coral-face.read');
  const write = RED.auth.needsPermission('coral-face.write');
  const read = (req: Request, res: Response, next: NextFunction) =>
    readPermission(req, res, () => sameSiteRead(req, res, next));
  // Node-RED's admin app answers every CORS preflight with "Access-Control-Allow-Origin: *" and
  // reflects the requested headers, so a custom header alone does not stop another site. What does:
  // the browser's own Sec-Fetch-Site (scripts cannot set it) must say same-origin, and where a
  // browser does not send it, an Origin must name this host. Face data is never readable from
  // another site either (reads get the same check, without the header).
  const fromThisPage = (req: Request): boolean => {
    const site = req.get('Sec-Fetch-Site');
    if (site) return site === 'same-origin' || site === 'none';
    const origin = req.get('Origin');
    if (!origin) return true; // not a browser's cross-origin request (curl, automations)
    try {
      const host = new URL(origin).host;
      return host === req.get('Host') || host === req.get('X-Forwarded-Host');
    } catch {
      return false;
    }
  };
  const crossSite = (res: Response) =>
    res.status(403).json({
      error: {
        code: 'ERR_CROSS_SITE',
        message: 'Requests from other sites are refused; use the face library page itself.',
      },
    });
  const sameSiteRead = (req: Request, res: Response, next: NextFunction) =>
    fromThisPage(req) ? next() : crossSite(res);
  const sameSite = (req: Request, res: Response, next: NextFunction) => {
    if (req.get('X-Coral-Face') !== '1') {
      res.status(403).json({
        error: {
          code: 'ERR_CROSS_SITE',
          message: 'Changes are accepted only from the face library page (X-Coral-Face header).',
        },
      });
      return;
    }
    if (!fromThisPage(req)) return void crossSite(res);
    next();
  };
  const route = (handler: Handler) => (req: Request, res: Response) => {
    handler(req, res).then(
      (body) => {
        if (!res.headersSent) res.json(body ?? { ok: true });
      },
      (error: unknown) => {
        const code = errorCodeOf(error) ?? (error instanceof RangeError ? 'ERR_BAD_REQUEST' : 'ERR_INTERNAL');
        const status = STATUS[code] ?? (/^ERR_IMAGE_|^ERR_IMPORT/.test(code) ? 400 : 500);
        if (status === 500) RED.log.warn(`coral-face library: ${req.method} ${req.path}: ${(error as Error).message}`);
        if (!res.headersSent)
          res.status(status).json({ error: { code, message: (error as Error).message ?? String(error) } });
      },
    );
  };
  const galleryDir = (req: Request): string => {
    const nodes = galleryNodes();
    const wanted = typeof req.query.gallery === 'string' ? req.query.gallery : '';
    const node = wanted ? nodes.find((n) => n.id === wanted) : nodes[0];
    if (!node) {
      throw new LibraryError(
        'ERR_NOT_FOUND',
        wanted ? `No deployed face-gallery '${wanted}'.` : 'No face-gallery is deployed: add one to a flow and deploy.',
      );
    }
    return node.directory;
  };
  const lib = (req: Request): Promise<FaceLibrary> => library(galleryDir(req));
  const sendImage = (res: Response, type: string, bytes: Buffer | undefined) => {
    if (!bytes) throw new LibraryError('ERR_NOT_FOUND', 'No such face image (images are off, or it was pruned).');
    // Face images: private to this browser, never stored by a shared cache.
    res
      .set({ 'Content-Type': type, 'Cache-Control': 'private, max-age=600', 'X-Content-Type-Options': 'nosniff' })
      .send(bytes);
  };
  const base = '/coral-face';
  const api = `${base}/api`;
  const admin = RED.httpAdmin;

  // ---------------------------------------------------------------- the page
  // Express matches "/coral-face" with or without the slash; the page's relative URLs need it.
  admin.get(base, (req: Request, res: Response) => {
    if (req.originalUrl.split('?')[0].endsWith('/')) void serveUi('index.html', res);
    else res.redirect('coral-face/'); // relative: right under any httpAdminRoot and behind ingress
  });
  admin.get(`${base}/:file`, (req: Request, res: Response, next: NextFunction) => {
    if (UI_FILES[param(req, 'file')]) void serveUi(param(req, 'file'), res);
    else next();
  });
  async function serveUi(file: string, res: Response): Promise<void> {
    try {
      const bytes = await fsp.readFile(path.join(__dirname, 'ui', file));
      res
        .set({
          'Content-Type': UI_FILES[file],
          'Cache-Control': 'no-cache',
          'X-Content-Type-Options': 'nosniff',
          'Content-Security-Policy':
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'",
        })
        .send(bytes);
    } catch {
      res.status(500).type('text/plain').send('The face library page is not built: run "npm run build".');
    }
  }

  // ---------------------------------------------------------------- read
  admin.get(
    `${api}/galleries`,
    read,
    route(async () => {
      const nodes = galleryNodes();
      return {
        galleries: nodes.map((n) => ({ id: n.id, name: n.name || path.basename(n.directory), directory: n.directory })),
      };
    }),
  );
  admin.get(
    `${api}/cameras`,
    read,
    route(async () => {
      const cameras: { id: string; name: string }[] = [];
      RED.nodes.eachNode((config: { id: string; type: string; name?: string }) => {
        if (config.type === 'camera-in' && RED.nodes.getNode(config.id))
          cameras.push({ id: config.id, name: (config.name || config.id).trim() });
      });
      return { cameras };
    }),
  );
  admin.get(
    `${api}/visits`,
    read,
    route(async (req) => {
      const library = await lib(req);
      const q = req.query;
      const limit = q.limit === undefined ? 50 : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500)
        throw new LibraryError('ERR_BAD_REQUEST', 'limit must be a whole number from 1 to 500');
      const kind = typeof q.kind === 'string' && q.kind ? q.kind : undefined;
      if (kind && !['recognized', 'unknown', 'ignored'].includes(kind))
        throw new LibraryError('ERR_BAD_REQUEST', 'kind must be recognized, unknown or ignored');
      const page = library.visits({
        camera: str(q.camera),
        person: str(q.person),
        kind: kind as never,
        before: str(q.before),
        limit,
      });
      return {
        ...page,
        visits: page.visits.map((v) => visitDto(library, v)),
        cameras: library.store.cameras(),
        settings: library.getSettings().visits,
      };
    }),
  );
  admin.get(
    `${api}/visits/:id/crop.jpg`,
    read,
    route(async (req, res) => {
      const library = await lib(req);
      sendImage(res, 'image/jpeg', await library.store.readCrop(param(req, 'id')));
    }),
  );
  admin.get(
    `${api}/clusters`,
    read,
    route(async (req) => ({ clusters: (await lib(req)).listClusters() })),
  );
  admin.get(
    `${api}/people`,
    read,
    route(async (req) => ({ people: await (await lib(req)).people() })),
  );
  admin.get(
    `${api}/people/:id`,
    read,
    route(async (req) => (await lib(req)).person(param(req, 'id'))),
  );
  admin.get(
    `${api}/people/:id/photos/:file`,
    read,
    route(async (req, res) => {
      sendImage(res, 'image/png', await (await lib(req)).photo(param(req, 'id'), param(req, 'file')));
    }),
  );
  admin.get(
    `${api}/people/:id/negatives/:file`,
    read,
    route(async (req, res) => {
      sendImage(res, 'image/png', await (await lib(req)).negative(param(req, 'id'), param(req, 'file')));
    }),
  );
  admin.get(
    `${api}/health`,
    read,
    route(async (req) => (await lib(req)).health()),
  );
  admin.get(
    `${api}/settings`,
    read,
    route(async (req) => (await lib(req)).getSettings()),
  );
  admin.get(
    `${api}/export`,
    read,
    route(async (req, res) => {
      const ids = typeof req.query.people === 'string' && req.query.people ? req.query.people.split(',') : undefined;
      const bytes = await (await lib(req)).exportPeople(ids);
      const name = ids?.length === 1 ? `coral-face-${ids[0]}.json` : 'coral-face-gallery.json';
      res
        .set({
          'Content-Type': 'application/json',
          'Content-Disposition': `attachment; filename="${name.replace(/[^a-z0-9.-]/gi, '_')}"`,
          'Cache-Control': 'no-store',
        })
        .send(bytes);
    }),
  );

  // ---------------------------------------------------------------- write
  admin.post(
    `${api}/visits/:id/not`,
    write,
    sameSite,
    route(async (req) => (await lib(req)).correct(param(req, 'id'))),
  );
  admin.post(
    `${api}/clusters/:id/name`,
    write,
    sameSite,
    route(async (req) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body.name !== 'string') throw new LibraryError('ERR_BAD_REQUEST', 'name is required');
      const mode =
        body.mode === 'existing' ? 'existing' : body.mode === 'new' || body.mode === undefined ? 'new' : null;
      if (!mode) throw new LibraryError('ERR_BAD_REQUEST', 'mode must be "new" or "existing"');
      return (await lib(req)).nameCluster(param(req, 'id'), body.name, mode, { ignore: body.ignore === true });
    }),
  );
  admin.delete(
    `${api}/clusters/:id`,
    write,
    sameSite,
    route(async (req) => ({ deleted: await (await lib(req)).deleteCluster(param(req, 'id')) })),
  );
  admin.post(
    `${api}/people/photos`,
    write,
    sameSite,
    route(async (req) => {
      const upload = await readUpload(req);
      const mode = upload.fields.mode === 'existing' ? 'existing' : 'new';
      if (!upload.fields.name) throw new LibraryError('ERR_BAD_REQUEST', 'name is required');
      return (await lib(req)).upload(upload.fields.name, mode, upload.files);
    }),
  );
  admin.delete(
    `${api}/people/:id/photos/:file`,
    write,
    sameSite,
    route(async (req) => {
      await (await lib(req)).removePhoto(param(req, 'id'), param(req, 'file'));
    }),
  );
  admin.delete(
    `${api}/people/:id/negatives/:file`,
    write,
    sameSite,
    route(async (req) => {
      await (await lib(req)).removeNegative(param(req, 'id'), param(req, 'file'));
    }),
  );
  admin.post(
    `${api}/people/:id/rename`,
    write,
    sameSite,
    route(async (req) => {
      const { name } = (req.body ?? {}) as { name?: unknown };
      if (typeof name !== 'string') throw new LibraryError('ERR_BAD_REQUEST', 'name is required');
      const person = await (await lib(req)).rename(param(req, 'id'), name);
      return { id: person.id, name: person.name };
    }),
  );
  admin.post(
    `${api}/people/:id/ignored`,
    write,
    sameSite,
    route(async (req) => {
      const { ignored } = (req.body ?? {}) as { ignored?: unknown };
      if (typeof ignored !== 'boolean') throw new LibraryError('ERR_BAD_REQUEST', 'ignored must be true or false');
      await (await lib(req)).setIgnored(param(req, 'id'), ignored);
    }),
  );
  admin.delete(
    `${api}/people/:id`,
    write,
    sameSite,
    route(async (req) => {
      // Forgetting deletes face data for good: the request names the person a second time.
      if (req.query.confirm !== param(req, 'id'))
        throw new LibraryError('ERR_BAD_REQUEST', 'to forget someone, repeat their id as ?confirm=<id>');
      return (await lib(req)).forget(param(req, 'id'));
    }),
  );
  admin.post(
    `${api}/import`,
    write,
    sameSite,
    route(async (req) => {
      const bytes = await readBody(req, MAX_IMPORT_BYTES);
      return {
        people: await (await lib(req)).importPeople(bytes, req.query.merge === '1' || req.query.merge === 'true'),
      };
    }),
  );
  admin.put(
    `${api}/settings`,
    write,
    sameSite,
    route(async (req) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const isObject = (v: unknown): v is Record<string, unknown> =>
        typeof v === 'object' && v !== null && !Array.isArray(v);
      const { visits, recognition } = body;
      if (visits !== undefined && !isObject(visits))
        throw new LibraryError('ERR_BAD_REQUEST', 'visits must be an object');
      if (recognition !== undefined && recognition !== null && !isObject(recognition)) {
        throw new LibraryError('ERR_BAD_REQUEST', "recognition must be an object, or null for the gallery's own");
      }
      return (await lib(req)).updateSettings({ visits, recognition });
    }),
  );
  admin.use(`${api}`, (req: Request, res: Response) => {
    res
      .status(404)
      .json({ error: { code: 'ERR_NOT_FOUND', message: `No face library API route ${req.method} ${req.path}` } });
  });
};

const STATUS: Record<string, number> = {
  ERR_NOT_FOUND: 404,
  ERR_PERSON_NOT_FOUND: 404,
  ERR_CROP_NOT_FOUND: 404,
  ERR_BAD_REQUEST: 400,
  ERR_NAME_INVALID: 400,
  ERR_CROPS_INVALID: 400,
  ERR_UPLOAD: 400,
  ERR_CONFLICT: 409,
  ERR_PERSON_EXISTS: 409,
  ERR_NO_IMAGES: 409,
  ERR_TOO_LARGE: 413,
  ERR_NO_SPACE: 507,
};

function param(req: Request, name: string): string {
  return String(req.params[name]);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value ? value : undefined;
}

function visitDto(library: FaceLibrary, v: VisitRecord) {
  return {
    id: v.id,
    time: v.time,
    camera: v.camera,
    kind: kindOf(v),
    decided: v.kind,
    name: v.name,
    personId: v.personId,
    reason: v.reason,
    closest: v.closest,
    cosine: v.cosine,
    margin: v.margin,
    trackId: v.trackId,
    hasCrop: v.hasCrop,
    label: v.label ?? null,
    corrected: !!v.corrected,
    resolved: !!v.resolved,
    cluster: library.clusters.clusterIdOf(v.id) ?? null,
  };
}

class HttpError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The request body as bytes, refused past `limit` (the connection is not read further). */
function readBody(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError('ERR_TOO_LARGE', `The file is larger than ${Math.round(limit / 1024 / 1024)} MB.`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** multipart/form-data with fields (name, mode) and photos, within UPLOAD_LIMITS. */
function readUpload(
  req: Request,
): Promise<{ fields: Record<string, string>; files: { name: string; bytes: Buffer }[] }> {
  return new Promise((resolve, reject) => {
    let parser: Busboy.Busboy;
    try {
      parser = Busboy({
        headers: req.headers,
        limits: { fileSize: UPLOAD_LIMITS.fileBytes, files: UPLOAD_LIMITS.files, fields: 10, fieldSize: 1000 },
      });
    } catch {
      reject(new HttpError('ERR_UPLOAD', 'Send the photos as multipart/form-data.'));
      return;
    }
    const fields: Record<string, string> = {};
    const files: { name: string; bytes: Buffer }[] = [];
    let failure: Error | null = null;
    parser.on('field', (name, value) => {
      fields[name] = value;
    });
    parser.on('file', (_field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('limit', () => {
        failure ??= new HttpError(
          'ERR_TOO_LARGE',
          `${info.filename} is larger than ${UPLOAD_LIMITS.fileBytes / 1024 / 1024} MB: nothing was saved.`,
        );
      });
      stream.on('end', () =>
        files.push({ name: path.basename(info.filename || `photo ${files.length + 1}`), bytes: Buffer.concat(chunks) }),
      );
    });
    parser.on('filesLimit', () => {
      failure ??= new HttpError('ERR_TOO_LARGE', `At most ${UPLOAD_LIMITS.files} photos at once: nothing was saved.`);
    });
    parser.on('error', (error: Error) =>
      reject(new HttpError('ERR_UPLOAD', `The upload could not be read: ${error.message}`)),
    );
    parser.on('close', () => (failure ? reject(failure) : resolve({ fields, files })));
    req.pipe(parser);
  });
}
