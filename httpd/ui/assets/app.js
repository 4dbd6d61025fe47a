// SecureVision operator dashboard. Plain ES module over Preact + htm (no
// build step): every screen is a function of the URL hash, so a search or
// an event can be bookmarked and shared. The page talks to this server
// only: the REST API with the bearer token from sessionStorage, /stream
// with ?token=, snapshots fetched with the token and shown as blob: URLs.
import { html, render, useState, useEffect, useRef, useCallback } from './preact-htm.module.js';

const TOKEN_KEY = 'securevision.token';
const THEME_KEY = 'securevision.theme';
const MAX_CARDS = 60; // live view: newest cards kept
const PAGE = 50; // search and history page size

// ---------------------------------------------------------------- API

const S = { token: sessionStorage.getItem(TOKEN_KEY) || '' };

class HTTPError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

function detailOf(body, fallback) {
  const d = body && body.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).join('.')}: ${e.msg}`).join('; ');
  return fallback;
}

function authHeaders() {
  return S.token ? { Authorization: 'Bearer ' + S.token } : {};
}

// api calls path on this server and returns {data, headers}; a 401 sends
// the page back to the token form. raw returns the Response itself.
async function api(path, { method = 'GET', body, raw = false } = {}) {
  const headers = authHeaders();
  let b;
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; b = JSON.stringify(body); }
  const r = await fetch(path, { method, headers, body: b, cache: 'no-store', credentials: 'omit' });
  if (r.status === 401) {
    unauthorized();
    throw new HTTPError(401, 'Authentication required');
  }
  if (raw) return r;
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!r.ok) throw new HTTPError(r.status, detailOf(data, `${r.status} ${r.statusText}`));
  return { data, headers: r.headers };
}

let onAuth = () => {};
function unauthorized() {
  S.token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  onAuth('need');
}

// nextQuery returns the query string of a response's rel="next" link,
// null when there is none.
function nextQuery(headers) {
  const link = headers.get('Link') || '';
  const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(link);
  if (!m) return null;
  const i = m[1].indexOf('?');
  return i < 0 ? '' : m[1].slice(i + 1);
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- snapshots

// Snapshots need the token, so they are fetched and shown through object
// URLs; a few at a time, cached per id (null: the event has none).
const thumbs = new Map();
const THUMB_CACHE = 400;
let thumbActive = 0;
const thumbQueue = [];

function pump() {
  while (thumbActive < 4 && thumbQueue.length) {
    const job = thumbQueue.shift();
    thumbActive++;
    job().finally(() => { thumbActive--; pump(); });
  }
}

function snapshotURL(id) {
  if (!thumbs.has(id)) {
    thumbs.set(id, new Promise((resolve) => {
      thumbQueue.push(() => api(`/events/${id}/snapshot.jpg`, { raw: true })
        .then(async (r) => resolve(r.ok ? URL.createObjectURL(await r.blob()) : null))
        .catch(() => resolve(null)));
      pump();
    }));
    while (thumbs.size > THUMB_CACHE) {
      const [old, p] = thumbs.entries().next().value;
      thumbs.delete(old);
      p.then((u) => u && URL.revokeObjectURL(u));
    }
  }
  return thumbs.get(id);
}

function useSnapshot(id) {
  const [url, setURL] = useState(undefined);
  useEffect(() => {
    let live = true;
    setURL(undefined);
    snapshotURL(id).then((u) => live && setURL(u));
    return () => { live = false; };
  }, [id]);
  return url;
}

// ---------------------------------------------------------------- formatting

function useTick(ms) {
  const [, set] = useState(0);
  useEffect(() => { const t = setInterval(() => set((n) => n + 1), ms); return () => clearInterval(t); }, [ms]);
}

function ago(ms) {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < -5) return 'in the future';
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

const fmtTime = (ms) => new Date(ms).toLocaleString();
const pct = (x) => (typeof x === 'number' ? `${Math.round(x * 100)}%` : '');

// who returns what an event is about, after any correction.
function who(e) {
  const p = e.payload || {};
  const c = e.correction || {};
  if (c.false_positive) return { kind: 'fp', text: 'false positive' };
  if (e.type === 'face_match') return { kind: 'person', text: c.person_name || p.person_name || '?' };
  return { kind: 'plate', text: c.plate_text || p.plate_text || '?' };
}

function score(e) {
  const p = e.payload || {};
  return e.type === 'face_match' ? p.similarity : p.confidence;
}

function Badge({ e }) {
  const lm = (e.payload || {}).list_match;
  if (!lm) return null;
  return html`<span class=${'badge ' + lm} title=${'watchlist: ' + lm}>${lm}</span>`;
}

// ---------------------------------------------------------------- routing

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const i = h.indexOf('?');
  const path = i < 0 ? h : h.slice(0, i);
  const query = new URLSearchParams(i < 0 ? '' : h.slice(i + 1));
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { path, parts, query };
}

function useRoute() {
  const [r, set] = useState(parseHash);
  useEffect(() => {
    const f = () => set(parseHash());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return r;
}

// ---------------------------------------------------------------- live feed

// Feed shows the newest events and follows /stream from the last id shown:
// after a dropped connection it reconnects with after=<that id>, so the
// server replays exactly what was missed (ids are the cursor: nothing
// twice, nothing lost). Pausing closes the stream; resuming reopens it
// from the same id.
class Feed {
  constructor(onEvents, onStatus) {
    this.onEvents = onEvents;
    this.onStatus = onStatus;
    this.lastId = 0;
    this.ws = null;
    this.paused = false;
    this.closed = false;
    this.retry = 0;
    this.queue = [];
    this.flushTimer = 0;
  }

  async start() {
    let data;
    try {
      ({ data } = await api(`/events?limit=${MAX_CARDS}`));
    } catch (e) {
      // A 401 has returned the page to the token form; anything else
      // (the server restarting, 503) is tried again.
      if (e.status !== 401 && !this.closed) {
        this.onStatus('reconnecting');
        this.timer = setTimeout(() => this.start(), Math.min(10000, 500 * 2 ** this.retry++));
      }
      return;
    }
    if (this.closed) return;
    this.lastId = data.length ? data[0].id : 0;
    this.onEvents(data, true);
    this.connect();
  }

  connect() {
    if (this.ws || this.paused || this.closed) return;
    const q = new URLSearchParams({ after: String(this.lastId) });
    if (S.token) q.set('token', S.token);
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/stream?${q}`);
    this.ws = ws;
    this.onStatus(this.retry ? 'reconnecting' : 'connecting');
    ws.onopen = () => { this.retry = 0; this.onStatus('live'); };
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      let e;
      try { e = JSON.parse(m.data); } catch (err) { return; }
      if (!e || typeof e.id !== 'number' || e.id <= this.lastId) return;
      this.lastId = e.id;
      this.queue.push(e);
      if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), 50);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pinger);
      if (this.closed) return;
      this.onStatus('reconnecting');
      const delay = Math.min(10000, 500 * 2 ** this.retry++);
      this.timer = setTimeout(() => this.check(), delay);
    };
    // Keeps proxies from closing an idle connection.
    this.pinger = setInterval(() => ws.readyState === 1 && ws.send('ping'), 25000);
  }

  // check runs before a reconnect: a refused token shows as a plain
  // close on a WebSocket, so ask the REST API (a 401 there returns the
  // page to the token form).
  async check() {
    try {
      await api('/events?limit=1');
    } catch (e) {
      if (e.status === 401) return;
    }
    this.connect();
  }

  flush() {
    this.flushTimer = 0;
    const q = this.queue;
    this.queue = [];
    if (q.length) this.onEvents(q.reverse(), false);
  }

  drop() {
    const ws = this.ws;
    this.ws = null;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (ws) ws.close(1000);
  }

  pause() { this.paused = true; this.drop(); this.onStatus('paused'); }
  resume() { this.paused = false; this.retry = 0; this.connect(); }
  stop() { this.closed = true; this.drop(); }
}

