import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.js';
import { canary, canaryUsage } from './canary.js';
import * as edit from './edit.js';
import { init, initUsage } from './init.js';
import { NotRunningError } from './remote.js';
import { start, startUsage } from './start.js';
import { status, statusUsage } from './status.js';
import { mainUsage, UsageError } from './usage.js';

const commands: Record<string, { run: (args: string[]) => number | Promise<number>; usage: string }> = {
  start: { run: start, usage: startUsage },
  status: { run: status, usage: statusUsage },
  init: { run: init, usage: initUsage },
  weights: { run: edit.weights, usage: edit.weightsUsage },
  deploy: { run: edit.deployCommand, usage: edit.deployUsage },
  scale: { run: edit.scaleCommand, usage: edit.scaleUsage },
  promote: { run: edit.promoteCommand, usage: edit.promoteUsage },
  set: { run: edit.set, usage: edit.setUsage },
  rollback: { run: edit.rollback, usage: edit.rollbackUsage },
  reload: { run: edit.reload, usage: edit.reloadUsage },
  restart: { run: edit.restart, usage: edit.restartUsage },
  canary: { run: canary, usage: canaryUsage },
};

function packageVersion(): string {
  const manifest = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

/** Runs one command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && args[0] ? commands[args[0]] : undefined;
    process.stdout.write(topic?.usage ?? mainUsage);
    return 0;
  }
  if (name === '-v' || name === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command = commands[name];
  try {
    if (!command) throw new UsageError(`unknown command "${name}"`, mainUsage);
    return await command.run(args);
  } catch (error) {
    // parseArgs throws TypeErrors with codes like ERR_PARSE_ARGS_UNKNOWN_OPTION and a message naming the flag.
    const code = (error as { code?: string }).code ?? '';
    if (error instanceof UsageError || code.startsWith('ERR_PARSE_ARGS')) {
      const usage = error instanceof UsageError ? error.usage : command?.usage ?? mainUsage;
      process.stderr.write(`graycluster: ${(error as Error).message}\n\n${usage}`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof NotRunningError) {
      process.stderr.write(`graycluster: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
