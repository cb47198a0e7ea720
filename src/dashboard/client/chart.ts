// Charts: one line per worker over the last historyMs, drawn on canvas (no library).
import type { ChartPoint } from '@server/dashboard/history.js';
import { colorOf, swatch } from './colors.js';
import { byId, make } from './dom.js';
import { state } from './state.js';

type WorkerPoint = ChartPoint['workers'][string];

interface Axis {
  /** Values are divided by this before scaling and labelling (1024² to draw bytes in MB). */
  unit: number;
  /** The top of the axis is at least this, in units. */
  minimum: number;
  /** Counts: the top is a multiple of 4, so every gridline is a whole number. */
  whole: boolean;
  label: (value: number) => string;
}

function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 2.5, 5, 10].find((step) => step * magnitude >= value) ?? 10) * magnitude;
}

function workerIds(points: ChartPoint[]): Set<string> {
  const ids = new Set<string>();
  for (const point of points) for (const id of Object.keys(point.workers)) ids.add(id);
  return ids;
}

/** `pick` gives null where the value is not known: a gap in that worker's line. */
function drawChart(canvas: HTMLCanvasElement, points: ChartPoint[], historyMs: number, pick: (worker: WorkerPoint) => number | null, axis: Axis): void {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0) return;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext('2d');
  if (!context) return;  // No 2D canvas in this browser (or it was lost): the legend still shows.
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
  const end = points.at(-1)?.time ?? Date.now();
  const span = Math.min(historyMs, Math.max(60_000, end - (points[0]?.time ?? end)));
  const start = end - span;
  let highest = axis.minimum;
  for (const point of points) for (const worker of Object.values(point.workers)) highest = Math.max(highest, (pick(worker) ?? 0) / axis.unit);
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

  context.lineWidth = 1.75;
  context.lineJoin = 'round';
  for (const id of workerIds(points)) {
    context.strokeStyle = colorOf(id);
    context.beginPath();
    let drawing = false;
    for (const point of points) {
      const worker = point.workers[id];
      const value = worker ? pick(worker) : null;
      if (value === null) {
        drawing = false;  // The worker was gone (or not measured): a gap, not a line to zero.
        continue;
      }
      const [px, py] = [x(point.time), y(value / axis.unit)];
      if (drawing) context.lineTo(px, py);
      else context.moveTo(px, py);
      drawing = true;
    }
    context.stroke();
  }
}

/** Draws the charts and their legend from the page's points. */
export function renderCharts(): void {
  const { points, historyMs } = state;
  drawChart(byId<HTMLCanvasElement>('chart-rss'), points, historyMs, (worker) => worker.rss, { unit: 1024 ** 2, minimum: 64, whole: false, label: (value) => `${value} MB` });
  drawChart(byId<HTMLCanvasElement>('chart-cpu'), points, historyMs, (worker) => worker.cpuPercent ?? null, { unit: 1, minimum: 10, whole: false, label: (value) => `${value}%` });
  drawChart(byId<HTMLCanvasElement>('chart-in-flight'), points, historyMs, (worker) => worker.inFlight, { unit: 1, minimum: 4, whole: true, label: String });
  const ids = workerIds(points);
  for (const worker of state.status?.workers ?? []) ids.add(worker.id);
  byId('legend').replaceChildren(...[...ids].map((id) => make('span', {}, swatch(id), id)));
}
