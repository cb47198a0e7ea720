import { parseArgs } from 'node:util';
import { apiTarget, callApi, isControlResult, remoteCommon, remoteOptions } from './remote.js';
import { refuseEmpty } from './options.js';
import { UsageError } from './usage.js';

export const heapSnapshotUsage = `Usage: graycluster heap-snapshot <worker-id> [options]

Writes a heap snapshot of one live worker (ids as \`graycluster status\` shows them, e.g. v2.1)
into diagnostics.folder (default: a "heapsnapshots" folder beside the config file) and prints
its path. The worker keeps its connections; its requests wait while the snapshot is written
(about a second per 100 MB of heap). Open the file in Chrome DevTools, Memory tab, Load.
One snapshot per worker at a time: a second is refused until the first is written.

Options:
${remoteCommon}
`;

export const inspectUsage = `Usage: graycluster inspect <worker-id> [--close] [options]

Opens the inspector of one live worker on a free port of 127.0.0.1 and prints its ws:// URL
and the devtools:// address to open in Chrome (or use chrome://inspect). The worker keeps
serving. Anyone who can connect to that port can run code in the worker: close it when done.

Options:
      --close           Close the worker's inspector
${remoteCommon}
`;

function workerIdFrom(positionals: string[], usage: string): string {
  if (positionals.length !== 1 || positionals[0] === undefined) throw new UsageError(`expected 1 argument (a worker id such as v2.1), got ${positionals.length}`, usage);
  return positionals[0];
}

export async function heapSnapshot(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: remoteOptions, strict: true, allowPositionals: true });
  if (values.help) return help(heapSnapshotUsage);
  refuseEmpty({ values, positionals }, heapSnapshotUsage, ['the worker id']);
  const workerId = workerIdFrom(positionals, heapSnapshotUsage);
  const result = await callApi(apiTarget(values), isControlResult, 'POST', `/api/workers/${encodeURIComponent(workerId)}/heap-snapshot`, {});
  if (result.ok) process.stdout.write(`${result.file}\n`);
  return 0;
}

export async function inspect(args: string[]): Promise<number> {
  const options = { ...remoteOptions, close: { type: 'boolean' } } as const;
  const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
  if (values.help) return help(inspectUsage);
  refuseEmpty({ values, positionals }, inspectUsage, ['the worker id']);
  const workerId = workerIdFrom(positionals, inspectUsage);
  const close = values.close ?? false;
  const result = await callApi(apiTarget(values), isControlResult, 'POST', `/api/workers/${encodeURIComponent(workerId)}/inspect`, close ? { close: true } : {});
  if (!result.ok) return 1;
  if (close || !result.inspector) {
    process.stdout.write(`${result.changes.join('\n')}\n`);
    return 0;
  }
  process.stdout.write(`inspector of ${workerId}: ${result.inspector.url}\n`
    + `DevTools: ${result.inspector.devtools}\n`
    + `close it with: graycluster inspect ${workerId} --close\n`);
  return 0;
}

function help(usage: string): number {
  process.stdout.write(usage);
  return 0;
}
