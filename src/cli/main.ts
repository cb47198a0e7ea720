import { readFileSync } from 'node:fs';
import { CommandFailure, mainUsage, UsageError } from './usage.js';

interface Command {
  run: (args: string[]) => number | Promise<number>;
  usage: string;
}

/**
 * Each command's module, loaded when that command runs: `status` or `weights` never load the supervisor, and the
 * supervisor never holds the code of the other commands.
 */
const commands: Record<string, () => Promise<Command>> = {
  start: async () => {
    // Before the supervisor's modules load: loading them is what first grows the young generation.
    const { collectAfterBursts, keepTickObjectShape, keepYoungGenerationSmall, loadWithoutOptimizing } = await import('../shared/heap-policy.js');
    keepYoungGenerationSmall();
    keepTickObjectShape();
    collectAfterBursts();
    const { start, startUsage } = await loadWithoutOptimizing(() => import('./start.js'));
    return { run: start, usage: startUsage };
  },
  status: async () => { const { status, statusUsage } = await import('./status.js'); return { run: status, usage: statusUsage }; },
  init: async () => { const { init, initUsage } = await import('./init.js'); return { run: init, usage: initUsage }; },
  weights: async () => { const edit = await import('./edit.js'); return { run: edit.weights, usage: edit.weightsUsage }; },
  deploy: async () => { const edit = await import('./edit.js'); return { run: edit.deployCommand, usage: edit.deployUsage }; },
  scale: async () => { const edit = await import('./edit.js'); return { run: edit.scaleCommand, usage: edit.scaleUsage }; },
  promote: async () => { const edit = await import('./edit.js'); return { run: edit.promoteCommand, usage: edit.promoteUsage }; },
  set: async () => { const edit = await import('./edit.js'); return { run: edit.set, usage: edit.setUsage }; },
  rollback: async () => { const edit = await import('./edit.js'); return { run: edit.rollback, usage: edit.rollbackUsage }; },
  reload: async () => { const edit = await import('./edit.js'); return { run: edit.reload, usage: edit.reloadUsage }; },
  restart: async () => { const edit = await import('./edit.js'); return { run: edit.restart, usage: edit.restartUsage }; },
  'heap-snapshot': async () => { const diagnose = await import('./diagnose.js'); return { run: diagnose.heapSnapshot, usage: diagnose.heapSnapshotUsage }; },
  logs: async () => { const { logs, logsUsage } = await import('./logs.js'); return { run: logs, usage: logsUsage }; },
  inspect: async () => { const diagnose = await import('./diagnose.js'); return { run: diagnose.inspect, usage: diagnose.inspectUsage }; },
  'split-clients': async () => { const { splitClients, splitClientsUsage } = await import('./split-clients.js'); return { run: splitClients, usage: splitClientsUsage }; },
  canary: async () => { const { canary, canaryUsage } = await import('./canary.js'); return { run: canary, usage: canaryUsage }; },
};

function packageVersion(): string {
  const manifest = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

/** The loader of a command by its name; undefined for a name that is none (also "constructor" and the like). */
function commandNamed(name: string): (() => Promise<Command>) | undefined {
  return Object.hasOwn(commands, name) ? commands[name] : undefined;
}

/** Runs one command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  // Output into a pipe whose reader left (`| head`): a command has nothing more to say and ends; the supervisor
  // (`start`) keeps serving, its lines still reaching log files and `graycluster logs`.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (name !== 'start' && error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    });
  }
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    // `help <command>` is that command's --help; `help bogus` is as wrong as `graycluster bogus`.
    const topic = name === 'help' && args[0] !== undefined && args[0] !== 'help' ? args[0] : undefined;
    const loader = topic === undefined ? undefined : commandNamed(topic);
    if (topic !== undefined && !loader) {
      process.stderr.write(`graycluster: unknown command "${topic}"\n\n${mainUsage}`);
      return 2;
    }
    process.stdout.write((await loader?.())?.usage ?? mainUsage);
    return 0;
  }
  if (name === '-v' || name === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  let command: Command | undefined;
  try {
    command = await commandNamed(name)?.();
    if (!command) throw new UsageError(`unknown command "${name}"`, mainUsage);
    return await command.run(args);
  } catch (error) {
    // parseArgs throws TypeErrors with codes like ERR_PARSE_ARGS_UNKNOWN_OPTION and a message naming the flag.
    const code = (error as { code?: string }).code ?? '';
    if (error instanceof UsageError || code.startsWith('ERR_PARSE_ARGS')) {
      const usage = error instanceof UsageError ? error.usage : command?.usage ?? mainUsage;
      process.stderr.write(`graycluster: ${negativeNumberMessage(args, code) ?? (error as Error).message}\n\n${usage}`);
      return 2;
    }
    // Loaded only on the way out with an error: the command that threw them has loaded their modules already.
    const [{ ConfigError }, { NotRunningError }] = await Promise.all([import('../config/load.js'), import('./remote.js')]);
    if (error instanceof ConfigError || error instanceof NotRunningError || error instanceof CommandFailure) {
      process.stderr.write(`graycluster: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/**
 * parseArgs reads a negative number as a flag ("Unknown option '-3'", or a flag's "argument is ambiguous"), and
 * no value graycluster takes can be negative (counts, weights, ports, line counts): say that instead.
 */
function negativeNumberMessage(args: string[], code: string): string | undefined {
  if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return undefined;
  const at = args.findIndex((arg) => /^-\d/.test(arg));
  if (at < 0) return undefined;
  const flag = code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && args[at - 1]?.startsWith('-') ? `${args[at - 1]} ` : '';
  return `${flag}${args[at]}: no value here can be negative (counts, weights, ports and line counts are 0 or more)`;
}