function Live() {
  const [events, setEvents] = useState(null);
  const [status, setStatus] = useState('connecting');
  const [paused, setPaused] = useState(false);
  const [err, setErr] = useState('');
  const feed = useRef(null);
  useTick(10000);
  useEffect(() => {
    const f = new Feed((evs, replace) => {
      setEvents((cur) => (replace ? evs : evs.concat(cur || [])).slice(0, MAX_CARDS));
    }, setStatus);
    feed.current = f;
    window.svFeed = f; // for the browser tests and for debugging
    f.start().catch((e) => setErr(e.message));
    return () => f.stop();
  }, []);
  const toggle = useCallback(() => {
    setPaused((p) => { if (p) feed.current.resume(); else feed.current.pause(); return !p; });
  }, []);
  useEffect(() => {
    const k = (ev) => {
      if (ev.key === 'p' && !/INPUT|TEXTAREA|SELECT/.test(ev.target.tagName) && !ev.ctrlKey && !ev.metaKey) toggle();
    };
    addEventListener('keydown', k);
    return () => removeEventListener('keydown', k);
  }, [toggle]);
  return html`
    <section class="live">
      <${Chart} />
      <div class="toolbar">
        <h2>Live</h2>
        <span class=${'status ' + status} role="status" data-status=${status}>${status}</span>
        <button type="button" class="pause" onClick=${toggle} aria-pressed=${paused} title="Pause or resume the feed (p)">
          ${paused ? 'Resume' : 'Pause'}</button>
      </div>
      ${err && html`<p class="error">${err}</p>`}
      ${events === null ? html`<p class="muted">Loading events…</p>`
        : events.length === 0 ? html`<p class="muted">No events yet. New ones appear here as they arrive.</p>`
        : html`<ul class="cards" aria-live="polite">${events.map((e) => html`<${Card} key=${e.id} e=${e} />`)}</ul>`}
    </section>`;
}

