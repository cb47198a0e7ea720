// The dashboard page's script, served as compiled at /app.js. The `import type`s vanish from the output, so it
// loads nothing else; it shares the feed's message types with the server at compile time.
import type { ControlResult } from '../../control/types.js';
import type { LifecycleEvent } from '../../primary/events.js';
import type { ChartPoint, Rates } from '../history.js';
import type { FeedMessage, LiveStatus, WorkerView } from '../messages.js';

const tokenKey = 'graycluster.token';
const maxEvents = 300;
const palette = ['#3b5bdb', '#e8590c', '#2b8a3e', '#ae3ec9', '#c92a2a', '#1098ad', '#f08c00', '#5c940d', '#d6336c', '#495057'];

const state = {
  status: undefined as LiveStatus | undefined,
  rates: undefined as Rates | undefined,
  events: [] as LifecycleEvent[],
  points: [] as ChartPoint[],
  historyMs: 5 * 60_000,
};

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

// ---- The token: taken once from ?token=…, then kept in this tab's sessionStorage and out of the address bar.

function takeToken(): string | null {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given !== null) {
    if (given !== '') sessionStorage.setItem(tokenKey, given);
    url.searchParams.delete('token');
    history.replaceState(null, '', `${url.pathname}${url.search}${url.hash}`);
  }
  return sessionStorage.getItem(tokenKey);
}

let token = takeToken();

