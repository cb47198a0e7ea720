import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, heldPorts } from '../config/load.js';
import { updateConfigFile } from '../config/update.js';
import { deploy, promote, scale, setKey, setWeights, type Edit } from '../config/edits.js';
import { readRunStates } from '../primary/state-file.js';
import { configPath, refuseEmpty } from './options.js';
import { apiTarget, callApi, isControlResult, remoteCommon, remoteOptions, supervisorsElsewhere } from './remote.js';
import { UsageError } from './usage.js';

const common = `  -c, --config <file>   Config file (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
  -n, --dry-run         Print what would change; write nothing
  -h, --help            Show this help`;

export const weightsUsage = `Usage: graycluster weights <version>=<weight>... [options]

Sets the share of sticky users per version (versions not named keep theirs), e.g.
  graycluster weights v1=80 v2=20
The change is written to the config file atomically; a running supervisor applies it
within a second, with no restart.

Options:
${common}
`;

export const deployUsage = `Usage: graycluster deploy <version> --entry <file> [--workers <n>] [options]

Adds a version, or points an existing one at new code (its workers are then replaced,
rolling: the new ones are ready before the old ones drain). Route traffic to a new
version with \`graycluster weights\`, a rule, or \`graycluster promote\`.

Options:
  -e, --entry <file>    The app's main file (relative to the current folder)
  -w, --workers <n>     Worker processes for the version
${common}
`;

export const scaleUsage = `Usage: graycluster scale <version> <workers> [options]

Grows or shrinks a version's pool; workers that go finish their requests first.

Options:
${common}
`;

export const promoteUsage = `Usage: graycluster promote <version> [options]

Sends all traffic to one version: it becomes routing.default and takes every weight.

Options:
${common}
`;

export const setUsage = `Usage: graycluster set <dotted.key> <json> [options]

Sets any key of the config file; the value is JSON, e.g.
  graycluster set routing.sticky.cookie '"gc_uid"'
  graycluster set versions.v2.maxMemoryMB 512
  graycluster set routing.rules '[{"header":"x-canary","equals":"1","to":"v2"}]'
Use null to remove a key; a version goes once no traffic does (its weight of 0 goes
with it): graycluster set versions.v2 null

Options:
${common}
`;

export const rollbackUsage = `Usage: graycluster rollback [options]

Writes back the config that was applied before the current one and applies it. Run it
again to return (it swaps the last two).

Options:
${remoteCommon}
`;

export const reloadUsage = `Usage: graycluster reload [version] [options]

Replaces the workers of one version (or of all) with fresh ones running the same config,
rolling: e.g. after new code landed at the same path. If a new worker fails to become
ready, the old ones keep serving.

Options:
${remoteCommon}
`;

export const restartUsage = `Usage: graycluster restart <worker-id> [options]

Replaces one worker (ids as \`graycluster status\` shows them, e.g. v2.1), rolling.

Options:
${remoteCommon}
`;

