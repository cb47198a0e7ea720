import { readFileSync } from 'node:fs';

/** The primary's private run folder, as a worker was told it (read from the worker's environment in /proc). */
export function runFolderOf(workerPid: number): string {
  const environ = readFileSync(`/proc/${workerPid}/environ`, 'utf8').split('\0');
  const entry = environ.find((line) => line.startsWith('GRAYCLUSTER_RUN_DIR='));
  if (!entry) throw new Error(`worker ${workerPid} has no GRAYCLUSTER_RUN_DIR`);
  return entry.slice('GRAYCLUSTER_RUN_DIR='.length);
}
