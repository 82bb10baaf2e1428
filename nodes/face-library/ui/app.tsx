/**
 * The face library page: recent faces, unknown people, people, health, live, settings. Preact
 * (a 4 KB React-compatible view library, hooks, no runtime dependencies) and uPlot (a small, fast
 * canvas chart library) bundled by esbuild into one script: see build.mjs.
 */
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { looseNameKey } from '../../core/gallery/name-key';
import { api, ApiError, imageUrl, setGallery, token, url, type Cluster, type Health, type PersonDetail, type PersonSummary,
  type Reason, type Settings, type Visit, type VisitPage } from './api';

type Tab = 'recent' | 'unknown' | 'people' | 'health' | 'live' | 'settings';
const TABS: { id: Tab; label: string }[] = [
  { id: 'recent', label: 'Recent faces' }, { id: 'unknown', label: 'Unknown people' }, { id: 'people', label: 'People' },
  { id: 'health', label: 'Health' }, { id: 'live', label: 'Live' }, { id: 'settings', label: 'Settings' },
];

const time = (ms: number) => new Date(ms).toLocaleString();
const fixed = (n: number | null | undefined, digits = 2) => (typeof n === 'number' ? n.toFixed(digits) : '–');
const percent = (n: number | null | undefined) => (typeof n === 'number' ? `${Math.round(n * 100)} %` : '–');

function useAsync<T>(load: () => Promise<T>, deps: unknown[]): { data: T | null; error: ApiError | Error | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then((d) => { if (live) { setData(d); setError(null); } }, (e: Error) => { if (live) setError(e); });
    return () => { live = false; };
  }, [...deps, tick]);
  return { data, error, reload: useCallback(() => setTick((t) => t + 1), []) };
}

function ErrorBox({ error }: { error: Error | null }) {
  if (!error) return null;
  if (error instanceof ApiError && error.status === 401) {
    return <div class="notice error" role="alert">Log in first: open the <a href="../">Node-RED editor</a>, log in, then come back to this page.</div>;
  }
  return <div class="notice error" role="alert">{error.message}</div>;
}

function Reasons({ reasons }: { reasons: Reason[] }) {
  if (reasons.length === 0) return null;
  return <span class="reasons">{reasons.map((r) => r.message).join('; ')}</span>;
}

// ---------------------------------------------------------------- recent faces

function KindBadge({ visit }: { visit: Visit }) {
  const label = visit.kind === 'recognized' ? visit.name : visit.kind === 'ignored' ? `${visit.name} (ignored)`
    : visit.reason === 'ambiguous' ? 'ambiguous' : visit.corrected ? `not ${visit.label?.replace(/^not /, '') ?? ''}` : 'unknown';
  return <span class={`badge ${visit.kind}${visit.reason === 'ambiguous' ? ' ambiguous' : ''}`}>{label}</span>;
}

