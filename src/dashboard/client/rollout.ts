// The rollout panel: the steps as a progress bar, time in step, each gate's canary-vs-baseline figures with its
// verdict, and pause / resume / abort (POSTs to /api/rollout/…, the same edits as `graycluster canary`).
import type { RolloutReport } from '@server/rollout/report.js';
import { control } from './controls.js';
import { byId, emptyRow, make, pill, setCell, syncRows } from './dom.js';
import { duration, milliseconds, percent } from './format.js';

const gateNames: Record<string, string> = { errors: '5xx rate', latency: 'Latency', restarts: 'Restarts', memory: 'Memory', eventLoop: 'Event loop' };

/** One figure as it reads: `errorRate 0.004` → `5xx 0.4%`. */
function figure(key: string, value: number | null): string {
  if (value === null) return key === 'growthMBPerMinute' ? 'growth not judged yet' : `${key} –`;
  switch (key) {
    case 'errorRate': return `5xx ${percent(value)}`;
    case 'p50Ms': return `p50 ${milliseconds(value)}`;
    case 'p99Ms': return `p99 ${milliseconds(value)}`;
    case 'maxDelayMs': return `delay ${milliseconds(value)}`;
    case 'maxRssMB': return `rss ${value.toFixed(0)} MB`;
    case 'growthMBPerMinute': return `+${value.toFixed(1)} MB/min`;
    default: return `${value.toLocaleString('en-US')} ${key}`;
  }
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
