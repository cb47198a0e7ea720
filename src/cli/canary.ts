import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import type { RolloutOptions } from '../config/types.js';
import { rolloutEdits } from '../control/primary.js';
import { gateDefaults, rolloutDefaults } from '../config/rollout.js';
import { startRollout, type StartOptions } from '../rollout/edits.js';
import type { RolloutReport } from '../rollout/report.js';
import { applyEdit } from './edit.js';
import { duration, table } from './format.js';
import { configPath, refuseEmpty } from './options.js';
import { apiTarget, callApi, isStatus } from './remote.js';
import { UsageError } from './usage.js';

const settings = (gate: keyof typeof gateDefaults) => Object.entries(gateDefaults[gate]).map(([key, value]) => `${key}=${value ?? 'none'}`).join(',');

const editCommon = `  -c, --config <file>   Config file (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
  -n, --dry-run         Print what would change; write nothing
  -h, --help            Show this help`;

export const canaryUsage = `Usage: graycluster canary <start|status|pause|resume|abort> [options]

A progressive rollout: the canary's weight grows step by step (5, 25, 50, 100 %) while
gates compare it with its baseline over the same window (5xx rate, latency, restarts,
memory, event-loop delay). A failed gate rolls it back at once; passing every step
promotes it to routing.default. The rollout lives in the config file's "rollout" key, so
it survives a restart of graycluster and resumes at the same step.

  start <version>   Start a rollout of <version> (see graycluster canary start --help)
  status            Where the rollout is, and each gate's figures for both versions
  pause             Stay at the current step; gates stop judging
  resume            Go on from the current step, with a fresh window of evidence
  abort             Roll back to the baseline now: all traffic to it

start, pause, resume and abort write the config file, as weights does; the supervisor
applies it within a second. A manual weights, promote or rollback during a rollout
pauses it.
`;

export const canaryStartUsage = `Usage: graycluster canary start <version> [options]

Starts a rollout of <version>, at its first step's weight, against --baseline.

Options:
  -b, --baseline <version>       Version to compare with; it takes the rest of the weight
                                 (default routing.default)
  -s, --steps <w,w,...>          The canary's weight at each step, increasing (default ${rolloutDefaults.steps.join(',')})
  -i, --interval <duration>      How long each step lasts at least, e.g. 60s, 5m (default ${duration(rolloutDefaults.stepMs)})
      --check-every <duration>   How often the gates judge (default ${duration(rolloutDefaults.checkIntervalMs)}, or --interval when shorter)
      --min-requests <n>         Requests each version needs in a step before it is judged (default ${rolloutDefaults.minRequests})
      --progress-deadline <duration|off>
                                 A step still short of requests this long is paused (default ${rolloutDefaults.progressDeadlineMs === null ? 'off' : `${duration(rolloutDefaults.progressDeadlineMs)}, or --interval when longer`})
      --remove-canary-on-rollback
                                 After a rollback, remove the canary from the file (default: keep
                                 its workers running, with no traffic, for inspection)
Gates: "off" switches one off; key=value pairs tune it, the other keys keep their defaults:
      --errors <off|k=v,...>     5xx rate vs baseline (default ${settings('errors')})
      --latency <off|k=v,...>    p99 ratio and Mann-Whitney test (default ${settings('latency')})
      --restarts <off|k=v,...>   Crashes of canary workers (default ${settings('restarts')})
      --memory <off|k=v,...>     rss ceiling and growth (default ${settings('memory')})
      --event-loop <off|k=v,...> Event-loop delay (default ${settings('eventLoop')})
${editCommon}

Example: graycluster canary start v2 --steps 10,50,100 --interval 2m --latency maxP99Ratio=1.5
`;

const stateUsage = (verb: string, what: string) => `Usage: graycluster canary ${verb} [options]

${what}

Options:
${editCommon}
`;

export const canaryPauseUsage = stateUsage('pause', 'Pauses the running rollout at its step: routing stays as it is, the gates stop judging.');
export const canaryResumeUsage = stateUsage('resume', 'Resumes a paused rollout at its step: the step\'s weights again (undoing a change by hand), and a\nfresh window of evidence.');
export const canaryAbortUsage = stateUsage('abort', 'Rolls back to the baseline now: all traffic to it, the canary\'s workers kept running unless\nthe rollout says otherwise (keepCanaryOnRollback).');

export const canaryStatusUsage = `Usage: graycluster canary status [--json] [options]

Shows the running supervisor's rollout: state, step, weight, time in step, the last verdict,
and each gate's figures for the canary and its baseline.

Options:
  -c, --config <file>   Config file the supervisor was started with (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
      --json            Print the rollout as GET /api/status reports it (null without one)
      --url <url>       Dashboard address of a supervisor elsewhere, or of one of several running
                        the config file, e.g. http://127.0.0.1:9000
      --token <token>   API token (default $GRAYCLUSTER_TOKEN, else the run-state file's)
  -h, --help            Show this help
`;

