import { isDeepStrictEqual } from 'node:util';
import { portOverrides, type ConfigOverrides } from './load.js';
import type { ConfigFile, LogFileConfig, ResolvedConfig, VersionConfig } from './types.js';

/** One thing to do to move a running supervisor from one config to the next. */
export type Step =
  | { kind: 'start-version'; version: string }
  | { kind: 'switch-routing' }
  | { kind: 'scale'; version: string; from: number; to: number }
  | { kind: 'replace'; version: string; reason: string }
  | { kind: 'remove-version'; version: string }
  /** A limit that applies to running workers as it is (no restart). */
  | { kind: 'set-limit'; version: string; key: 'maxMemoryMB' | 'maxMemoryHardMB'; from: number | null; to: number | null }
  /** Where a version's lines are written: the next line goes to the new file, the workers stay. */
  | { kind: 'set-log-file'; version: string; from: LogFileConfig | null; to: LogFileConfig | null }
  /** A setting that cannot change while running (the addresses listened on). */
  | { kind: 'needs-restart'; key: string };

/**
 * Diffs two configs into the steps that apply the new one, in the order they must run: new versions start
 * before routing can send to them, routing switches before a removed version drains, and replaced workers
 * roll only after routing knows the version's new settings.
 */
export function plan(current: ResolvedConfig, next: ResolvedConfig): Step[] {
  const steps: Step[] = [];
  for (const name of next.versions.keys()) {
    if (!current.versions.has(name)) steps.push({ kind: 'start-version', version: name });
  }
  if (!isDeepStrictEqual(current.routing, next.routing) || !isDeepStrictEqual(liveServer(current), liveServer(next))
    || !sameNames(current, next)) {
    steps.push({ kind: 'switch-routing' });
  }
  for (const [name, version] of next.versions) {
    const before = current.versions.get(name);
    if (!before) continue;
    const reason = replaceReason(before, version);
    if (reason) steps.push({ kind: 'replace', version: name, reason });
    if (before.workers !== version.workers) steps.push({ kind: 'scale', version: name, from: before.workers, to: version.workers });
    for (const key of ['maxMemoryMB', 'maxMemoryHardMB'] as const) {
      if (before[key] !== version[key]) steps.push({ kind: 'set-limit', version: name, key, from: before[key], to: version[key] });
    }
    if (!isDeepStrictEqual(before.logFile, version.logFile)) steps.push({ kind: 'set-log-file', version: name, from: before.logFile, to: version.logFile });
  }
  for (const name of current.versions.keys()) {
    if (!next.versions.has(name)) steps.push({ kind: 'remove-version', version: name });
  }
  for (const key of ['host', 'port'] as const) {
    if (current.server[key] !== next.server[key]) steps.push({ kind: 'needs-restart', key: `server.${key}` });
    if (current.dashboard[key] !== next.dashboard[key]) steps.push({ kind: 'needs-restart', key: `dashboard.${key}` });
  }
  if (current.dashboard.token !== next.dashboard.token) steps.push({ kind: 'needs-restart', key: 'dashboard.token' });
  for (const key of Object.keys(current.health) as Array<keyof ResolvedConfig['health']>) {
    if (current.health[key] !== next.health[key]) steps.push({ kind: 'needs-restart', key: `health.${key}` });
  }
  for (const key of Object.keys(current.logs) as Array<keyof ResolvedConfig['logs']>) {
    if (current.logs[key] !== next.logs[key]) steps.push({ kind: 'needs-restart', key: `logs.${key}` });
  }
  return steps;
}

/** Server settings that apply to new connections at once, without a restart. */
function liveServer(config: ResolvedConfig) {
  const { host: _host, port: _port, ...live } = config.server;
  return live;
}

function sameNames(current: ResolvedConfig, next: ResolvedConfig): boolean {
  return isDeepStrictEqual([...current.versions.keys()], [...next.versions.keys()]);
}

/** Why a version's workers must be replaced, or undefined when they can stay. */
function replaceReason(before: VersionConfig, after: VersionConfig): string | undefined {
  const changed = [
    before.entry !== after.entry && `entry ${before.entry} → ${after.entry}`,
    !isDeepStrictEqual(before.env, after.env) && 'env changed',
    before.maxInFlight !== after.maxInFlight && `maxInFlight ${before.maxInFlight} → ${after.maxInFlight}`,
    !isDeepStrictEqual(before.nodeArgs, after.nodeArgs) && `nodeArgs ${JSON.stringify(before.nodeArgs)} → ${JSON.stringify(after.nodeArgs)}`,
    !isDeepStrictEqual(before.args, after.args) && `args ${JSON.stringify(before.args)} → ${JSON.stringify(after.args)}`,
    before.port !== after.port && `port ${before.port ?? 'none'} → ${after.port ?? 'none'}`,
    before.cwd !== after.cwd && `cwd ${before.cwd ?? '(the supervisor\'s)'} → ${after.cwd ?? '(the supervisor\'s)'}`,
  ].filter(Boolean);
  return changed.length > 0 ? changed.join(', ') : undefined;
}