function base64url(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// ---- Formatting.

function megabytes(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GB` : `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

function duration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor(seconds / 60) % 60}m`;
  return `${Math.floor(seconds / 86_400)}d ${Math.floor(seconds / 3600) % 24}h`;
}

function milliseconds(ms: number | null): string {
  if (ms === null) return '–';
  if (ms >= 10_000) return '≥10 s';
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function clockTime(time: number): string {
  const date = new Date(time);
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
}

function percent(share: number | null | undefined): string {
  if (share === null || share === undefined) return '–';
  return `${(share * 100).toFixed(share > 0 && share < 0.1 ? 1 : 0)}%`;
}

function perSecond(rate: number | undefined): string {
  if (rate === undefined) return '–';
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
}

const colors = new Map<string, string>();
function colorOf(workerId: string): string {
  if (!colors.has(workerId)) colors.set(workerId, palette[colors.size % palette.length]!);
  return colors.get(workerId)!;
}

// ---- Small DOM helpers: rows are kept per key, and only their cells' text changes, so inputs keep focus.

function make<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function pill(text: string, kind = text): HTMLSpanElement {
  const node = make('span', { className: 'pill', textContent: text });
  node.dataset.state = kind;
  return node;
}

function setCell(row: HTMLTableRowElement, field: string, value: string | Array<Node | string>): void {
  const cell = row.querySelector<HTMLElement>(`[data-field="${field}"]`)!;
  if (typeof value === 'string') {
    if (cell.textContent !== value) cell.textContent = value;
  } else {
    cell.replaceChildren(...value);
  }
}

function syncRows(tbody: HTMLTableSectionElement, keys: string[], create: (key: string) => HTMLTableRowElement): Map<string, HTMLTableRowElement> {
  const rows = new Map<string, HTMLTableRowElement>();
  for (const row of [...tbody.rows]) {
    if (keys.includes(row.dataset.key!)) rows.set(row.dataset.key!, row);
    else row.remove();
  }
  // Move a row only when it is out of order: moving a node takes the focus (and a half-typed weight) from it.
  let previous: HTMLTableRowElement | undefined;
  for (const key of keys) {
    const row = rows.get(key) ?? create(key);
    rows.set(key, row);
    const expected = previous ? previous.nextElementSibling : tbody.firstElementChild;
    if (row !== expected) {
      if (previous) previous.after(row);
      else tbody.prepend(row);
    }
    previous = row;
  }
  return rows;
}

/** A row with one cell per field; each cell is labelled with its column's heading, for the narrow layout. */
function emptyRow(table: HTMLTableElement, key: string, fields: string[]): HTMLTableRowElement {
  const headings = [...table.tHead!.rows[0]!.cells].map((cell) => cell.textContent ?? '');
  const row = make('tr');
  row.dataset.key = key;
  fields.forEach((field, index) => {
    const cell = make('td');
    cell.dataset.field = field;
    cell.dataset.label = headings[index] ?? '';
    row.append(cell);
  });
  return row;
}

// ---- Rendering.

function renderSummary(status: LiveStatus): void {
  const workers = status.workers.length;
  const ready = status.workers.filter((worker) => worker.state === 'ready').length;
  byId('summary').textContent = `pid ${status.pid} · up ${duration(status.uptimeMs)} · serving ${status.server.host}:${status.server.port} · ${ready}/${workers} workers ready`;
  const banner = byId('config-error');
  banner.hidden = status.configError === null;
  banner.textContent = status.configError === null ? '' : `The config file was rejected; still running the last good config.\n${status.configError}`;
  byId('routing').textContent = JSON.stringify(status.routing, null, 2);
  const refused = Object.entries(status.router.refused).map(([code, count]) => `${code === '0' ? 'closed' : code}: ${count}`).join(', ');
  byId('router-counters').textContent = `Router: ${status.router.handedOff} handed off, ${status.router.fallbacks} fallbacks, refused ${refused || 'none'} (${status.router.pendingShed ?? 0} shed, ${status.router.pendingSourceRefused ?? 0} over the per-address limit), ${status.router.pending} pending.`;
}

const versionFields = ['name', 'state', 'ready', 'weight', 'configuredShare', 'share', 'rate', 'actions'];

function renderVersions(status: LiveStatus, rates: Rates | undefined): void {
  const names = Object.keys(status.versions);
  const table = byId<HTMLTableElement>('versions');
  const rows = syncRows(table.tBodies[0]!, names, (name) => {
    const row = emptyRow(table, name, versionFields);
    const input = make('input', { type: 'number', min: '0', max: '1000000', step: '1', value: '' });
    input.dataset.weight = name;
    input.setAttribute('aria-label', `weight of ${name}`);
    input.addEventListener('input', () => {
      input.dataset.dirty = 'true';
      byId<HTMLButtonElement>('apply-weights').disabled = false;
    });
    row.querySelector('[data-field="weight"]')!.append(input);
    const promote = make('button', { type: 'button', textContent: 'Promote', title: `Send all traffic to ${name}` });
    promote.addEventListener('click', () => {
      if (confirm(`Promote ${name}: make it the default and give it all weighted traffic?`)) void control('/api/promote', { version: name });
    });
    const reload = make('button', { type: 'button', textContent: 'Reload', title: `Replace ${name}'s workers one by one` });
    reload.addEventListener('click', () => {
      if (confirm(`Reload ${name}: start fresh workers and drain the old ones?`)) void control('/api/reload', { version: name });
    });
    row.querySelector('[data-field="actions"]')!.append(promote, ' ', reload);
    return row;
  });
  const weights = names.map((name) => status.versions[name]!.weight ?? 0);
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  names.forEach((name, index) => {
    const version = status.versions[name]!;
    const row = rows.get(name)!;
    setCell(row, 'name', name === status.routing.default ? `${name} (default)` : name);
    setCell(row, 'state', [pill(version.state)]);
    setCell(row, 'ready', `${version.ready}/${version.configured}`);
    const input = row.querySelector<HTMLInputElement>('input[data-weight]')!;
    if (input.dataset.dirty !== 'true' && document.activeElement !== input) input.value = String(version.weight ?? 0);
    setCell(row, 'configuredShare', total > 0 ? percent(weights[index]! / total) : 'rules/default');
    setCell(row, 'share', percent(rates?.versions[name]?.share));
    setCell(row, 'rate', perSecond(rates?.versions[name]?.requestsPerSecond));
  });
}

