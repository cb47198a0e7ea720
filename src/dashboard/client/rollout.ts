// The rollout panel: the steps as a progress bar, time in step, each gate's canary-vs-baseline figures with its
// verdict, and pause / resume / abort (POSTs to /api/rollout/…, the same edits as `graycluster canary`).
import type { RolloutReport } from '@server/rollout/report.js';
import { control } from './controls.js';
import { byId, emptyRow, make, pill, setCell, syncRows } from './dom.js';
import { duration, milliseconds, percent } from './format.js';

const gateNames: Record<string, string> = { errors: '5xx rate', latency: 'Latency', restarts: 'Restarts', memory: 'Memory', eventLoop: 'Event loop' };

/** The label of each named figure, and how its value reads: `errorRate 0.004` → `5xx 0.4%`. */
const figureFormats: Record<string, { label: string; value: (value: number) => string }> = {
  errorRate: { label: '5xx', value: percent },
  p50Ms: { label: 'p50', value: milliseconds },
  p99Ms: { label: 'p99', value: milliseconds },
  maxDelayMs: { label: 'delay', value: milliseconds },
  maxRssMB: { label: 'rss', value: (value) => `${value.toFixed(0)} MB` },
};

/** One figure as it reads; one not known yet (no requests in the window) keeps its label, with a dash. */
function figure(key: string, value: number | null): string {
  if (key === 'growthMBPerMinute') return value === null ? 'growth not judged yet' : `+${value.toFixed(1)} MB/min`;
  const format = figureFormats[key];
  if (format) return `${format.label} ${value === null ? '–' : format.value(value)}`;
  return value === null ? `${key} –` : `${value.toLocaleString('en-US')} ${key}`;
}

const figures = (values: Record<string, number | null>) => Object.entries(values).map(([key, value]) => figure(key, value)).join(', ');

function renderSteps(rollout: RolloutReport): void {
  const list = byId('rollout-steps');
  const finished = rollout.state === 'promoted' ? rollout.steps.length : -1;
  const items = rollout.steps.map((weight, index) => {
    const item = make('li', { textContent: `${weight} %` });
    const stopped = (rollout.state === 'rolled_back' || rollout.state === 'aborted') && index === rollout.step;
    item.dataset.state = index < rollout.step || index < finished ? 'done' : stopped ? 'stopped' : index === rollout.step && finished < 0 ? 'current' : 'todo';
    item.dataset.step = String(index);
    return item;
  });
  // Replaced only when something changed, so the bar does not flicker on every update.
  const signature = items.map((item) => `${item.textContent}:${item.dataset.state}`).join(' ');
  if (list.dataset.signature !== signature) {
    list.dataset.signature = signature;
    list.replaceChildren(...items);
  }
}

function renderGates(rollout: RolloutReport): void {
  const table = byId<HTMLTableElement>('rollout-gates');
  byId('rollout-canary').textContent = rollout.version;
  byId('rollout-baseline').textContent = rollout.baseline;
  const rows = syncRows(table, rollout.gates, (gate) => gate.gate, (key) => emptyRow(table, key, ['gate', 'verdict', 'canary', 'baseline']));
  for (const [gate, row] of rows) {
    row.title = gate.reason;
    setCell(row, 'gate', gateNames[gate.gate] ?? gate.gate);
    if (row.dataset.verdict !== gate.verdict) {
      row.dataset.verdict = gate.verdict;
      setCell(row, 'verdict', [pill(gate.verdict)]);
    }
    setCell(row, 'canary', figures(gate.canary));
    setCell(row, 'baseline', figures(gate.baseline));
  }
}

/** Shows the rollout of the latest status, or hides the panel when the config file has none. */
export function renderRollout(rollout: RolloutReport | null): void {
  const section = byId('rollout-section');
  section.hidden = rollout === null;
  if (!rollout) return;
  byId('rollout-title').textContent = `of ${rollout.version} against ${rollout.baseline}`;
  const state = byId('rollout-state');
  state.textContent = rollout.state.replace('_', ' ');
  state.dataset.state = rollout.state;
  section.dataset.state = rollout.state;
  section.dataset.step = String(rollout.step);
  renderSteps(rollout);
  const live = rollout.state === 'running' || rollout.state === 'paused';
  const progress = byId<HTMLProgressElement>('rollout-progress');
  progress.hidden = !live || rollout.timeInStepMs === null;
  progress.value = Math.min(1, (rollout.timeInStepMs ?? 0) / rollout.stepMs);
  byId('rollout-time').textContent = live && rollout.timeInStepMs !== null
    ? `step ${rollout.step + 1} of ${rollout.steps.length}: ${duration(rollout.timeInStepMs)} in step (at least ${duration(rollout.stepMs)}), ${rollout.weight} % of users on ${rollout.version}`
    : `${rollout.weight} % of users on ${rollout.version}`;
  byId('rollout-reason').textContent = rollout.reason;
  renderGates(rollout);
  byId<HTMLButtonElement>('rollout-pause').disabled = rollout.state !== 'running';
  byId<HTMLButtonElement>('rollout-resume').disabled = rollout.state !== 'paused';
  byId<HTMLButtonElement>('rollout-abort').disabled = !live;
}

export function wireRolloutControls(): void {
  byId('rollout-pause').addEventListener('click', () => void control('/api/rollout/pause', {}, 'rollout-result'));
  byId('rollout-resume').addEventListener('click', () => void control('/api/rollout/resume', {}, 'rollout-result'));
  byId('rollout-abort').addEventListener('click', () => {
    if (confirm('Abort the rollout: send all traffic back to the baseline now?')) void control('/api/rollout/abort', {}, 'rollout-result');
  });
}