function Card({ e }) {
  const url = useSnapshot(e.id);
  const w = who(e);
  const lm = (e.payload || {}).list_match;
  return html`
    <li class=${'card ' + (lm || '')} data-id=${e.id}>
      <a href=${'#/event/' + e.id} aria-label=${`${e.type} ${w.text} on ${e.frame_source_id}`}>
        <div class="thumb">${url ? html`<img src=${url} alt="" />`
          : html`<span class="nothumb">${url === null ? (e.type === 'face_match' ? '☺' : '▭') : ''}</span>`}</div>
        <div class="meta">
          <div class="who"><span class=${'kind ' + w.kind}>${w.text}</span> <${Badge} e=${e} />
            ${e.correction ? html`<span class="badge corrected" title="corrected by an operator">corrected</span>` : ''}</div>
          <div class="sub"><span class="cam">${e.frame_source_id}</span> · <span class="score">${pct(score(e))}</span></div>
          <div class="sub"><time datetime=${new Date(e.ts_ms).toISOString()} title=${fmtTime(e.ts_ms)}>${ago(e.ts_ms)}</time></div>
        </div>
      </a>
    </li>`;
}

// ---------------------------------------------------------------- chart

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function Chart() {
  const box = useRef(null);
  const plot = useRef(null);
  const [info, setInfo] = useState('');
  useEffect(() => {
    let timer = 0;
    let live = true;
    let last = null;
    const load = async () => {
      let next = 60000;
      try {
        const { data } = await api('/stats/hourly?limit=8');
        if (!live) return;
        draw(data);
        if (!data.complete) next = 2000;
        setInfo(data.complete ? '' : 'counting stored events…');
      } catch (e) {
        if (live) setInfo(e.status === 404 ? 'chart unavailable on this server' : e.message);
      }
      if (live) timer = setTimeout(load, next);
    };
    const draw = (d) => {
      last = d;
      // One more point at the end of the current hour, so that each
      // count is drawn across its whole hour.
      const xs = Array.from({ length: d.hours + 1 }, (_, i) => (d.start_ms + i * d.hour_ms) / 1000);
      const rows = d.sources.map((s) => ({ label: s.frame_source_id, counts: s.counts }));
      if (d.other) rows.push({ label: `${d.other.sources} more`, counts: d.other.counts });
      const data = [xs, ...rows.map((r) => r.counts.concat(r.counts[r.counts.length - 1]))];
      const width = Math.max(280, box.current.clientWidth);
      // Canvas text does not follow CSS: take the theme's colours.
      const css = getComputedStyle(document.documentElement);
      const fg = css.getPropertyValue('--fg').trim() || '#888';
      const grid = css.getPropertyValue('--line').trim() || '#ccc';
      const key = rows.map((r) => r.label).join('\n') + fg;
      if (plot.current && plot.current.key === key) {
        plot.current.u.setData(data);
        return;
      }
      if (plot.current) plot.current.u.destroy();
      if (!window.uPlot) return;
      // Each count holds for its whole hour: steps, not lines between hours.
      const steps = window.uPlot.paths.stepped({ align: 1 });
      const opts = {
        width, height: 180,
        title: 'Events per hour, last 24 h',
        scales: { x: { time: true } },
        axes: [{ stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } },
               { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } }],
        series: [{}, ...rows.map((r, i) => ({
          label: r.label, stroke: PALETTE[i % PALETTE.length], width: 2, paths: steps,
          fill: PALETTE[i % PALETTE.length] + '1a', points: { show: false },
        }))],
      };
      plot.current = { key, u: new window.uPlot(opts, data, box.current) };
    };
    const ro = new ResizeObserver(() => {
      if (plot.current) plot.current.u.setSize({ width: Math.max(280, box.current.clientWidth), height: 180 });
    });
    ro.observe(box.current);
    const retheme = () => last && draw(last);
    const mq = matchMedia('(prefers-color-scheme: dark)');
    mq.addEventListener('change', retheme);
    addEventListener('sv-theme', retheme);
    load();
    return () => {
      live = false; clearTimeout(timer); ro.disconnect();
      mq.removeEventListener('change', retheme);
      removeEventListener('sv-theme', retheme);
      if (plot.current) plot.current.u.destroy();
      plot.current = null;
    };
  }, []);
  return html`<figure class="chart"><div ref=${box} class="plot"></div>${info && html`<figcaption class="muted">${info}</figcaption>`}</figure>`;
}

// ---------------------------------------------------------------- search

const SEARCH_KEYS = ['type', 'source', 'since', 'until', 'person', 'plate', 'fuzzy'];