const workerFields = ['id', 'version', 'pid', 'state', 'uptime', 'restarts', 'rss', 'heapUsed', 'inFlight', 'rate', 'p50', 'p99', 'loopDelay', 'actions'];

function renderWorkers(workers: WorkerView[], rates: Rates | undefined): void {
  const table = byId<HTMLTableElement>('workers');
  const rows = syncRows(table.tBodies[0]!, workers.map((worker) => worker.id), (id) => {
    const row = emptyRow(table, id, workerFields);
    row.dataset.worker = id;
    const restart = make('button', { type: 'button', textContent: 'Restart' });
    restart.addEventListener('click', () => {
      if (confirm(`Restart worker ${id}?`)) void control(`/api/workers/${encodeURIComponent(id)}/restart`, {});
    });
    row.querySelector('[data-field="actions"]')!.append(restart);
    return row;
  });
  for (const worker of workers) {
    const row = rows.get(worker.id)!;
    const rate = rates?.workers[worker.id];
    const swatch = make('span', { className: 'swatch' });
    swatch.style.background = colorOf(worker.id);
    setCell(row, 'id', [swatch, worker.id]);
    setCell(row, 'version', worker.version);
    setCell(row, 'pid', worker.pid === null ? '–' : String(worker.pid));
    setCell(row, 'state', worker.unresponsive ? [pill(worker.state), ' ', pill('unresponsive')] : [pill(worker.state)]);
    setCell(row, 'uptime', worker.pid === null ? '–' : duration(worker.uptimeMs));
    setCell(row, 'restarts', String(worker.restarts));
    setCell(row, 'rss', megabytes(worker.rss));
    setCell(row, 'heapUsed', megabytes(worker.heapUsed));
    setCell(row, 'inFlight', String(worker.inFlight));
    setCell(row, 'rate', perSecond(rate?.requestsPerSecond));
    setCell(row, 'p50', milliseconds(rate?.p50Ms ?? null));
    setCell(row, 'p99', milliseconds(rate?.p99Ms ?? null));
    setCell(row, 'loopDelay', `${worker.eventLoopDelayMs.toFixed(1)} ms`);
  }
}

function eventItem(event: LifecycleEvent): HTMLLIElement {
  const where = [event.version, event.workerId && `worker ${event.workerId}`, event.pid && `pid ${event.pid}`].filter(Boolean).join(' ');
  const item = make('li', {},
    make('time', { dateTime: new Date(event.time).toISOString(), textContent: clockTime(event.time) }),
    make('span', { className: 'type', textContent: event.type }),
    make('span', { className: 'where-what', textContent: `${where ? `[${where}] ` : ''}${event.message}` }));
  item.dataset.type = event.type;
  return item;
}

function renderEvents(): void {
  byId('events').replaceChildren(...state.events.toReversed().map(eventItem));
}

function addEvent(event: LifecycleEvent): void {
  state.events.push(event);
  const list = byId('events');
  list.prepend(eventItem(event));
  while (state.events.length > maxEvents) {
    state.events.shift();
    list.lastElementChild?.remove();
  }
}

// ---- Charts: one line per worker over the last historyMs, drawn on canvas (no library).

function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 2.5, 5, 10].find((step) => step * magnitude >= value) ?? 10) * magnitude;
}

interface Axis {
  /** Values are divided by this before scaling and labelling (1024² to draw bytes in MB). */
  unit: number;
  /** The top of the axis is at least this, in units. */
  minimum: number;
  /** Counts: the top is a multiple of 4, so every gridline is a whole number. */
  whole: boolean;
  label: (value: number) => string;
}