const editOptions = {
  config: { type: 'string', short: 'c' },
  'dry-run': { type: 'boolean', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Validates and writes an edit, then says what changes (also for `canary`). Exit 1 when the edit is rejected. */
export async function applyEdit(file: string, edit: Edit, dryRun: boolean): Promise<number> {
  const running = readRunStates(file);
  // What the running supervisors would refuse is refused here, before the file is written.
  const held = running.flatMap((state) => heldPorts({ server: state.server.port, dashboard: state.dashboard.port, health: state.health?.port ?? null }));
  const { changes } = await updateConfigFile(file, edit, { dryRun, held }).catch((error: unknown) => {
    // A missing file: name the supervisors running with another one, in case --config was forgotten.
    const elsewhere = error instanceof ConfigError && !existsSync(file) ? supervisorsElsewhere() : undefined;
    throw elsewhere === undefined ? error : new ConfigError(`${(error as ConfigError).message}; ${elsewhere}`);
  });
  if (changes.length === 0) {
    process.stdout.write(`nothing to change in ${file}\n`);
    return 0;
  }
  process.stdout.write(`${dryRun ? 'would change' : 'changes'}:\n${changes.map((line) => `  - ${line}\n`).join('')}`);
  if (dryRun) return 0;
  const pids = running.map((state) => state.pid);
  process.stdout.write(pids.length === 0
    ? `wrote ${file}; no supervisor is running with it: it applies at the next start\n`
    : pids.length === 1
      ? `wrote ${file}; the running supervisor (pid ${pids[0]}) applies it within a second\n`
      : `wrote ${file}; the ${pids.length} supervisors running with it (pids ${pids.join(', ')}) apply it within a second\n`);
  return 0;
}

/** At least `Min` positional arguments: the first `Min` of them are there. */
type Positionals<Min extends number, Known extends string[] = []> = Known['length'] extends Min ? [...Known, ...string[]] : Positionals<Min, [...Known, string]>;

function checkCount<Min extends number>(usage: string, positionals: string[], count: { min: Min; max: number }): asserts positionals is Positionals<Min> {
  if (positionals.length < count.min || positionals.length > count.max) {
    throw new UsageError(`expected ${count.min === count.max ? count.min : `${count.min} to ${count.max}`} argument${count.max === 1 ? '' : 's'}, got ${positionals.length}`, usage);
  }
}

function editArgs(args: string[]) {
  return parseArgs({ args, options: editOptions, strict: true, allowPositionals: true });
}

function count(value: string, name: string, usage: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`${name} must be a whole number >= 1, not "${value}"`, usage);
  return Number(value);
}

export async function weights(args: string[]): Promise<number> {
  const { values, positionals } = editArgs(args);
  if (values.help) return help(weightsUsage);
  refuseEmpty({ values, positionals }, weightsUsage, ['a <version>=<weight> pair']);
  checkCount(weightsUsage, positionals, { min: 1, max: 64 });
  const parsed: Record<string, number> = {};
  for (const pair of positionals) {
    const [, version, weight] = /^([^=]+)=([-+0-9.eE]+)$/.exec(pair) ?? [];
    if (version === undefined || weight === undefined) throw new UsageError(`"${pair}" is not <version>=<weight> (e.g. v2=10)`, weightsUsage);
    parsed[version] = Number(weight);
  }
  return applyEdit(configPath(values.config), setWeights(parsed), values['dry-run'] ?? false);
}

export async function deployCommand(args: string[]): Promise<number> {
  const options = { ...editOptions, entry: { type: 'string', short: 'e' }, workers: { type: 'string', short: 'w' } } as const;
  const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
  if (values.help) return help(deployUsage);
  refuseEmpty({ values, positionals }, deployUsage, ['the version']);
  checkCount(deployUsage, positionals, { min: 1, max: 1 });
  const entry = values.entry;
  if (!entry) throw new UsageError('--entry <file> is required', deployUsage);
  const file = configPath(values.config);
  // Stored relative to the config file's folder, as entries are read.
  const relative = path.relative(path.dirname(path.resolve(file)), path.resolve(entry));
  const workers = values.workers === undefined ? undefined : count(values.workers, '--workers', deployUsage);
  return applyEdit(file, deploy(positionals[0], relative.startsWith('.') ? relative : `./${relative}`, workers), values['dry-run'] ?? false);
}

export async function scaleCommand(args: string[]): Promise<number> {
  const { values, positionals } = editArgs(args);
  if (values.help) return help(scaleUsage);
  refuseEmpty({ values, positionals }, scaleUsage, ['the version', 'the worker count']);
  checkCount(scaleUsage, positionals, { min: 2, max: 2 });
  const [version, workers] = positionals;
  return applyEdit(configPath(values.config), scale(version, count(workers, 'workers', scaleUsage)), values['dry-run'] ?? false);
}

export async function promoteCommand(args: string[]): Promise<number> {
  const { values, positionals } = editArgs(args);
  if (values.help) return help(promoteUsage);
  refuseEmpty({ values, positionals }, promoteUsage, ['the version']);
  checkCount(promoteUsage, positionals, { min: 1, max: 1 });
  return applyEdit(configPath(values.config), promote(positionals[0]), values['dry-run'] ?? false);
}

export async function set(args: string[]): Promise<number> {
  const { values, positionals } = editArgs(args);
  if (values.help) return help(setUsage);
  refuseEmpty({ values, positionals }, setUsage, ['the key', 'the value']);
  checkCount(setUsage, positionals, { min: 2, max: 2 });
  const [key, json] = positionals;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new UsageError(`the value must be JSON, not ${json} (quote strings: '"${json}"')`, setUsage);
  }
  return applyEdit(configPath(values.config), setKey(key, value === null ? undefined : value), values['dry-run'] ?? false);
}

async function remote<Min extends number>(usage: string, args: string[], count: { min: Min; max: number; argument?: string }, call: (positionals: Positionals<Min>) => { path: string; body: unknown }): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: remoteOptions, strict: true, allowPositionals: true });
  if (values.help) return help(usage);
  refuseEmpty({ values, positionals }, usage, [count.argument ?? 'an argument']);
  checkCount(usage, positionals, count);
  const request = call(positionals);
  const result = await callApi(apiTarget(values), isControlResult, 'POST', request.path, request.body);
  if (result.ok) process.stdout.write(`${result.changes.map((line) => `  - ${line}\n`).join('') || 'nothing to change\n'}`);
  return 0;
}

export const rollback = (args: string[]) => remote(rollbackUsage, args, { min: 0, max: 0 }, () => ({ path: '/api/rollback', body: {} }));
export const reload = (args: string[]) => remote(reloadUsage, args, { min: 0, max: 1, argument: 'the version to reload' }, ([version]) => ({ path: '/api/reload', body: version === undefined ? {} : { version } }));
export const restart = (args: string[]) => remote(restartUsage, args, { min: 1, max: 1, argument: 'the worker id' }, ([id]) => ({ path: `/api/workers/${encodeURIComponent(id)}/restart`, body: {} }));

function help(usage: string): number {
  process.stdout.write(usage);
  return 0;
}