function toLocalInput(ms) {
  if (!ms) return '';
  const d = new Date(Number(ms));
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function Search({ query }) {
  const [form, setForm] = useState(() => Object.fromEntries(SEARCH_KEYS.map((k) => [k, query.get(k) || ''])));
  const [res, setRes] = useState(null);
  const [cameras, setCameras] = useState([]);
  const qs = query.toString();
  useEffect(() => { setForm(Object.fromEntries(SEARCH_KEYS.map((k) => [k, query.get(k) || '']))); }, [qs]);
  useEffect(() => {
    api('/stats/hourly?limit=200').then(({ data }) => setCameras(data.sources.map((s) => s.frame_source_id))).catch(() => {});
  }, []);
  useEffect(() => {
    let live = true;
    setRes({ loading: true });
    runSearch(query).then((r) => live && setRes(r), (e) => live && setRes({
      error: e.status === 404 && (query.get('plate') || query.get('person'))
        ? 'Plate and person search is not available on this server.' : e.message,
    }));
    return () => { live = false; };
  }, [qs]);
  const set = (k) => (ev) => setForm({ ...form, [k]: ev.target.type === 'checkbox' ? (ev.target.checked ? '1' : '') : ev.target.value });
  const setTime = (k) => (ev) => setForm({ ...form, [k]: ev.target.value ? String(new Date(ev.target.value).getTime()) : '' });
  const submit = (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const k of SEARCH_KEYS) if (form[k]) q.set(k, form[k]);
    location.hash = '#/search?' + q;
  };
  const pageTo = (next) => {
    const q = new URLSearchParams(next);
    for (const k of ['person', 'plate', 'fuzzy']) if (query.get(k)) q.set(k, query.get(k));
    location.hash = '#/search?' + q;
  };
  const paged = ['before', 'after'].some((k) => query.has(k));
  return html`
    <section>
      <h2>Search</h2>
      <form class="filters" onSubmit=${submit} role="search">
        <label>Type <select name="type" value=${form.type} onChange=${set('type')}>
          <option value="">any</option><option value="face_match">face</option><option value="plate_read">plate</option></select></label>
        <label>Camera <input name="source" list="cameras" value=${form.source} onInput=${set('source')} placeholder="any" /></label>
        <datalist id="cameras">${cameras.map((c) => html`<option value=${c} />`)}</datalist>
        <label>From <input type="datetime-local" name="since" value=${toLocalInput(form.since)} onChange=${setTime('since')} /></label>
        <label>To <input type="datetime-local" name="until" value=${toLocalInput(form.until)} onChange=${setTime('until')} /></label>
        <label>Person <input name="person" value=${form.person} onInput=${set('person')} placeholder="name" /></label>
        <label>Plate <input name="plate" value=${form.plate} onInput=${set('plate')} placeholder="ABC1234, AB*" /></label>
        <label class="check"><input type="checkbox" name="fuzzy" checked=${!!form.fuzzy} onChange=${set('fuzzy')} /> fuzzy plate</label>
        <button type="submit">Search</button>
      </form>
      ${res && res.loading && html`<p class="muted">Searching…</p>`}
      ${res && res.error && html`<p class="error">${res.error}</p>`}
      ${res && res.plates && html`<${PlateHits} hits=${res.plates} />`}
      ${res && res.note && html`<p class="muted">${res.note}</p>`}
      ${res && res.events && html`
        <${EventTable} events=${res.events} />
        <nav class="pager">
          ${paged && html`<button type="button" onClick=${() => pageTo(new URLSearchParams([...query].filter(([k]) => !['before', 'after', 'order'].includes(k))))}>First page</button>`}
          ${res.next !== null && res.events.length > 0 && html`<button type="button" class="next" onClick=${() => pageTo(res.next)}>Next page</button>`}
        </nav>`}
    </section>`;
}

// runSearch asks the endpoint the filters call for: fuzzy plates from
// /search/plates, one plate's or one person's reads from their history,
// everything else from /events. The page's cursor is in the URL too.
async function runSearch(query) {
  const q = new URLSearchParams();
  for (const k of ['type', 'source', 'since', 'until', 'before', 'after', 'order']) if (query.get(k)) q.set(k, query.get(k));
  q.set('limit', query.get('limit') || String(PAGE));
  const plate = query.get('plate');
  const person = query.get('person');
  if (plate && (query.get('fuzzy') || /[*?]/.test(plate))) {
    const { data } = await api(`/search/plates?q=${enc(plate)}&max_distance=1&limit=${PAGE}`);
    return { plates: data };
  }
  let path = '/events';
  let note = '';
  if (plate || person) {
    // A history is one plate's or one person's: it takes no type or
    // camera filter.
    path = plate ? `/history/plates/${enc(plate)}` : `/history/people/${enc(person)}`;
    if (q.has('source') || q.has('type')) note = 'The type and camera filters do not apply to a plate or person history.';
    q.delete('type'); q.delete('source');
  }
  const { data, headers } = await api(`${path}?${q}`);
  return { events: data, next: nextQuery(headers), note };
}

function PlateHits({ hits }) {
  if (!hits.length) return html`<p class="muted">No plate within the distance.</p>`;
  return html`<table class="grid"><thead><tr><th>Plate</th><th>Distance</th><th>Reads</th><th>Cameras</th><th>Last seen</th><th>List</th></tr></thead>
    <tbody>${hits.map((h) => html`<tr>
      <td><a href=${'#/plate/' + enc(h.plate_text)}>${h.plate_text}</a></td><td>${h.distance}</td><td>${h.count}</td>
      <td>${(h.cameras || []).join(', ')}</td><td>${h.last_seen_ms ? fmtTime(h.last_seen_ms) : ''}</td>
      <td>${h.list_match && html`<span class=${'badge ' + h.list_match}>${h.list_match}</span>`}</td></tr>`)}</tbody></table>`;
}