function drawChart(canvas: HTMLCanvasElement, pick: (worker: ChartPoint['workers'][string]) => number, axis: Axis): void {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0) return;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext('2d')!;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  const styles = getComputedStyle(document.documentElement);
  const muted = styles.getPropertyValue('--muted').trim();
  const line = styles.getPropertyValue('--line').trim();
  const left = 64;
  const right = 8;
  const top = 8;
  const bottom = 20;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  // The whole history once there is that much; until then at least a minute, so a new page is readable.
  const end = state.points.at(-1)?.time ?? Date.now();
  const span = Math.min(state.historyMs, Math.max(60_000, end - (state.points[0]?.time ?? end)));
  const start = end - span;
  let highest = axis.minimum;
  for (const point of state.points) for (const worker of Object.values(point.workers)) highest = Math.max(highest, pick(worker) / axis.unit);
  const ceiling = axis.whole ? Math.ceil(niceCeiling(highest) / 4) * 4 : niceCeiling(highest);
  const x = (time: number) => left + ((time - start) / span) * plotWidth;
  const y = (value: number) => top + plotHeight - (value / ceiling) * plotHeight;

  context.font = '11px system-ui, sans-serif';
  context.fillStyle = muted;
  context.strokeStyle = line;
  context.lineWidth = 1;
  context.textAlign = 'right';
  context.textBaseline = 'middle';
  for (let step = 0; step <= 4; step++) {
    const value = (ceiling * step) / 4;
    context.beginPath();
    context.moveTo(left, Math.round(y(value)) + 0.5);
    context.lineTo(width - right, Math.round(y(value)) + 0.5);
    context.stroke();
    context.fillText(axis.label(value), left - 6, y(value));
  }
  context.textAlign = 'center';
  context.textBaseline = 'top';
  const tick = [10_000, 30_000, 60_000, 120_000, 300_000, 600_000].find((step) => span / step <= 6) ?? 900_000;
  for (let ago = 0; ago <= span; ago += tick) {
    context.textAlign = ago === 0 ? 'right' : 'center';
    context.fillText(ago === 0 ? 'now' : tick < 60_000 ? `−${ago / 1000}s` : `−${ago / 60_000}m`, x(end - ago), height - bottom + 4);
  }

  const ids = new Set<string>();
  for (const point of state.points) for (const id of Object.keys(point.workers)) ids.add(id);
  context.lineWidth = 1.75;
  context.lineJoin = 'round';
  for (const id of ids) {
    context.strokeStyle = colorOf(id);
    context.beginPath();
    let drawing = false;
    for (const point of state.points) {
      const worker = point.workers[id];
      if (!worker) {
        drawing = false;  // The worker was gone: a gap, not a line to zero.
        continue;
      }
      const [px, py] = [x(point.time), y(pick(worker) / axis.unit)];
      if (drawing) context.lineTo(px, py);
      else context.moveTo(px, py);
      drawing = true;
    }
    context.stroke();
  }
}

function renderCharts(): void {
  drawChart(byId<HTMLCanvasElement>('chart-rss'), (worker) => worker.rss, { unit: 1024 ** 2, minimum: 64, whole: false, label: (value) => `${value} MB` });
  drawChart(byId<HTMLCanvasElement>('chart-in-flight'), (worker) => worker.inFlight, { unit: 1, minimum: 4, whole: true, label: String });
  const ids = new Set<string>();
  for (const point of state.points) for (const id of Object.keys(point.workers)) ids.add(id);
  for (const worker of state.status?.workers ?? []) ids.add(worker.id);
  byId('legend').replaceChildren(...[...ids].map((id) => {
    const swatch = make('span', { className: 'swatch' });
    swatch.style.background = colorOf(id);
    return make('span', {}, swatch, id);
  }));
}

function render(): void {
  if (!state.status) return;
  renderSummary(state.status);
  renderVersions(state.status, state.rates);
  renderWorkers(state.status.workers, state.rates);
}

// ---- The live feed.

function setConnection(text: string, kind: string): void {
  const node = byId('connection');
  node.textContent = text;
  node.dataset.state = kind;
}

