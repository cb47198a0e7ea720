// The header summary, the routing panel and the versions and workers tables, redrawn on every update.
import type { Rates } from '@server/dashboard/history.js';
import type { LiveStatus, WorkerView } from '@server/dashboard/messages.js';
import { swatch } from './colors.js';
import { versionButtons, weightInput, workerButtons } from './controls.js';
import { byId, cellOf, emptyRow, pill, setCell, syncRows } from './dom.js';
import { cpuPercent, duration, megabytes, milliseconds, percent, perSecond } from './format.js';
import { logsButton } from './logs.js';

function renderSummary(status: LiveStatus): void {
  const workers = status.workers.length;
  const ready = status.workers.filter((worker) => worker.state === 'ready').length;
  byId('summary').textContent = `pid ${status.pid} · up ${duration(status.uptimeMs)} · serving ${status.server.host}:${status.server.port} · ${ready}/${workers} workers ready`;
  const banner = byId('config-error');
  banner.hidden = status.configError === null;
  banner.textContent = status.configError === null ? '' : `The config file was rejected; still running the last good config.\n${status.configError}`;
  byId('routing').textContent = JSON.stringify(status.routing, null, 2);
  const refused = Object.entries(status.router.refused).map(([code, count]) => `${code === '0' ? 'closed' : code}: ${count}`).join(', ');
  byId('router-counters').textContent = `Router: ${status.router.handedOff} handed off, ${status.router.fallbacks} fallbacks, refused ${refused || 'none'} (${status.router.pendingShed ?? 0} shed, ${status.router.pendingSourceRefused ?? 0} over the per-address limit), ${status.router.pending} pending, ${status.router.sharedPlacements ?? 0} placed for ${status.router.sharedPeers ?? 0} pooling peers${status.router.sharedLeading ? ` (${status.router.sharedLeading} leads)` : ''}.`;
}

const versionFields = ['name', 'state', 'ready', 'port', 'weight', 'configuredShare', 'share', 'rate', 'actions'];

function renderVersions(status: LiveStatus, rates: Rates | undefined): void {
  const versions = Object.entries(status.versions);
  const table = byId<HTMLTableElement>('versions');
  const rows = syncRows(table, versions, ([name]) => name, (name) => {
    const row = emptyRow(table, name, versionFields);
    cellOf(row, 'weight').append(weightInput(name));
    cellOf(row, 'actions').append(...versionButtons(name));
    return row;
  });
  const total = versions.reduce((sum, [, version]) => sum + (version.weight ?? 0), 0);
  for (const [[name, version], row] of rows) {
    setCell(row, 'name', name === status.routing.default ? `${name} (default)` : name);
    setCell(row, 'state', [pill(version.state)]);
    setCell(row, 'ready', `${version.ready}/${version.configured}`);
    // A port its ready workers cannot all listen on (another program holds it) says so.
    const short = version.port !== null && version.ready > 0 && version.portListening < version.ready;
    setCell(row, 'port', version.port === null ? '–' : short ? `${version.port} (${version.portListening}/${version.ready} listening${version.portError ? `: ${version.portError}` : ''})` : String(version.port));
    const input = row.querySelector('input[data-weight]');
    if (input instanceof HTMLInputElement && input.dataset.dirty !== 'true' && document.activeElement !== input) input.value = String(version.weight ?? 0);
    setCell(row, 'configuredShare', total > 0 ? percent((version.weight ?? 0) / total) : 'rules/default');
    setCell(row, 'share', percent(rates?.versions[name]?.share));
    setCell(row, 'rate', perSecond(rates?.versions[name]?.requestsPerSecond));
  }
}

const workerFields = ['id', 'version', 'pid', 'cpu', 'state', 'uptime', 'restarts', 'rss', 'heapUsed', 'inFlight', 'rate', 'p50', 'p99', 'loopDelay', 'logDrops', 'actions'];

function renderWorkers(workers: WorkerView[], rates: Rates | undefined): void {
  const table = byId<HTMLTableElement>('workers');
  const rows = syncRows(table, workers, (worker) => worker.id, (id) => {
    const row = emptyRow(table, id, workerFields);
    row.dataset.worker = id;
    cellOf(row, 'actions').append(logsButton(id), ' ', ...workerButtons(id));
    return row;
  });
  for (const [worker, row] of rows) {
    const rate = rates?.workers[worker.id];
    setCell(row, 'id', [swatch(worker.id), worker.id]);
    setCell(row, 'version', worker.version);
    setCell(row, 'pid', worker.pid === null ? '–' : String(worker.pid));
    setCell(row, 'cpu', cpuPercent(worker.cpuPercent));
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
    setCell(row, 'logDrops', String(worker.logLinesDropped));
  }
}

/** Everything but the charts and the event log, from the latest status. */
export function renderTables(status: LiveStatus, rates: Rates | undefined): void {
  renderSummary(status);
  renderVersions(status, rates);
  renderWorkers(status.workers, rates);
}