/**
 * One line for each port the file changed where a port given to `start` hides it: plan() sees no change there
 * (both configs are resolved with the override), and a user who edits the key should hear that it does nothing.
 */
export function hiddenPortChanges(before: ConfigFile, after: ConfigFile, overrides: ConfigOverrides): string[] {
  return portOverrides.flatMap(({ override, section, given }) => {
    const from = before[section]?.port;
    const to = after[section]?.port;
    if (overrides[override] === undefined || from === to) return [];
    return [`${section}.port changed in the file (${from ?? 'unset'} → ${to ?? 'unset'}) and has no effect: start was given ${given}, which wins over it`];
  });
}

/** One line per step, for logs and for the CLI's "what will change". */
export function describe(step: Step, current: ResolvedConfig, next: ResolvedConfig): string {
  switch (step.kind) {
    case 'start-version': {
      const started = next.versions.get(step.version);
      return started ? `start version ${step.version} (${started.workers} × ${started.entry})` : `start version ${step.version}`;
    }
    case 'switch-routing':
      return describeSwitch(current, next);
    case 'scale':
      return `scale ${step.version} from ${step.from} to ${step.to} workers`;
    case 'replace':
      return `replace ${step.version}'s workers, rolling (${step.reason})`;
    case 'remove-version':
      return `stop sending to ${step.version}, then drain and remove it`;
    case 'needs-restart': {
      const flag = portOverrides.find(({ section }) => step.key === `${section}.port`)?.flag;
      return `${step.key} changed: takes effect after a restart${flag ? ` (where start is not given ${flag}, which wins over it)` : ''}`;
    }
    case 'set-limit':
      return `set ${step.version}'s ${step.key} from ${step.from ?? 'none'} to ${step.to ?? 'none'} (no restart)`;
    case 'set-log-file':
      return `set ${step.version}'s logFile from ${describeLogFile(step.from)} to ${describeLogFile(step.to)} (no restart)`;
  }
}

function describeLogFile(logFile: LogFileConfig | null): string {
  return logFile ? `${logFile.path} (rotated at ${logFile.maxBytes} bytes, ${logFile.keep} kept)` : 'none';
}

/**
 * What a routing switch changes: the routing's summary when its default, weights or rules change, then the sticky
 * settings, the version cookie and each live server setting that changes; or, when only the set of versions did
 * (one started or removed), that.
 */
function describeSwitch(current: ResolvedConfig, next: ResolvedConfig): string {
  const changes: string[] = [];
  const [before, after] = [current, next].map(describeRouting);
  const rulesChanged = !isDeepStrictEqual(current.routing.rules, next.routing.rules);
  if (before !== after || rulesChanged) changes.push(`switch routing: ${before} → ${after}${before === after ? ' (rules changed)' : ''}`);
  const sticky = (config: ResolvedConfig) => {
    const { key, cookie } = config.routing.sticky;
    return `sticky key ${key.source === 'ip' ? 'ip' : `${key.source}:${key.name}`}${cookie === null ? '' : `, cookie ${cookie}`}`;
  };
  if (sticky(current) !== sticky(next)) changes.push(`${sticky(current)} → ${sticky(next)}`);
  if (current.routing.versionCookie !== next.routing.versionCookie) changes.push(`version cookie ${current.routing.versionCookie ?? 'none'} → ${next.routing.versionCookie ?? 'none'}`);
  const [liveBefore, liveAfter] = [liveServer(current), liveServer(next)] as Array<Record<string, unknown>>;
  for (const key of Object.keys(liveAfter!)) {
    if (!isDeepStrictEqual(liveBefore![key], liveAfter![key])) changes.push(`server.${key} ${JSON.stringify(liveBefore![key])} → ${JSON.stringify(liveAfter![key])}`);
  }
  return changes.length > 0 ? changes.join('; ') : `routing: the versions are now ${[...next.versions.keys()].join(', ')}`;
}

function describeRouting(config: ResolvedConfig): string {
  const weights = config.routing.weights.map(([name, weight]) => `${name}=${weight}`).join(' ');
  return `default ${config.routing.default}${weights ? `, weights ${weights}` : ''}, ${config.routing.rules.length} rules`;
}