function EventTable({ events }) {
  useTick(10000);
  if (!events.length) return html`<p class="muted">No events match.</p>`;
  return html`<table class="grid events"><thead><tr><th></th><th>Time</th><th>Camera</th><th>Who / plate</th><th>Score</th><th>List</th><th>Id</th></tr></thead>
    <tbody>${events.map((e) => html`<${EventRow} key=${e.id} e=${e} />`)}</tbody></table>`;
}

function EventRow({ e }) {
  const url = useSnapshot(e.id);
  const w = who(e);
  return html`<tr data-id=${e.id}>
    <td class="mini">${url ? html`<img src=${url} alt="" />` : ''}</td>
    <td title=${fmtTime(e.ts_ms)}>${ago(e.ts_ms)}</td>
    <td><a href=${'#/search?source=' + enc(e.frame_source_id)}>${e.frame_source_id}</a></td>
    <td><a href=${'#/event/' + e.id}>${w.text}</a>${e.correction ? ' ✎' : ''}</td>
    <td>${pct(score(e))}</td><td><${Badge} e=${e} /></td>
    <td><a href=${'#/event/' + e.id}>#${e.id}</a></td></tr>`;
}

// ---------------------------------------------------------------- event detail

// boxIn places a detection box on its snapshot. A snapshot at least as
// large as the box's far corner is taken as the whole frame; otherwise it
// is the vision pipeline's crop, the box padded by a fifth of its size on
// each side and scaled.
function boxIn(b, w, h) {
  const [x1, y1, x2, y2] = b;
  if (x2 <= w && y2 <= h && (x2 - x1) * 1.3 < w) return [x1, y1, x2 - x1, y2 - y1];
  const pad = 0.2 / 1.4;
  return [w * pad, h * pad, w / 1.4, h / 1.4];
}

function Snapshot({ e }) {
  const url = useSnapshot(e.id);
  const [size, setSize] = useState(null);
  const bbox = (e.payload || {}).bbox;
  if (url === undefined) return html`<div class="snap muted">Loading snapshot…</div>`;
  if (url === null) return html`<div class="snap muted">No snapshot for this event.</div>`;
  const r = size && Array.isArray(bbox) && bbox.length === 4 ? boxIn(bbox, size[0], size[1]) : null;
  return html`<div class="snap">
    <img src=${url} alt=${'snapshot of event ' + e.id} onLoad=${(ev) => setSize([ev.target.naturalWidth, ev.target.naturalHeight])} />
    ${r && html`<svg class="bbox" viewBox=${`0 0 ${size[0]} ${size[1]}`} preserveAspectRatio="none" aria-hidden="true">
      <rect x=${r[0]} y=${r[1]} width=${r[2]} height=${r[3]} /></svg>`}
  </div>`;
}

function Field({ k, v }) {
  let s = v;
  if (v !== null && typeof v === 'object') s = JSON.stringify(v);
  return html`<tr><th scope="row">${k}</th><td>${s === null || s === undefined ? '—' : String(s)}</td></tr>`;
}

function EventPage({ id }) {
  const [e, setE] = useState(null);
  const [err, setErr] = useState('');
  const load = useCallback(() => {
    api(`/events/${enc(id)}`).then(({ data }) => { setE(data); setErr(''); }, (x) => setErr(x.message));
  }, [id]);
  useEffect(load, [load]);
  if (err) return html`<section><h2>Event #${id}</h2><p class="error">${err}</p></section>`;
  if (!e) return html`<section><p class="muted">Loading…</p></section>`;
  const p = e.payload || {};
  const w = who(e);
  return html`
    <section class="detail">
      <h2>Event #${e.id} <${Badge} e=${e} /></h2>
      <div class="cols">
        <${Snapshot} e=${e} />
        <div>
          <table class="fields"><tbody>
            <${Field} k="type" v=${e.type} />
            <${Field} k="time" v=${`${fmtTime(e.ts_ms)} (ts_ms ${e.ts_ms})`} />
            <${Field} k="created_at" v=${e.created_at} />
            <${Field} k="camera" v=${e.frame_source_id} />
            ${Object.entries(p).map(([k, v]) => html`<${Field} k=${k} v=${v} />`)}
            ${e.correction && Object.entries(e.correction).map(([k, v]) => html`<${Field} k=${'correction.' + k} v=${v} />`)}
          </tbody></table>
          <p class="links">
            ${p.plate_text && html`<a href=${'#/plate/' + enc(w.kind === 'plate' ? w.text : p.plate_text)}>Plate history and watchlist</a>`}
            ${p.person_name && html`<a href=${'#/person/' + enc(w.kind === 'person' ? w.text : p.person_name)}>Person history and gallery</a>`}
            <a href=${'#/search?source=' + enc(e.frame_source_id)}>More from ${e.frame_source_id}</a>
          </p>
          ${e.type === 'face_match' && w.kind === 'person' && w.text !== 'unknown' && html`<${Enroll} e=${e} name=${w.text} />`}
          <${Correction} e=${e} onDone=${load} />
        </div>
      </div>
    </section>`;
}