function Recent({ people }: { people: PersonSummary[] }) {
  const [camera, setCamera] = useState('');
  const [person, setPerson] = useState('');
  const [pages, setPages] = useState<VisitPage[]>([]);
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState('');
  const [message, setMessage] = useState('');
  const load = useCallback(async (before?: string) => {
    try {
      const page = await api.get<VisitPage>('visits', { camera, person, before, limit: 48 });
      setPages((old) => (before ? [...old, page] : [page]));
      setError(null);
    } catch (e) {
      setError(e as Error);
    }
  }, [camera, person]);
  useEffect(() => {
    void load();
    const timer = setInterval(() => { if (!document.hidden) void load(); }, 5000);
    return () => clearInterval(timer);
  }, [load]);
  const visits = pages.flatMap((p) => p.visits);
  const last = pages[pages.length - 1];
  const cameras = pages[0]?.cameras ?? [];
  const correct = async (visit: Visit) => {
    setBusy(visit.id);
    try {
      const result = await api.post<{ person: string }>(`visits/${visit.id}/not`);
      setMessage(`Noted: this is not ${result.person}. The face will not be accepted as ${result.person} again; name it under Unknown people.`);
      await load();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy('');
    }
  };
  return (
    <section aria-label="Recent faces">
      <div class="toolbar">
        <label>Camera <select value={camera} onChange={(e) => setCamera(e.currentTarget.value)}>
          <option value="">all</option>{cameras.map((c) => <option value={c}>{c}</option>)}
        </select></label>
        <label>Who <select value={person} onChange={(e) => setPerson(e.currentTarget.value)}>
          <option value="">everyone</option><option value="unknown">unknown</option><option value="ignored">ignored</option>
          {people.map((p) => <option value={p.name}>{p.name}</option>)}
        </select></label>
        <span class="muted">{pages[0] ? `${pages[0].total} visit(s)` : ''}</span>
      </div>
      <ErrorBox error={error} />
      {message && <div class="notice ok" role="status">{message}</div>}
      {pages[0] && visits.length === 0 && <p class="empty">No visits yet. They appear here as the cameras see faces.</p>}
      <ul class="grid visits">
        {visits.map((v) => (
          <li class="card visit" data-kind={v.kind} data-visit={v.id}>
            {v.hasCrop ? <img src={imageUrl(`visits/${v.id}/crop.jpg`)} alt={`face at ${v.camera}`} loading="lazy" width={112} height={112} />
              : <div class="noimage">no image</div>}
            <div class="meta">
              <KindBadge visit={v} />
              <span class="small">{v.reason === 'no-people' ? 'nobody enrolled yet' : `cos ${fixed(v.cosine)}${v.margin !== null ? ` · margin ${fixed(v.margin)}` : ''}`}</span>
              {v.kind === 'unknown' && v.closest && <span class="small muted">closest: {v.closest}</span>}
              <span class="small">{v.camera} · {time(v.time)}</span>
              {v.label && !v.corrected && <span class="small muted">{v.label}</span>}
              {(v.kind === 'recognized' || v.kind === 'ignored') && v.hasCrop && (
                <button class="link" disabled={busy === v.id} onClick={() => correct(v)} title={`This face is not ${v.name}`}>Not {v.name}</button>
              )}
            </div>
          </li>
        ))}
      </ul>
      {last?.next && <button onClick={() => load(last.next!)}>Older visits</button>}
    </section>
  );
}

// ---------------------------------------------------------------- unknown people