const subcommands: Record<string, { run: (args: string[]) => Promise<number>; usage: string }> = {
  start: { run: startCommand, usage: canaryStartUsage },
  status: { run: statusCommand, usage: canaryStatusUsage },
  pause: { run: (args) => stateCommand('pause', canaryPauseUsage, args), usage: canaryPauseUsage },
  resume: { run: (args) => stateCommand('resume', canaryResumeUsage, args), usage: canaryResumeUsage },
  abort: { run: (args) => stateCommand('abort', canaryAbortUsage, args), usage: canaryAbortUsage },
};

/** `graycluster canary <subcommand>`. */
export async function canary(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name?.startsWith('-') && name !== '-h' && name !== '--help') throw new UsageError(`canary needs a command first (start, status, pause, resume, abort), not "${name}"`, canaryUsage);
  if (name === undefined || name === '-h' || name === '--help') {
    process.stdout.write(canaryUsage);
    return 0;
  }
  const subcommand = subcommands[name];
  if (!subcommand) throw new UsageError(`unknown canary command "${name}"`, canaryUsage);
  try {
    return await subcommand.run(rest);
  } catch (error) {
    // A bad flag of a subcommand is shown with that subcommand's usage.
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((error as Error).message, subcommand.usage);
    throw error;
  }
}

const editOptions = {
  config: { type: 'string', short: 'c' },
  'dry-run': { type: 'boolean', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const;

const gateFlags = { errors: 'errors', latency: 'latency', restarts: 'restarts', memory: 'memory', 'event-loop': 'eventLoop' } as const;

async function startCommand(args: string[]): Promise<number> {
  const options = {
    ...editOptions,
    baseline: { type: 'string', short: 'b' },
    steps: { type: 'string', short: 's' },
    interval: { type: 'string', short: 'i' },
    'check-every': { type: 'string' },
    'min-requests': { type: 'string' },
    'progress-deadline': { type: 'string' },
    'remove-canary-on-rollback': { type: 'boolean' },
    ...Object.fromEntries(Object.keys(gateFlags).map((flag) => [flag, { type: 'string' }])) as Record<keyof typeof gateFlags, { type: 'string' }>,
  } as const;
  const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
  if (values.help) return help(canaryStartUsage);
  refuseEmpty({ values, positionals }, canaryStartUsage, ['the version to roll out']);
  const [version, ...extra] = positionals;
  if (version === undefined || extra.length > 0) throw new UsageError(`expected the canary version, got ${positionals.length} arguments`, canaryStartUsage);
  const rollout: StartOptions = { version };
  if (values.baseline !== undefined) rollout.baseline = values.baseline;
  if (values.steps !== undefined) rollout.steps = values.steps.split(',').map((step) => wholeNumber(step.trim(), '--steps'));
  if (values.interval !== undefined) rollout.stepMs = parseDuration(values.interval, '--interval');
  if (values['check-every'] !== undefined) rollout.checkIntervalMs = parseDuration(values['check-every'], '--check-every');
  if (values['min-requests'] !== undefined) rollout.minRequests = wholeNumber(values['min-requests'], '--min-requests');
  const deadline = values['progress-deadline'];
  if (deadline !== undefined) rollout.progressDeadlineMs = deadline === 'off' ? null : parseDuration(deadline, '--progress-deadline');
  if (values['remove-canary-on-rollback']) rollout.keepCanaryOnRollback = false;
  const gates: NonNullable<RolloutOptions['gates']> = {};
  for (const [flag, gate] of Object.entries(gateFlags)) {
    const given = values[flag as keyof typeof gateFlags];
    if (given !== undefined) (gates as Record<string, unknown>)[gate] = parseGate(given, `--${flag}`);
  }
  if (Object.keys(gates).length > 0) rollout.gates = gates;
  // A key a flag set is named with the flag in a refusal: "rollout.progressDeadlineMs (given by --progress-deadline)".
  const flagOf: Record<string, string> = {};
  for (const [key, flag] of Object.entries(startFlags)) if (values[flag.slice(2) as keyof typeof values] !== undefined) flagOf[key] = flag;
  for (const [flag, gate] of Object.entries(gateFlags)) if (values[flag as keyof typeof gateFlags] !== undefined) flagOf[`gates.${gate}`] = `--${flag}`;
  return applyEdit(configPath(values.config), startRollout(rollout, Date.now()), values['dry-run'] ?? false).catch((error: unknown) => {
    throw error instanceof ConfigError ? new ConfigError(namingFlags(error.message, flagOf), { cause: error }) : error;
  });
}

/** The rollout keys `canary start` sets from a flag of its own (the gates' flags are gateFlags). */
const startFlags: Record<string, string> = {
  baseline: '--baseline',
  steps: '--steps',
  stepMs: '--interval',
  checkIntervalMs: '--check-every',
  minRequests: '--min-requests',
  progressDeadlineMs: '--progress-deadline',
  keepCanaryOnRollback: '--remove-canary-on-rollback',
};

/** `message` with each `rollout.<key>` (or a key under it) that a flag set followed by "(given by <flag>)". */
function namingFlags(message: string, flagOf: Record<string, string>): string {
  let named = message;
  for (const [key, flag] of Object.entries(flagOf)) {
    const pattern = new RegExp(`\\brollout\\.${key.replaceAll('.', '\\.')}(?![\\w])(?:\\[\\d+\\]|\\.\\w+)*`, 'g');
    named = named.replace(pattern, (match) => `${match} (given by ${flag})`);
  }
  return named;
}

async function stateCommand(action: keyof typeof rolloutEdits, usage: string, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: editOptions, strict: true, allowPositionals: true });
  if (values.help) return help(usage);
  refuseEmpty({ values }, usage);
  if (positionals.length > 0) throw new UsageError(`expected no arguments, got ${positionals.length}`, usage);
  return applyEdit(configPath(values.config), rolloutEdits[action](Date.now()), values['dry-run'] ?? false);
}

