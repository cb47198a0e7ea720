// Controls: POST to the API with the token; the answer is shown next to the buttons.
import type { ControlResult } from '@server/control/types.js';
import { byId, make } from './dom.js';
import { bearer } from './session.js';

/** POSTs one operator's move; the answer shows in the output element `outputId`. Resolves true when it was done. */
export async function control(path: string, body: object, outputId = 'control-result'): Promise<boolean> {
  const output = byId<HTMLOutputElement>(outputId);
  output.dataset.ok = '';
  output.textContent = '…';
  let ok = false;
  try {
    const response = await fetch(path, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
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

/** A version's weight field: once typed into, the feed leaves it alone until the weights are applied. */
export function weightInput(version: string): HTMLInputElement {
  const input = make('input', { type: 'number', min: '0', max: '1000000', step: '1', value: '' });
  input.dataset.weight = version;
  input.setAttribute('aria-label', `weight of ${version}`);
  input.addEventListener('input', () => {
    input.dataset.dirty = 'true';
    byId<HTMLButtonElement>('apply-weights').disabled = false;
  });
  return input;
}

/** Promote and Reload for one version's row. */
export function versionButtons(version: string): Array<Node | string> {
  const promote = make('button', { type: 'button', textContent: 'Promote', title: `Send all traffic to ${version}` });
  promote.addEventListener('click', () => {
    if (confirm(`Promote ${version}: make it the default and give it all weighted traffic?`)) void control('/api/promote', { version });
  });
  const reload = make('button', { type: 'button', textContent: 'Reload', title: `Replace ${version}'s workers one by one` });
  reload.addEventListener('click', () => {
    if (confirm(`Reload ${version}: start fresh workers and drain the old ones?`)) void control('/api/reload', { version });
  });
  return [promote, ' ', reload];
}

/** Restart, heap snapshot and inspector (open, close) for one worker's row. */
export function workerButtons(workerId: string): Array<Node | string> {
  const api = `/api/workers/${encodeURIComponent(workerId)}`;
  const restart = make('button', { type: 'button', textContent: 'Restart' });
  restart.addEventListener('click', () => {
    if (confirm(`Restart worker ${workerId}?`)) void control(`${api}/restart`, {});
  });
  const snapshot = make('button', { type: 'button', textContent: 'Heap snapshot', title: `Write a heap snapshot of ${workerId} to diagnostics.folder; its requests wait meanwhile` });
  snapshot.addEventListener('click', () => void control(`${api}/heap-snapshot`, {}));
  const inspect = make('button', { type: 'button', textContent: 'Inspect', title: `Open ${workerId}'s inspector on a loopback port` });
  inspect.addEventListener('click', () => void control(`${api}/inspect`, {}));
  const close = make('button', { type: 'button', textContent: 'Close inspector', title: `Close ${workerId}'s inspector` });
  close.addEventListener('click', () => void control(`${api}/inspect`, { close: true }));
  return [restart, ' ', snapshot, ' ', inspect, ' ', close];
}

/** The buttons below the versions table: apply weights, roll back, reload all. */
export function wireControls(): void {
  const apply = byId<HTMLButtonElement>('apply-weights');
  apply.addEventListener('click', async () => {
    const inputs = [...document.querySelectorAll<HTMLInputElement>('input[data-weight]')];
    const weights = Object.fromEntries(inputs.flatMap((input) => (input.dataset.weight === undefined ? [] : [[input.dataset.weight, input.valueAsNumber]])));
    if (await control('/api/weights', { weights })) {
      for (const input of inputs) delete input.dataset.dirty;
      apply.disabled = true;
    }
  });
  byId('rollback').addEventListener('click', () => {
    if (confirm('Roll back: write back the config applied before the current one, and apply it?')) void control('/api/rollback', {});
  });
  byId('reload-all').addEventListener('click', () => {
    if (confirm('Reload every version: start fresh workers and drain the old ones?')) void control('/api/reload', {});
  });
}