// Enroll offers this event's snapshot to the person's face gallery, when
// the server manages galleries through the API (GET /people/{name}/faces
// answers).
function Enroll({ e, name }) {
  const [msg, setMsg] = useState('');
  const [available, setAvailable] = useState(false);
  useEffect(() => {
    api(`/people/${enc(name)}/faces`).then(() => setAvailable(true), () => setAvailable(false));
  }, [name]);
  if (!available) return null;
  const go = () => api(`/people/${enc(name)}/faces`, { method: 'POST', body: { from_event: e.id } })
    .then(() => setMsg(`Added to ${name}'s gallery.`), (x) => setMsg(x.message));
  return html`<p><button type="button" onClick=${go}>Enroll this snapshot into ${name}'s gallery</button> <span class="muted">${msg}</span></p>`;
}

function Correction({ e, onDone }) {
  const face = e.type === 'face_match';
  const [kind, setKind] = useState(face ? 'person' : 'plate');
  const [value, setValue] = useState('');
  const [note, setNote] = useState('');
  const [msg, setMsg] = useState({});
  const submit = async (ev) => {
    ev.preventDefault();
    const body = kind === 'fp' ? { false_positive: true } : kind === 'person' ? { person_name: value } : { plate_text: value };
    if (note) body.note = note;
    try {
      await api(`/events/${e.id}/corrections`, { method: 'POST', body });
      setMsg({ ok: 'Correction saved.' });
      setValue(''); setNote('');
      onDone();
    } catch (x) {
      setMsg({ error: x.message });
    }
  };
  return html`
    <form class="correction" onSubmit=${submit} aria-label="Correct this event">
      <fieldset><legend>Correct this event</legend>
        <label class="check"><input type="radio" name="kind" value=${face ? 'person' : 'plate'} checked=${kind !== 'fp'} onChange=${() => setKind(face ? 'person' : 'plate')} />
          ${face ? 'It is this person:' : 'The plate reads:'}</label>
        <input name="value" value=${value} onInput=${(x) => setValue(x.target.value)} disabled=${kind === 'fp'}
          required=${kind !== 'fp'} placeholder=${face ? 'person name' : 'plate text'} aria-label=${face ? 'person name' : 'plate text'} />
        <label class="check"><input type="radio" name="kind" value="fp" checked=${kind === 'fp'} onChange=${() => setKind('fp')} /> false positive</label>
        <input name="note" value=${note} onInput=${(x) => setNote(x.target.value)} placeholder="note (optional)" aria-label="note" />
        <button type="submit">Save correction</button>
        ${msg.ok && html`<span class="ok" role="status">${msg.ok}</span>`}
        ${msg.error && html`<span class="error" role="alert">${msg.error}</span>`}
      </fieldset>
    </form>`;
}

// ---------------------------------------------------------------- history, plates, people, watchlists

function History({ path }) {
  const [q, setQ] = useState(`limit=${PAGE}`);
  const [res, setRes] = useState(null);
  useEffect(() => { setQ(`limit=${PAGE}`); }, [path]);
  useEffect(() => {
    let live = true;
    api(`${path}?${q}`).then(({ data, headers }) => live && setRes({ events: data, next: nextQuery(headers) }),
      (e) => live && setRes({ error: e.status === 404 ? 'History is not available on this server.' : e.message }));
    return () => { live = false; };
  }, [path, q]);
  if (!res) return html`<p class="muted">Loading history…</p>`;
  if (res.error) return html`<p class="error">${res.error}</p>`;
  return html`<${EventTable} events=${res.events} />
    <nav class="pager">${res.next !== null && res.events.length > 0 && html`<button type="button" class="next" onClick=${() => setQ(res.next)}>Older</button>`}</nav>`;
}

// watchlistEntries reads GET /watchlists: {whitelist: [...], blacklist: [...]}.
function entries(lists, name) {
  const l = (lists && lists[name]) || [];
  return l.map((x) => (typeof x === 'string' ? { plate: x } : { ...x, plate: x.plate_text || x.plate }));
}

function useWatchlists() {
  const [lists, setLists] = useState(null);
  const [err, setErr] = useState('');
  const reload = useCallback(() => api('/watchlists').then(({ data }) => { setLists(data); setErr(''); },
    (e) => setErr(e.status === 404 ? 'Watchlists are not available on this server.' : e.message)), []);
  useEffect(() => { reload(); }, [reload]);
  return [lists, err, reload];
}

const putList = (list, plate, note) => api(`/watchlists/${list}/${enc(plate)}`, { method: 'PUT', body: { note } });
const delList = (list, plate) => api(`/watchlists/${list}/${enc(plate)}`, { method: 'DELETE' });