async function statusCommand(args: string[]): Promise<number> {
  const options = { config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, url: { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;
  const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
  if (values.help) return help(canaryStatusUsage);
  refuseEmpty({ values }, canaryStatusUsage);
  const status = await callApi(apiTarget(values), isStatus, 'GET', '/api/status');
  process.stdout.write(values.json ? `${JSON.stringify(status.rollout, null, 2)}\n` : `${formatRollout(status.rollout)}\n`);
  return 0;
}

/** The rollout as `canary status` prints it. */
export function formatRollout(rollout: RolloutReport | null): string {
  if (!rollout) return 'no rollout in the config file (start one with: graycluster canary start <version>)';
  const { step, steps } = rollout;
  // Promotion follows the last step judged, which is not always the last of the list: say which it was.
  const where = rollout.state === 'promoted'
    ? `${rollout.weight} % to ${rollout.version}, after step ${step + 1} of ${steps.length}`
    : `step ${step + 1} of ${steps.length} (${rollout.weight} % to ${rollout.version})`;
  const inStep = rollout.timeInStepMs === null ? '' : `, ${duration(rollout.timeInStepMs)} in step (at least ${duration(rollout.stepMs)})`;
  const bar = steps.map((weight, index) => (index === step ? `[${weight} %]` : `${weight} %`)).join(' → ');
  const lines = [
    `rollout of ${rollout.version} against ${rollout.baseline}: ${rollout.state.replace('_', ' ')}, ${where}${rollout.state === 'running' || rollout.state === 'paused' ? inStep : ''}`,
    `steps: ${bar}`,
    `verdict: ${rollout.reason}`,
  ];
  if (rollout.gates.length > 0) {
    lines.push('', table([['GATE', 'VERDICT', 'FIGURES'], ...rollout.gates.map((gate) => [gate.gate, gate.verdict, gate.reason])]));
  }
  return lines.join('\n');
}

/**
 * The longest duration a flag takes: 24 days. The supervisor waits --check-every on a timer, which takes at most
 * 2^31-1 ms (past it Node fires it at once, over and over); a step or deadline that long is no rollout either.
 */
const longestDurationMs = 24 * 86_400_000;

function parseDuration(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
  if (!match) throw new UsageError(`${flag} must be a duration with its unit (ms, s, m or h) such as 60s, 5m or 1h, not "${value}"`, canaryStartUsage);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  const ms = Math.round(Number(match[1]) * unit);
  if (!(ms <= longestDurationMs)) throw new UsageError(`${flag} must be at most 576h (24 days), not "${value}"`, canaryStartUsage);
  return ms;
}

function wholeNumber(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be whole numbers, not "${value}"`, canaryStartUsage);
  return Number(value);
}

/** `off`, `on`, or `key=value,...` with numbers (or `none` for a ceiling switched off). */
function parseGate(value: string, flag: string): boolean | Record<string, number | null> {
  if (value === 'off') return false;
  if (value === 'on') return true;
  const settings: Record<string, number | null> = {};
  for (const pair of value.split(',')) {
    const [, key, text] = /^([A-Za-z][A-Za-z0-9]*)=(.+)$/.exec(pair.trim()) ?? [];
    const number = text === 'none' ? null : Number(text);
    if (key === undefined || (number !== null && !Number.isFinite(number))) {
      throw new UsageError(`${flag} must be off, on, or key=number pairs separated by commas (e.g. ${flag} ${flag === '--latency' ? 'maxP99Ratio=1.5' : 'off'}), not "${value}"`, canaryStartUsage);
    }
    settings[key] = number;
  }
  return settings;
}

function help(usage: string): number {
  process.stdout.write(usage);
  return 0;
}