function NameForm({ people, onDone, cluster }: { people: PersonSummary[]; cluster: Cluster; onDone: (message: string) => void }) {
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const [report, setReport] = useState<{ visit: string; accepted: boolean; reasons: Reason[] }[] | null>(null);
  // The gallery's own rule ("andre agassi" is André Agassi), so the button says what the server will do.
  const key = looseNameKey(name);
  const existing = key ? people.find((p) => looseNameKey(p.name) === key) : undefined;
  const submit = async (ignore: boolean) => {
    setBusy(true);
    setError(null);
    try {
      const result = await api.post<{ person: { name: string } | null; accepted: number; rejected: number; crops: { visit: string; accepted: boolean; reasons: Reason[] }[] }>(
        `clusters/${cluster.id}/name`, { name: name.trim(), mode: existing ? 'existing' : 'new', ignore });
      setReport(result.crops);
      if (result.person) onDone(`${result.accepted} face(s) enrolled as ${result.person.name}${ignore ? ' (ignored)' : ''}, ${result.rejected} rejected.`);
      else setError(new Error(`Not enrolled: ${result.accepted} usable face(s) of ${result.crops.length}.`));
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="nameform" onSubmit={(e) => { e.preventDefault(); void submit(false); }}>
      <input aria-label="Name" placeholder="Name (new or existing person)" list="people-names" value={name}
        onInput={(e) => setName(e.currentTarget.value)} required maxLength={64} />
      <button type="submit" disabled={busy || !name.trim()}>{existing ? `Add to ${existing.name}` : 'Name as new person'}</button>
      <button type="button" disabled={busy || !name.trim()} onClick={() => submit(true)}
        title="Recognise, but never fire a person trigger or an unknown alert (e.g. the postman)">Ignore as this name</button>
      <ErrorBox error={error} />
      {report && <ul class="report">{report.map((r) => <li class={r.accepted ? 'ok' : 'bad'}>{r.accepted ? 'accepted' : 'rejected'} <Reasons reasons={r.reasons} /></li>)}</ul>}
    </form>
  );
}

function Unknown({ people, onPeopleChanged }: { people: PersonSummary[]; onPeopleChanged: () => void }) {
  const { data, error, reload } = useAsync(() => api.get<{ clusters: Cluster[] }>('clusters'), []);
  const [message, setMessage] = useState('');
  useEffect(() => {
    const timer = setInterval(() => { if (!document.hidden) reload(); }, 5000);
    return () => clearInterval(timer);
  }, [reload]);
  const remove = async (cluster: Cluster) => {
    if (!confirm(`Delete these ${cluster.visits} visit(s) and their face images?`)) return;
    await api.delete(`clusters/${cluster.id}`).catch((e: Error) => setMessage(e.message));
    reload();
  };
  return (
    <section aria-label="Unknown people">
      <p class="muted">Strangers the cameras saw, grouped by face. Name a group to enrol it (the next visit is recognised at once), ignore it
        (recognised, but no trigger and no unknown alert), or delete it.</p>
      <ErrorBox error={error} />
      {message && <div class="notice ok" role="status">{message}</div>}
      {data && data.clusters.length === 0 && <p class="empty">No unknown faces stored.</p>}
      <ul class="clusters">
        {data?.clusters.map((c) => (
          <li class="card cluster" data-cluster={c.id}>
            <div class="strip">{c.crops.map((id) => <img src={imageUrl(`visits/${id}/crop.jpg`)} alt="unknown face" loading="lazy" width={72} height={72} />)}
              {c.crops.length === 0 && <div class="noimage">no images</div>}</div>
            <div class="meta">
              <strong>{c.visits} visit(s)</strong>
              <span class="small">first seen {time(c.firstSeen)} · last seen {time(c.lastSeen)} · {c.cameras.join(', ')}</span>
              <NameForm people={people} cluster={c} onDone={(m) => { setMessage(m); reload(); onPeopleChanged(); }} />
              <button class="danger link" onClick={() => remove(c)}>Delete</button>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

// ---------------------------------------------------------------- people

function Upload({ name, mode, onDone }: { name: string; mode: 'new' | 'existing'; onDone: () => void }) {
  const [report, setReport] = useState<{ ok: boolean; message?: string; photos: { file: string; accepted: boolean; reasons: Reason[] }[] } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const [over, setOver] = useState(false);
  const send = async (files: FileList | File[]) => {
    if (!name.trim()) { setError(new Error('Type a name first.')); return; }
    const form = new FormData();
    form.append('name', name.trim());
    form.append('mode', mode);
    for (const file of Array.from(files)) form.append('photos', file, file.name);
    setBusy(true);
    setError(null);
    try {
      const result = await api.upload<NonNullable<typeof report>>('people/photos', form);
      setReport(result);
      if (result.ok) onDone();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class={`dropzone${over ? ' over' : ''}`} onDragOver={(e) => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)}
      onDrop={(e) => { e.preventDefault(); setOver(false); if (e.dataTransfer?.files.length) void send(e.dataTransfer.files); }}>
      <label>Drop photos here, or <input type="file" accept="image/*" multiple aria-label="Photos"
        onChange={(e) => { const files = e.currentTarget.files; if (files?.length) void send(files); }} /></label>
      {busy && <span class="muted">checking photos…</span>}
      <ErrorBox error={error} />
      {report && (
        <div class="report" role="status">
          <strong>{report.ok ? 'Saved.' : report.message ?? 'Nothing was saved.'}</strong>
          <ul>{report.photos.map((p) => <li class={p.accepted ? 'ok' : 'bad'}>{p.file}: {p.accepted ? 'accepted' : 'rejected'} <Reasons reasons={p.reasons} /></li>)}</ul>
        </div>
      )}
    </div>
  );
}

function PersonPage({ id, onBack, onChanged }: { id: string; onBack: () => void; onChanged: () => void }) {
  const { data, error, reload } = useAsync(() => api.get<PersonDetail>(`people/${encodeURIComponent(id)}`), [id]);
  const [message, setMessage] = useState<Error | null>(null);
  const act = async (action: () => Promise<unknown>) => {
    try { await action(); setMessage(null); reload(); onChanged(); } catch (e) { setMessage(e as Error); }
  };
  if (!data) return <ErrorBox error={error} />;
  const rename = () => {
    const name = prompt('New name', data.name);
    if (name && name !== data.name) void act(() => api.post(`people/${data.id}/rename`, { name }));
  };
  const forget = async () => {
    const typed = prompt(`Forget ${data.name}? Their photos, corrections and visits are deleted for good. Type the name to confirm.`);
    if (typed !== data.name) return;
    try { await api.delete(`people/${data.id}`, { confirm: data.id }); onChanged(); onBack(); } catch (e) { setMessage(e as Error); }
  };
  return (
    <section aria-label={data.name}>
      <button class="link" onClick={onBack}>← People</button>
      <h2>{data.name} {data.ignored && <span class="badge ignored">ignored</span>}</h2>
      <div class="toolbar">
        <button onClick={rename}>Rename</button>
        <button onClick={() => act(() => api.post(`people/${data.id}/ignored`, { ignored: !data.ignored }))}>{data.ignored ? 'Stop ignoring' : 'Ignore'}</button>
        <a class="button" href={url('export', { people: data.id }, true)} download>Export</a>
        <button class="danger" onClick={forget}>Forget…</button>
      </div>
      <ErrorBox error={message} />
      {data.health && (
        <p>Own photos recognised (leave-one-out): <strong>{percent(data.health.top1Rate)}</strong>, mean score {fixed(data.health.meanCosine)}
          {data.health.nearest && <> · nearest other person: {data.health.nearest.name} ({fixed(data.health.nearest.cosine)})</>}</p>
      )}
      {data.health?.warnings.map((w) => <div class="notice warn">{w}</div>)}
      <h3>Photos ({data.photos.length})</h3>
      <ul class="grid photos">
        {data.photos.map((p) => (
          <li class="card photo">
            <img src={imageUrl(`people/${data.id}/photos/${p.file}`)} alt={`photo of ${data.name}`} loading="lazy" width={112} height={112} />
            <div class="meta">
              <span class={`small ${p.top1 === false ? 'bad' : ''}`}>score {fixed(p.cosine)}{p.top1 === false && p.nearest ? ` · taken for ${p.nearest.name}` : ''}</span>
              {p.quality && <span class="small muted">sharp {fixed(p.quality.sharpness, 0)} · yaw {fixed(p.quality.yawDeg, 0)}°</span>}
              <button class="link danger" onClick={() => confirm('Delete this photo?') && act(() => api.delete(`people/${data.id}/photos/${p.file}`))}>Delete</button>
            </div>
          </li>
        ))}
      </ul>
      <h3>Add photos</h3>
      <Upload name={data.name} mode="existing" onDone={() => { reload(); onChanged(); }} />
      {data.negatives.length > 0 && <>
        <h3>Not {data.name} ({data.negatives.length})</h3>
        <p class="muted">Faces marked "not {data.name}": a face closer to one of these than to {data.name}'s photos is not accepted as {data.name}.</p>
        <ul class="grid photos">{data.negatives.map((n) => (
          <li class="card photo"><img src={imageUrl(`people/${data.id}/negatives/${n.file}`)} alt="negative example" width={112} height={112} />
            <button class="link" onClick={() => act(() => api.delete(`people/${data.id}/negatives/${n.file}`))}>Remove</button></li>))}</ul>
      </>}
    </section>
  );
}

function People({ people, reloadPeople }: { people: PersonSummary[]; reloadPeople: () => void }) {
  const [open, setOpen] = useState<string | null>(null);
  const [newName, setNewName] = useState('');
  const [importReport, setImportReport] = useState<{ name: string; outcome: string; photos: number; message?: string }[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  if (open) return <PersonPage id={open} onBack={() => setOpen(null)} onChanged={reloadPeople} />;
  const importFile = async (file: File, merge: boolean) => {
    try {
      const result = await api.raw<{ people: NonNullable<typeof importReport> }>('import', file, { merge: merge ? '1' : undefined });
      setImportReport(result.people);
      setError(null);
      reloadPeople();
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <section aria-label="People">
      <ul class="people">
        {people.map((p) => (
          <li class="card person"><button class="link" onClick={() => setOpen(p.id)}><strong>{p.name}</strong></button>
            <span class="small">{p.photos} photo(s){p.negatives ? ` · ${p.negatives} "not" example(s)` : ''}</span>
            {p.ignored && <span class="badge ignored">ignored</span>}</li>
        ))}
        {people.length === 0 && <p class="empty">Nobody enrolled yet: name someone under Unknown people, or upload photos below.</p>}
      </ul>
      <h3>New person from photos</h3>
      <input aria-label="New person's name" placeholder="Name" value={newName} onInput={(e) => setNewName(e.currentTarget.value)} maxLength={64} />
      <Upload name={newName} mode="new" onDone={reloadPeople} />
      <h3>Export and import</h3>
      <div class="toolbar">
        <a class="button" href={imageUrl('export')} download>Export the whole gallery</a>
        <label class="button">Import a file<input type="file" accept="application/json,.json" hidden
          onChange={(e) => { const f = e.currentTarget.files?.[0]; if (f) void importFile(f, false); }} /></label>
        <label class="button">Import, adding to people of the same name<input type="file" accept="application/json,.json" hidden
          onChange={(e) => { const f = e.currentTarget.files?.[0]; if (f) void importFile(f, true); }} /></label>
      </div>
      <ErrorBox error={error} />
      {importReport && <ul class="report">{importReport.map((r) => <li class={r.outcome === 'failed' ? 'bad' : 'ok'}>{r.name}: {r.outcome}{r.photos ? ` (${r.photos} photos)` : ''} {r.message ?? ''}</li>)}</ul>}
    </section>
  );
}

// ---------------------------------------------------------------- health

function Chart({ options, data }: { options: Omit<uPlot.Options, 'width' | 'height'>; data: uPlot.AlignedData }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const width = Math.min(720, box.current.clientWidth || 720);
    const plot = new uPlot({ legend: { live: false }, ...options, width, height: 260 }, data, box.current);
    return () => plot.destroy();
  }, [options, data]);
  return <div class="chart" ref={box} />;
}

function histogram(values: number[], from = 0, to = 1, bins = 40): number[] {
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.max(0, Math.min(bins - 1, Math.floor(((v - from) / (to - from)) * bins)))]++;
  const total = values.length || 1;
  return counts.map((c) => c / total);
}

function HealthView() {
  const { data, error, reload } = useAsync(() => api.get<Health>('health'), []);
  const [message, setMessage] = useState<string>('');
  const [applyError, setApplyError] = useState<Error | null>(null);
  const curve = useMemo(() => {
    if (!data) return null;
    const marks = (value: number | undefined) => data.curve.map((c) => (value !== undefined && Math.abs(c.threshold - value) < 0.005 ? 1 : null));
    return {
      options: {
        title: 'Threshold: your people accepted vs strangers let in',
        scales: { x: { time: false }, y: { range: [0, 1] as [number, number] } },
        axes: [{ label: 'threshold', stroke: 'currentColor' }, { label: 'share', stroke: 'currentColor' }],
        series: [{ label: 'threshold' }, { label: 'people accepted', stroke: '#2e9d52', width: 2 },
          { label: 'strangers accepted', stroke: '#d9534f', width: 2 },
          { label: `now ${fixed(data.threshold)}`, stroke: '#888', paths: uPlot.paths.bars!({ size: [0.3, 2] }), points: { show: false } },
          { label: data.suggestion ? `suggested ${fixed(data.suggestion.threshold)}` : 'suggested –', stroke: '#1f78d1',
            paths: uPlot.paths.bars!({ size: [0.3, 2] }), points: { show: false } }],
      },
      data: [data.curve.map((c) => c.threshold), data.curve.map((c) => c.tpir), data.curve.map((c) => c.fpir),
        marks(data.threshold), marks(data.suggestion?.threshold)] as uPlot.AlignedData,
    };
  }, [data]);
  const hist = useMemo(() => {
    if (!data) return null;
    const x = Array.from({ length: 40 }, (_, i) => i / 40 + 1 / 80);
    const bars = uPlot.paths.bars!({ size: [0.9, 40] });
    return {
      options: {
        title: 'Scores: own photos (leave-one-out) vs strangers and other people',
        scales: { x: { time: false } },
        axes: [{ label: 'cosine', stroke: 'currentColor' }, { label: 'share', stroke: 'currentColor' }],
        series: [{ label: 'cosine' }, { label: 'own photos', stroke: '#2e9d52', fill: 'rgba(46,157,82,0.35)', paths: bars },
          { label: 'strangers + other people', stroke: '#d9534f', fill: 'rgba(217,83,79,0.35)', paths: bars }],
      },
      data: [x, histogram(data.genuine), histogram([...data.impostor.strangers, ...data.impostor.otherPeople])] as uPlot.AlignedData,
    };
  }, [data]);
  const apply = async (recognition: { threshold: number } | null) => {
    try {
      await api.put('settings', { recognition });
      setMessage(recognition ? `Threshold ${fixed(recognition.threshold)} applied: every camera uses it from now on.` : 'Back to the face-gallery node\'s threshold.');
      setApplyError(null);
      reload();
    } catch (e) {
      setApplyError(e as Error);
    }
  };
  if (!data) return <ErrorBox error={error} />;
  return (
    <section aria-label="Health">
      <p>Threshold now <strong>{fixed(data.threshold)}</strong> (margin {fixed(data.margin)}){data.applied.threshold !== undefined ? ', applied here' : ', from the face-gallery node'}.
        {data.suggestion
          ? <> Suggested from your data: <strong>{fixed(data.suggestion.threshold)}</strong> — {percent(data.suggestion.tpir)} of your people's photos
            accepted, {percent(data.suggestion.fpir)} of strangers let in. <button onClick={() => apply({ threshold: data.suggestion!.threshold })}>
              Apply {fixed(data.suggestion.threshold)}</button></>
          : <> No suggestion yet: {data.basis}.</>}
        {data.applied.threshold !== undefined && <button class="link" onClick={() => apply(null)}>Use the node's threshold</button>}
      </p>
      {data.suggestion && <p class="small muted">Based on {data.basis}; target: at most {percent(data.targetFpir)} of strangers accepted.</p>}
      {message && <div class="notice ok" role="status">{message}</div>}
      <ErrorBox error={applyError} />
      <div class="charts">{curve && <Chart {...curve} />}{hist && <Chart {...hist} />}</div>
      <table class="health">
        <thead><tr><th>Person</th><th>Own photos recognised</th><th>Mean score</th><th>Nearest other person</th><th>Advice</th></tr></thead>
        <tbody>{data.people.map((p) => (
          <tr><td>{p.name}</td><td>{percent(p.top1Rate)}</td><td>{fixed(p.meanCosine)}</td>
            <td>{p.nearest ? `${p.nearest.name} (${fixed(p.nearest.cosine)})` : '–'}</td><td>{p.warnings.join(' · ') || 'good'}</td></tr>
        ))}</tbody>
      </table>
    </section>
  );
}

// ---------------------------------------------------------------- live

function LiveCamera({ camera }: { camera: { id: string; name: string } }) {
  const [faces, setFaces] = useState<{ width: number; height: number; state: string; faces: { box: { x: number; y: number; width: number; height: number }; name: string | null }[] } | null>(null);
  const [stamp] = useState(() => Date.now());
  useEffect(() => {
    const headers: Record<string, string> = {};
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    const poll = () => void fetch(`../camera-in/${camera.id}/faces`, { headers }).then((r) => (r.ok ? r.json() : null)).then(setFaces, () => undefined);
    poll();
    const timer = setInterval(poll, 500);
    return () => clearInterval(timer);
  }, [camera.id]);
  const t = token();
  const src = `../camera-in/${camera.id}/live.mjpeg?t=${stamp}${t ? `&access_token=${encodeURIComponent(t)}` : ''}`;
  return (
    <figure class="live">
      <div class="frame">
        <img src={src} alt={`live view of ${camera.name}`} />
        {faces && faces.width > 0 && faces.faces.map((f) => (
          <div class={`box${f.name && f.name !== 'unknown' ? ' known' : ''}`} style={{ left: `${(f.box.x / faces.width) * 100}%`, top: `${(f.box.y / faces.height) * 100}%`,
            width: `${(f.box.width / faces.width) * 100}%`, height: `${(f.box.height / faces.height) * 100}%` }}><span>{f.name ?? '…'}</span></div>
        ))}
      </div>
      <figcaption>{camera.name} · {faces?.state ?? '…'}</figcaption>
    </figure>
  );
}

function Live() {
  const { data, error } = useAsync(() => api.get<{ cameras: { id: string; name: string }[] }>('cameras'), []);
  return (
    <section aria-label="Live">
      <ErrorBox error={error} />
      {data && data.cameras.length === 0 && <p class="empty">No camera-in node is deployed.</p>}
      <div class="lives">{data?.cameras.map((c) => <LiveCamera camera={c} />)}</div>
    </section>
  );
}

// ---------------------------------------------------------------- settings

function SettingsView() {
  const { data, error, reload } = useAsync(() => api.get<Settings>('settings'), []);
  const [form, setForm] = useState<Settings['visits'] | null>(null);
  const [status, setStatus] = useState<Error | string | null>(null);
  useEffect(() => { if (data) setForm(data.visits); }, [data]);
  if (!form) return <ErrorBox error={error} />;
  const save = async (e: Event) => {
    e.preventDefault();
    if (data?.visits.keepImages && !form.keepImages && !confirm('Turn face images off? Every stored face image is deleted now.')) return;
    try {
      await api.put('settings', { visits: form });
      setStatus('Saved.');
      reload();
    } catch (err) {
      setStatus(err as Error);
    }
  };
  return (
    <form class="settings" onSubmit={save} aria-label="Settings">
      <label>Keep at most <input type="number" min={10} max={1000000} step={1} value={form.maxVisits}
        onInput={(e) => setForm({ ...form, maxVisits: Number(e.currentTarget.value) })} /> visits</label>
      <label>Keep visits for <input type="number" min={0.01} max={3650} step="any" value={form.maxAgeDays}
        onInput={(e) => setForm({ ...form, maxAgeDays: Number(e.currentTarget.value) })} /> days</label>
      <label><input type="checkbox" checked={form.keepImages} onChange={(e) => setForm({ ...form, keepImages: e.currentTarget.checked })} />
        Keep face images (off: embeddings only, for privacy; unknown people can then be grouped and deleted, not named)</label>
      <button type="submit">Save</button>
      {typeof status === 'string' ? <span class="notice ok">{status}</span> : <ErrorBox error={status} />}
    </form>
  );
}

// ---------------------------------------------------------------- the page

function App() {
  const initial = (location.hash.slice(1) as Tab) || 'recent';
  const [tab, setTab] = useState<Tab>(TABS.some((t) => t.id === initial) ? initial : 'recent');
  const [gallery, setGalleryId] = useState('');
  const [theme, setTheme] = useState(() => localStorage.getItem('coral-face-theme') ?? 'auto');
  const galleries = useAsync(() => api.get<{ galleries: { id: string; name: string; directory: string }[] }>('galleries'), []);
  const people = useAsync(() => api.get<{ people: PersonSummary[] }>('people'), [gallery]);
  useEffect(() => { location.hash = tab; }, [tab]);
  useEffect(() => {
    // Links and the back button change the hash: follow them.
    const follow = () => {
      const wanted = location.hash.slice(1) as Tab;
      if (TABS.some((t) => t.id === wanted)) setTab(wanted);
    };
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('coral-face-theme', theme);
  }, [theme]);
  const list = galleries.data?.galleries ?? [];
  useEffect(() => { if (!gallery && list.length) { setGallery(list[0].id); setGalleryId(list[0].id); } }, [list.length]);
  const names = people.data?.people ?? [];
  return (
    <>
      <header>
        <h1>Face library</h1>
        {list.length > 1 && (
          <label>Gallery <select value={gallery} onChange={(e) => { setGallery(e.currentTarget.value); setGalleryId(e.currentTarget.value); }}>
            {list.map((g) => <option value={g.id}>{g.name}</option>)}</select></label>
        )}
        <nav aria-label="Views">{TABS.map((t) => <button class={tab === t.id ? 'tab active' : 'tab'} aria-current={tab === t.id ? 'page' : undefined}
          onClick={() => setTab(t.id)}>{t.label}</button>)}</nav>
        <span class="spacer" />
        <select aria-label="Theme" value={theme} onChange={(e) => setTheme(e.currentTarget.value)}>
          <option value="auto">auto theme</option><option value="light">light</option><option value="dark">dark</option></select>
        <a href="../" class="editor-link">Node-RED editor</a>
      </header>
      <main>
        <ErrorBox error={galleries.error} />
        {galleries.data && list.length === 0 && <div class="notice warn">No face-gallery is deployed: add the recognition flow in the Node-RED editor and deploy.</div>}
        <datalist id="people-names">{names.map((p) => <option value={p.name} />)}</datalist>
        {(gallery || tab === 'live') && (
          <div key={gallery}>
            {tab === 'recent' && <Recent people={names} />}
            {tab === 'unknown' && <Unknown people={names} onPeopleChanged={people.reload} />}
            {tab === 'people' && <People people={names} reloadPeople={people.reload} />}
            {tab === 'health' && <HealthView />}
            {tab === 'live' && <Live />}
            {tab === 'settings' && <SettingsView />}
          </div>
        )}
      </main>
    </>
  );
}

const root = document.getElementById('app')!;
root.textContent = ''; // the "Loading…" placeholder
render(<App />, root);
