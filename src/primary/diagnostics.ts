import { rmSync } from 'node:fs';
import path from 'node:path';
import type { DiagnosticsConfig } from '../config/types.js';
import type { DiagnoseRequest, ToPrimary } from '../ipc/messages.js';
import { makeFolder } from '../shared/make-folder.js';
import { Deadline } from '../shared/stalls.js';
import type { WorkerProcess } from './worker-process.js';
import type { WorkerSlot } from './worker-slot.js';

/** What an operator's diagnostic request came to: the file written or the inspector's URL, or an HTTP error. */
export type DiagnosticOutcome =
  | { ok: true; file?: string; inspectorUrl?: string }
  | { ok: false; status: number; error: string };

const describe: Record<DiagnoseRequest['action'], string> = {
  'heap-snapshot': 'a heap snapshot',
  'inspect-open': 'opening the inspector',
  'inspect-close': 'closing the inspector',
};

/**
 * Asks one live worker for a heap snapshot or its inspector, and waits for its answer, bounded by
 * `diagnostics.timeoutMs` and by the worker's exit. One request per worker at a time: a second one is refused
 * with 409 naming the first, so the requests waiting are never more than the workers.
 */
export class Diagnostics {
  readonly #underWay = new Map<string, string>();
  #lastRequestId = 0;

  constructor(private readonly workerNamed: (id: string) => WorkerSlot | undefined, private readonly settings: () => DiagnosticsConfig) {}

  /** Writes a heap snapshot of the worker into `diagnostics.folder`; the worker keeps its connections. */
  heapSnapshot(workerId: string): Promise<DiagnosticOutcome> {
    return this.#run(workerId, (slot, process) => {
      const folder = this.settings().folder;
      try {
        makeFolder(folder);
      } catch (error) {
        return { ok: false, status: 500, error: `cannot create diagnostics.folder ${folder}: ${(error as Error).message}` };
      }
      const stamp = new Date().toISOString().replaceAll(':', '-');
      return { action: 'heap-snapshot', file: path.join(folder, `${slot.id}-${process.pid ?? 'gone'}-${stamp}.heapsnapshot`) };
    });
  }

  /** Opens the worker's inspector on a loopback port (or reports the open one), or closes it. */
  inspector(workerId: string, open: boolean): Promise<DiagnosticOutcome> {
    return this.#run(workerId, () => ({ action: open ? 'inspect-open' : 'inspect-close' }));
  }

  async #run(workerId: string, prepare: (slot: WorkerSlot, process: WorkerProcess) => DiagnoseRequest | DiagnosticOutcome): Promise<DiagnosticOutcome> {
    const slot = this.workerNamed(workerId);
    const process = slot?.process;
    if (!slot || !process?.isConnected()) return { ok: false, status: 404, error: `no live worker "${workerId}"` };
    const busy = this.#underWay.get(slot.id);
    if (busy !== undefined) return { ok: false, status: 409, error: `${busy} of worker ${slot.id} is under way: try again when it is done` };
    const request = prepare(slot, process);
    if (!('action' in request)) return request;
    this.#underWay.set(slot.id, request.action === 'heap-snapshot' ? `a heap snapshot (${request.file})` : describe[request.action]);
    try {
      const outcome = await this.#ask(slot, process, request);
      if (!outcome.ok && request.action === 'heap-snapshot') rmSync(request.file, { force: true });  // No half-written file.
      return outcome;
    } finally {
      this.#underWay.delete(slot.id);
    }
  }

  #ask(slot: WorkerSlot, process: WorkerProcess, request: DiagnoseRequest): Promise<DiagnosticOutcome> {
    const requestId = ++this.#lastRequestId;
    const what = describe[request.action];
    const { timeoutMs } = this.settings();
    return new Promise((resolve) => {
      const finish = (outcome: DiagnosticOutcome) => {
        deadline.clear();
        process.off('message', onMessage);
        process.off('exit', onExit);
        resolve(outcome);
      };
      const onMessage = (message: ToPrimary) => {
        if (message.kind !== 'diagnosed' || message.requestId !== requestId) return;
        const answer = message.answer;
        if (answer.ok) finish(answer);
        else finish({ ok: false, status: /ENOSPC/.test(answer.error) ? 507 : 500, error: `worker ${slot.id} failed ${what}: ${answer.error}` });
      };
      const onExit = (code: number | null, signal: string | null) =>
        finish({ ok: false, status: 502, error: `worker ${slot.id} exited (${signal ? `signal ${signal}` : `exit code ${code}`}) before finishing ${what}` });
      const deadline = new Deadline(timeoutMs, () => finish({ ok: false, status: 504, error: `worker ${slot.id} did not finish ${what} within diagnostics.timeoutMs (${timeoutMs} ms)` }));
      process.on('message', onMessage);
      process.on('exit', onExit);
      process.send({ kind: 'diagnose', requestId, request }, undefined, (error) => {
        if (error) finish({ ok: false, status: 502, error: `cannot reach worker ${slot.id}: ${error.message}` });
      });
    });
  }
}