function PlatePage({ plate }) {
  const [lists, err, reload] = useWatchlists();
  const [note, setNote] = useState('');
  const [msg, setMsg] = useState('');
  const on = lists && ['blacklist', 'whitelist'].find((l) => entries(lists, l).some((x) => x.plate === plate));
  const act = (p) => p.then(() => { setMsg(''); reload(); }, (e) => setMsg(e.message));
  return html`<section>
    <h2>Plate ${plate} ${on && html`<span class=${'badge ' + on}>${on}</span>`}</h2>
    ${err ? html`<p class="error">${err}</p>` : lists && html`<div class="watch">
      ${on ? html`<button type="button" onClick=${() => act(delList(on, plate))}>Remove from ${on}</button>`
        : html`<input value=${note} onInput=${(e) => setNote(e.target.value)} placeholder="note" aria-label="note" />
          <button type="button" class="danger" onClick=${() => act(putList('blacklist', plate, note))}>Add to blacklist</button>
          <button type="button" onClick=${() => act(putList('whitelist', plate, note))}>Add to whitelist</button>`}
      ${msg && html`<span class="error">${msg}</span>`}</div>`}
    <h3>Reads</h3>
    <${History} path=${'/history/plates/' + enc(plate)} />
  </section>`;
}

function PersonPage({ name }) {
  return html`<section>
    <h2>${name}</h2>
    <h3>Gallery</h3>
    <${Gallery} name=${name} />
    <h3>Sightings</h3>
    <${History} path=${'/history/people/' + enc(name)} />
  </section>`;
}

function FaceImage({ name, f }) {
  const [url, setURL] = useState(null);
  const id = f.face_id ?? f.id;
  useEffect(() => {
    let u = null;
    const src = f.event_id ? `/events/${f.event_id}/snapshot.jpg` : `/people/${enc(name)}/faces/${enc(id)}`;
    api(src, { raw: true }).then(async (r) => { if (r.ok) { u = URL.createObjectURL(await r.blob()); setURL(u); } }).catch(() => {});
    return () => u && URL.revokeObjectURL(u);
  }, [name, id]);
  return url ? html`<img src=${url} alt=${'gallery image ' + id} />` : html`<span class="nothumb">☺</span>`;
}

function Gallery({ name }) {
  const [faces, setFaces] = useState(null);
  const [err, setErr] = useState('');
  const reload = useCallback(() => api(`/people/${enc(name)}/faces`).then(({ data }) => setFaces(Array.isArray(data) ? data : data.faces || []),
    (e) => setErr(e.status === 404 ? 'This server does not manage face galleries through its API (the gallery directory seeds the recogniser).' : e.message)), [name]);
  useEffect(() => { reload(); }, [reload]);
  if (err) return html`<p class="muted">${err}</p>`;
  if (!faces) return html`<p class="muted">Loading gallery…</p>`;
  if (!faces.length) return html`<p class="muted">No gallery images. Open one of this person's events to enroll its snapshot.</p>`;
  return html`<ul class="gallery">${faces.map((f) => {
    const id = f.face_id ?? f.id;
    return html`<li key=${id}><${FaceImage} name=${name} f=${f} />
      <button type="button" class="danger" onClick=${() => api(`/people/${enc(name)}/faces/${enc(id)}`, { method: 'DELETE' }).then(reload, (e) => setErr(e.message))}>Delete</button></li>`;
  })}</ul>`;
}

function PeoplePage() {
  const [people, setPeople] = useState(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    api('/people').then(({ data }) => setPeople(Array.isArray(data) ? data : data.people || []),
      (e) => setErr(e.status === 404 ? 'People are not available on this server.' : e.message));
  }, []);
  if (err) return html`<section><h2>People</h2><p class="error">${err}</p></section>`;
  if (!people) return html`<section><h2>People</h2><p class="muted">Loading…</p></section>`;
  return html`<section><h2>People</h2>
    <table class="grid"><thead><tr><th>Name</th><th>Sightings</th><th>Last seen</th><th>Cameras</th></tr></thead>
    <tbody>${people.map((p) => html`<tr><td><a href=${'#/person/' + enc(p.name || p.person_name)}>${p.name || p.person_name}</a></td>
      <td>${p.count}</td><td>${p.last_seen_ms ? fmtTime(p.last_seen_ms) : ''}</td><td>${(p.cameras || []).join(', ')}</td></tr>`)}</tbody></table>
  </section>`;
}

function WatchlistsPage() {
  const [lists, err, reload] = useWatchlists();
  const [form, setForm] = useState({ list: 'blacklist', plate: '', note: '' });
  const [msg, setMsg] = useState('');
  const add = (ev) => {
    ev.preventDefault();
    putList(form.list, form.plate.trim(), form.note).then(() => { setForm({ ...form, plate: '', note: '' }); setMsg(''); reload(); },
      (e) => setMsg(e.message));
  };
  return html`<section><h2>Watchlists</h2>
    <form class="filters" onSubmit=${add} aria-label="Add a plate to a watchlist">
      <label>List <select name="list" value=${form.list} onChange=${(e) => setForm({ ...form, list: e.target.value })}>
        <option value="blacklist">blacklist</option><option value="whitelist">whitelist</option></select></label>
      <label>Plate <input name="plate" required value=${form.plate} onInput=${(e) => setForm({ ...form, plate: e.target.value })} /></label>
      <label>Note <input name="note" value=${form.note} onInput=${(e) => setForm({ ...form, note: e.target.value })} /></label>
      <button type="submit">Add</button>
      ${msg && html`<span class="error" role="alert">${msg}</span>`}
    </form>
    ${err && html`<p class="error">${err}</p>`}
    ${lists && ['blacklist', 'whitelist'].map((l) => html`
      <h3><span class=${'badge ' + l}>${l}</span></h3>
      ${entries(lists, l).length === 0 ? html`<p class="muted">Empty.</p>` : html`
      <table class=${'grid list-' + l}><thead><tr><th>Plate</th><th>Note</th><th></th></tr></thead>
      <tbody>${entries(lists, l).map((x) => html`<tr data-plate=${x.plate}>
        <td><a href=${'#/plate/' + enc(x.plate)}>${x.plate}</a></td><td>${x.note || ''}</td>
        <td><button type="button" onClick=${() => delList(l, x.plate).then(reload, (e) => setMsg(e.message))}>Remove</button></td></tr>`)}
      </tbody></table>`}`)}
  </section>`;
}