function onMessage(message: FeedMessage): void {
  switch (message.type) {
    case 'snapshot':
      state.status = message.status;
      state.rates = message.rates;
      state.events = message.events.slice(-maxEvents);
      state.points = message.history;
      state.historyMs = message.historyMs;
      renderEvents();
      render();
      renderCharts();
      return;
    case 'update':
      state.status = message.status;
      state.rates = message.rates;
      render();
      return;
    case 'sample':
      state.points.push(message.point);
      while (state.points.length > 0 && state.points[0]!.time < message.point.time - state.historyMs) state.points.shift();
      renderCharts();
      return;
    case 'event':
      addEvent(message.event);
  }
}

let retryMs = 500;

/** After the feed closed: is the token still good? (A browser does not say why a WebSocket was refused.) */
async function tokenRejected(): Promise<boolean> {
  try {
    const response = await fetch('/api/status', { headers: { authorization: `Bearer ${token}` } });
    return response.status === 401;
  } catch {
    return false;  // graycluster is down or restarting: keep trying.
  }
}

function connect(): void {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const socket = new WebSocket(url, ['graycluster', `graycluster.token.${base64url(token ?? '')}`]);
  socket.addEventListener('open', () => {
    retryMs = 500;
    setConnection('live', 'live');
  });
  socket.addEventListener('message', (message) => onMessage(JSON.parse(message.data as string) as FeedMessage));
  socket.addEventListener('close', async () => {
    setConnection('reconnecting…', 'reconnecting');
    if (await tokenRejected()) {
      showLogin('That token was refused.');
      return;
    }
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10_000);
  });
}

// ---- Controls: POST to the API with the token; the answer is shown next to the buttons.

async function control(path: string, body: object): Promise<boolean> {
  const output = byId<HTMLOutputElement>('control-result');
  output.dataset.ok = '';
  output.textContent = '…';
  let ok = false;
  try {
    const response = await fetch(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    let result: ControlResult;
    try {
      result = JSON.parse(text) as ControlResult;
    } catch {
      result = { ok: false, status: response.status, error: text.trim() };
    }
    ok = result.ok;
    output.textContent = result.ok ? (result.changes.length > 0 ? result.changes.join('; ') : 'nothing to change') : `${result.status}: ${result.error}`;
  } catch (error) {
    output.textContent = `cannot reach graycluster: ${(error as Error).message}`;
  }
  output.dataset.ok = String(ok);
  return ok;
}

function wireControls(): void {
  const apply = byId<HTMLButtonElement>('apply-weights');
  apply.addEventListener('click', async () => {
    const inputs = [...document.querySelectorAll<HTMLInputElement>('input[data-weight]')];
    const weights = Object.fromEntries(inputs.map((input) => [input.dataset.weight!, input.valueAsNumber]));
    if (await control('/api/weights', { weights })) {
      for (const input of inputs) delete input.dataset.dirty;
      apply.disabled = true;
    }
  });
  byId('rollback').addEventListener('click', () => {
    if (confirm('Roll back: send all traffic to the default version?')) void control('/api/rollback', {});
  });
  byId('reload-all').addEventListener('click', () => {
    if (confirm('Reload every version: start fresh workers and drain the old ones?')) void control('/api/reload', {});
  });
}

// ---- Start.

function showLogin(error = ''): void {
  sessionStorage.removeItem(tokenKey);
  token = null;
  byId('dashboard').hidden = true;
  byId('login').hidden = false;
  byId('login-error').textContent = error;
  setConnection('no token', 'offline');
}

function open(): void {
  byId('login').hidden = true;
  byId('dashboard').hidden = false;
  connect();
}

wireControls();
byId('login').addEventListener('submit', (event) => {
  event.preventDefault();
  token = byId<HTMLInputElement>('token-input').value.trim();
  sessionStorage.setItem(tokenKey, token);
  open();
});
let resizeFrame = 0;
window.addEventListener('resize', () => {
  cancelAnimationFrame(resizeFrame);
  resizeFrame = requestAnimationFrame(renderCharts);
});
if (token) open();
else showLogin();
