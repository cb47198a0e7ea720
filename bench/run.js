#!/usr/bin/env node
/**
 * graycluster's benchmarks: `npm run bench` (builds, then runs every scenario) or
 * `node bench/run.js [scenario…] [options]`. Each scenario prints its table and rewrites its section of
 * bench/results.md. Everything runs on 127.0.0.1 with ephemeral ports; every process started is stopped at the end,
 * on error and on Ctrl-C.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { installCleanup, killAll } from './lib/toolkit.js';
import { environment, environmentMarkdown, writeSection } from './lib/report.js';
import { benchDir, repoDir } from './lib/targets.js';
import { scenarios } from './scenarios/index.js';

const usage = `Usage: node bench/run.js [scenario…] [options]   (no scenario: all of them)

Scenarios:
${scenarios.map((scenario) => `  ${scenario.name.padEnd(12)}${scenario.title}`).join('\n')}

Options:
  --runs <n>             throughput, topology: runs per target (default 3)
  --seconds <s>          throughput, topology: seconds per run (default 6)
  --connections <n>      throughput: connections (default 50); topology: connections to nginx (default 64)
  --seed-seconds <s>     seed: seconds of load (default 20)
  --recovery-cap <s>     seed: longest wait for recovery (default 150)
  --cpu-prof             throughput: run graycluster's primary (and so its workers, which inherit execArgv)
                         with --cpu-prof; profiles go to bench/profiles/ or --cpu-prof-dir <dir>
  --no-write             print the tables only; leave results.md alone
  -h, --help             show this help
`;

/** Longest a whole run may take before everything is killed: the scenarios bound themselves well inside it. */
const watchdogMs = 20 * 60 * 1000;

function positiveNumber(value, option) {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new Error(`${option} must be a positive number, not "${value}"`);
  return number;
}

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      runs: { type: 'string' },
      seconds: { type: 'string' },
      connections: { type: 'string' },
      'seed-seconds': { type: 'string' },
      'recovery-cap': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'cpu-prof-dir': { type: 'string' },
      'no-write': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const cpuProfDir = values['cpu-prof'] || values['cpu-prof-dir'] ? path.resolve(values['cpu-prof-dir'] ?? path.join(benchDir, 'profiles')) : undefined;
  const unknown = positionals.filter((name) => !scenarios.some((scenario) => scenario.name === name));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.map((name) => `"${name}"`).join(', ')}`);
  return {
    help: values.help,
    write: !values['no-write'],
    selected: positionals.length ? scenarios.filter((scenario) => positionals.includes(scenario.name)) : scenarios,
    settings: {
      seed: { seconds: positiveNumber(values['seed-seconds'], '--seed-seconds'), recoveryCapSeconds: positiveNumber(values['recovery-cap'], '--recovery-cap') },
      throughput: { runs: positiveNumber(values.runs, '--runs'), seconds: positiveNumber(values.seconds, '--seconds'), connections: positiveNumber(values.connections, '--connections'), cpuProfDir },
      topology: { runs: positiveNumber(values.runs, '--runs'), seconds: positiveNumber(values.seconds, '--seconds'), connections: positiveNumber(values.connections, '--connections') },
    },
  };
}

/** The command as the reader would type it to get the same run. */
function commandLine(argv) {
  const args = argv.join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `node bench/run.js${args ? ` ${args}` : ''}`;
}

async function main() {
  const argv = process.argv.slice(2);
  let options;
  try {
    options = parse(argv);
  } catch (error) {
    process.stderr.write(`bench: ${error.message}\n\n${usage}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(usage);
    return 0;
  }
  installCleanup((line) => process.stderr.write(`\nbench: ${line}\n`));
  const log = (line) => process.stdout.write(`${line}\n`);
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: still running after ${watchdogMs / 60_000} min: killing everything\n`);
    killAll();
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();

  const [recentLoad] = os.loadavg();
  if (recentLoad > 1) log(`bench: warning: load average ${recentLoad.toFixed(2)} before starting: other work on this machine will skew the figures`);
  const resultsFile = path.join(benchDir, 'results.md');
  const order = scenarios.map((scenario) => scenario.name);
  const command = commandLine(argv);
  let failed = false;
  for (const scenario of options.selected) {
    log(`── ${scenario.name}: ${scenario.title}`);
    const started = performance.now();
    try {
      const env = environment();
      const result = await scenario.run({ settings: Object.fromEntries(Object.entries(options.settings[scenario.name] ?? {}).filter(([, value]) => value !== undefined)), log });
      const minutes = ((performance.now() - started) / 60_000).toFixed(1);
      log(`\n${result.text}\n(${minutes} min)\n`);
      // A scenario that could not run (nginx missing, say) leaves the results of its last real run alone.
      if (options.write && !result.skipped) {
        writeSection(resultsFile, scenario.name, `${result.markdown.replace(/\n/, `\n\n${environmentMarkdown(env, command)}; took ${minutes} min\n`)}`, order);
        log(`wrote the "${scenario.name}" section of ${path.relative(repoDir, resultsFile)}\n`);
      }
    } catch (error) {
      failed = true;
      process.stderr.write(`bench: scenario ${scenario.name} failed: ${error.stack ?? error}\n\n`);
    }
  }
  clearTimeout(watchdog);
  return failed ? 1 : 0;
}

process.exitCode = await main();