// ---------------------------------------------------------------- shell

function TokenForm({ message }) {
  const [v, setV] = useState('');
  const submit = (ev) => {
    ev.preventDefault();
    S.token = v.trim();
    sessionStorage.setItem(TOKEN_KEY, S.token);
    onAuth('probe');
  };
  return html`<main class="login">
    <form onSubmit=${submit} class="token-form" aria-label="Sign in">
      <h1>SecureVision</h1>
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required autofocus value=${v} onInput=${(e) => setV(e.target.value)} />
      <button type="submit">Open dashboard</button>
      ${message && html`<p class="error" role="alert">${message}</p>`}
      <p class="muted">The token is kept for this browser tab only.</p>
    </form></main>`;
}

function applyTheme(t) {
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}

function ThemeToggle() {
  const [t, setT] = useState(localStorage.getItem(THEME_KEY) || 'auto');
  useEffect(() => {
    applyTheme(t);
    localStorage.setItem(THEME_KEY, t);
    dispatchEvent(new Event('sv-theme'));
  }, [t]);
  const next = { auto: 'dark', dark: 'light', light: 'auto' }[t] || 'auto';
  return html`<button type="button" class="theme" onClick=${() => setT(next)} title="Theme: auto follows the system">theme: ${t}</button>`;
}

function Shell() {
  const r = useRoute();
  const [a, b] = r.parts;
  let page;
  if (!a) page = html`<${Live} />`;
  else if (a === 'search') page = html`<${Search} query=${r.query} />`;
  else if (a === 'event' && b) page = html`<${EventPage} id=${b} key=${b} />`;
  else if (a === 'plate' && b) page = html`<${PlatePage} plate=${b} key=${b} />`;
  else if (a === 'person' && b) page = html`<${PersonPage} name=${b} key=${b} />`;
  else if (a === 'people') page = html`<${PeoplePage} />`;
  else if (a === 'watchlists') page = html`<${WatchlistsPage} />`;
  else page = html`<section><p>Nothing here. <a href="#/">Back to the live view</a>.</p></section>`;
  const nav = [['#/', 'Live', !a], ['#/search', 'Search', a === 'search'], ['#/people', 'People', a === 'people' || a === 'person'],
    ['#/watchlists', 'Watchlists', a === 'watchlists' || a === 'plate']];
  const logout = () => { S.token = ''; sessionStorage.removeItem(TOKEN_KEY); onAuth('probe'); };
  return html`
    <header class="top">
      <a class="brand" href="#/">SecureVision</a>
      <nav aria-label="Main">${nav.map(([h, t, on]) => html`<a href=${h} aria-current=${on ? 'page' : undefined}>${t}</a>`)}</nav>
      <span class="spacer"></span>
      <${ThemeToggle} />
      ${S.token && html`<button type="button" onClick=${logout}>Sign out</button>`}
    </header>
    <main id="main">${page}</main>`;
}

function App() {
  const [state, setState] = useState({ auth: 'probe', message: '' });
  useEffect(() => {
    onAuth = (a) => setState((s) => (a === 'need' && s.auth === 'probe' && !S.token ? { auth: 'need', message: '' }
      : { auth: a, message: a === 'need' ? 'That token was not accepted.' : '' }));
  }, []);
  useEffect(() => {
    if (state.auth !== 'probe') return;
    // A token-less probe that gets 401 shows the form without an error.
    fetch('/events?limit=1', { headers: authHeaders(), cache: 'no-store', credentials: 'omit' }).then((r) => {
      if (r.status === 401) {
        const had = !!S.token;
        S.token = '';
        sessionStorage.removeItem(TOKEN_KEY);
        setState({ auth: 'need', message: had ? 'That token was not accepted.' : '' });
      } else {
        setState({ auth: 'ok', message: '' });
      }
    }, (e) => setState({ auth: 'need', message: 'The server cannot be reached: ' + e.message }));
  }, [state.auth]);
  if (state.auth === 'probe') return html`<p class="boot">Connecting…</p>`;
  if (state.auth === 'need') return html`<${TokenForm} message=${state.message} />`;
  return html`<${Shell} />`;
}

applyTheme(localStorage.getItem(THEME_KEY));
render(html`<${App} />`, document.getElementById('app'));
