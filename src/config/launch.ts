import { statSync } from 'node:fs';
import path from 'node:path';

/** How a version's workers are started: node's own flags, the app's arguments, and its working folder. */
export interface VersionLaunch {
  nodeArgs: string[];
  args: string[];
  /** Absolute; null: the supervisor's working folder. */
  cwd: string | null;
}

/** Node flags that would stop the worker from running the app under the supervisor, and why. */
const refusedFlags: Array<[names: string[], why: string]> = [
  [['-e', '--eval', '-p', '--print', '-c', '--check', '-i', '--interactive', '--test', '--run', '-h', '--help', '-v', '--version', '--v8-options', '--completion-bash'],
    'makes node run something other than the worker runtime, so the worker would never start'],
  [['--watch', '--watch-path', '--watch-preserve-output'],
    'makes node restart the app by itself, behind the supervisor (use `graycluster deploy` or `reload` instead)'],
  [['--inspect', '--inspect-brk', '--inspect-wait', '--inspect-port', '--debug-port', '--inspect-publish-uid'],
    'opens a debugger that lets whoever reaches its port run code in the worker; node:cluster gives each new worker the next port above the primary\'s, so ports move with every restart and clash between instances on one host, and --inspect-brk holds the worker until it is killed as not ready'],
];
const refused = new Map(refusedFlags.flatMap(([names, why]) => names.map((name) => [name, why] as const)));

/**
 * Validates a version's `nodeArgs`, `args` and `cwd` (types are the schema's job) and resolves `cwd` against the
 * config file's folder, like `entry`. `fail` throws naming the key.
 */
export function resolveLaunch(
  key: string,
  version: { nodeArgs?: string[]; args?: string[]; cwd?: string },
  folder: string,
  fail: (key: string, message: string) => never,
): VersionLaunch {
  const nodeArgs = version.nodeArgs ?? [];
  nodeArgs.forEach((flag, index) => {
    const at = `${key}.nodeArgs[${index}]`;
    if (!flag.startsWith('-') || flag === '-') {
      fail(at, `(${JSON.stringify(flag)}) must be a node flag starting with "-"; write a flag and its value as one item: "--max-old-space-size=256"`);
    }
    if (flag === '--') fail(at, '("--") would end node\'s options: what follows would be taken for the script to run');
    const name = flag.split('=', 1)[0] ?? flag;
    const why = refused.get(name);
    if (why) fail(at, `(${JSON.stringify(flag)}) is not allowed: it ${why}`);
  });
  let cwd: string | null = null;
  if (version.cwd !== undefined) {
    cwd = path.resolve(folder, version.cwd);
    let isFolder = false;
    try {
      isFolder = statSync(cwd).isDirectory();
    } catch {}
    if (!isFolder) fail(`${key}.cwd`, `is not a folder: ${cwd}`);
  }
  return { nodeArgs, args: version.args ?? [], cwd };
}
