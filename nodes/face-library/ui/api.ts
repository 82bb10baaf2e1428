/**
 * The page's calls to <httpAdminRoot>/coral-face/api/ (relative URLs: the page is served at
 * <httpAdminRoot>/coral-face/, also behind Home Assistant ingress). With Node-RED's adminAuth the
 * editor's login token (localStorage "auth-tokens", same origin) goes along as a Bearer header,
 * and as access_token on image URLs (an <img> cannot send headers; the live view does the same).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let galleryId = '';
export function setGallery(id: string): void {
  galleryId = id;
}

export function token(): string | null {
  try {
    const tokens = JSON.parse(localStorage.getItem('auth-tokens') ?? 'null') as { access_token?: unknown } | null;
    return typeof tokens?.access_token === 'string' ? tokens.access_token : null;
  } catch {
    return null;
  }
}

export function url(path: string, params: Record<string, string | number | undefined> = {}, withToken = false): string {
  const query = new URLSearchParams();
  if (galleryId) query.set('gallery', galleryId);
  for (const [key, value] of Object.entries(params))
    if (value !== undefined && value !== '') query.set(key, String(value));
  const t = withToken ? token() : null;
  if (t) query.set('access_token', t);
  const text = query.toString();
  return `api/${path}${text ? `?${text}` : ''}`;
}

/** An image URL that carries the login token. */
export function imageUrl(path: string): string {
  return url(path, {}, true);
}

async function call<T>(
  method: string,
  path: string,
  options: { params?: Record<string, string | number | undefined>; json?: unknown; body?: BodyInit } = {},
): Promise<T> {
  const headers: Record<string, string> = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  // Every change carries this header: the server refuses changes without it (cross-site requests cannot set it).
  if (method !== 'GET') headers['X-Coral-Face'] = '1';
  let body = options.body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const response = await fetch(url(path, options.params), { method, headers, body, credentials: 'same-origin' });
  const text = await response.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ??
        (response.status === 401 ? 'Log in to Node-RED first.' : `${response.status} ${response.statusText}`),
    );
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, params?: Record<string, string | number | undefined>) => call<T>('GET', path, { params }),
  post: <T>(path: string, json?: unknown, params?: Record<string, string | number | undefined>) =>
    call<T>('POST', path, { json: json ?? {}, params }),
  put: <T>(path: string, json: unknown) => call<T>('PUT', path, { json }),
  delete: <T>(path: string, params?: Record<string, string | number | undefined>) =>
    call<T>('DELETE', path, { params }),
  upload: <T>(path: string, form: FormData) => call<T>('POST', path, { body: form }),
  raw: <T>(path: string, bytes: Blob, params?: Record<string, string | number | undefined>) =>
    call<T>('POST', path, { body: bytes, params }),
};

export interface Visit {
  id: string;
  time: number;
  camera: string;
  kind: 'recognized' | 'unknown' | 'ignored';
  decided: string;
  name: string;
  personId: string | null;
  reason: string | null;
  closest: string | null;
  cosine: number;
  margin: number | null;
  trackId: string;
  hasCrop: boolean;
  label: string | null;
  corrected: boolean;
  resolved: boolean;
  cluster: string | null;
}
export interface VisitPage {
  visits: Visit[];
  total: number;
  next: string | null;
  cameras: string[];
}
export interface Cluster {
  id: string;
  visits: number;
  firstSeen: number;
  lastSeen: number;
  cameras: string[];
  crops: string[];
}
export interface PersonSummary {
  id: string;
  name: string;
  photos: number;
  negatives: number;
  ignored: boolean;
  updatedAt: string;
}
export interface Reason {
  code: string;
  message: string;
}
export interface PersonDetail {
  id: string;
  name: string;
  ignored: boolean;
  createdAt: string;
  updatedAt: string;
  photos: {
    file: string;
    addedAt: string;
    source: string | null;
    quality: Record<string, number> | null;
    cosine: number | null;
    top1: boolean | null;
    nearest: { name: string; cosine: number } | null;
  }[];
  negatives: { file: string; addedAt: string; source?: string }[];
  health: {
    top1Rate: number | null;
    meanCosine: number | null;
    nearest: { name: string; cosine: number } | null;
    warnings: string[];
  } | null;
}
export interface Health {
  people: {
    id: string;
    name: string;
    top1Rate: number | null;
    meanCosine: number | null;
    nearest: { name: string; cosine: number } | null;
    warnings: string[];
    photos: unknown[];
  }[];
  curve: { threshold: number; tpir: number; fpir: number }[];
  genuine: number[];
  impostor: { strangers: number[]; otherPeople: number[] };
  suggestion: { threshold: number; tpir: number; fpir: number } | null;
  basis: string;
  targetFpir: number;
  threshold: number;
  margin: number;
  applied: { threshold?: number; margin?: number };
}
export interface Settings {
  visits: { maxVisits: number; maxAgeDays: number; keepImages: boolean };
  recognition: { threshold?: number; margin?: number };
}
