import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makeFolder } from '../shared/make-folder.js';
import { refuseEmpty } from './options.js';
import { CommandFailure, UsageError } from './usage.js';

export const initUsage = `Usage: graycluster init [dir] [--force]

Writes a starter graycluster.json into dir (default: the current folder): two versions
of one app, v1 stable and v2 canary, routed by ?version=, a header or a cookie, and
10% of users (sticky by cookie) on v2. Point each version's "entry" at your app.

Options:
  -f, --force   Overwrite an existing graycluster.json
  -h, --help    Show this help
`;

export const starterConfig = {
  $schema: './node_modules/graycluster/config/graycluster.schema.json',
  server: { host: '0.0.0.0', port: 8000 },
  dashboard: { host: '127.0.0.1', port: 9000 },
  versions: {
    v1: { entry: './server.js', workers: 2 },
    v2: { entry: './server.js', workers: 1, env: { FEATURE_FLAG: 'on' } },
  },
  routing: {
    default: 'v1',
    rules: [{ query: 'version' }, { header: 'x-version' }, { cookie: 'version' }],
    weights: { v1: 90, v2: 10 },
    sticky: { key: 'cookie:gc_uid', cookie: 'gc_uid' },
  },
};

export function init(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    options: { force: { type: 'boolean', short: 'f' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(initUsage);
    return 0;
  }
  refuseEmpty({ values, positionals }, initUsage, ['the folder']);
  if (positionals.length > 1) throw new UsageError(`init takes one folder, not ${positionals.length}`, initUsage);
  const folder = path.resolve(positionals[0] ?? '.');
  const file = path.join(folder, 'graycluster.json');
  if (existsSync(file) && !values.force) {
    process.stderr.write(`graycluster: ${file} already exists (use --force to overwrite it)\n`);
    return 1;
  }
  try {
    makeFolder(folder);
  } catch (error) {
    throw new CommandFailure(`cannot create the folder ${folder}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (init takes a folder and writes graycluster.json into it)`);
  }
  // Owner-only: the file is where dashboard.token goes. (Overwriting an existing file keeps its mode.)
  writeFileSync(file, `${JSON.stringify(starterConfig, null, 2)}\n`, { mode: 0o600 });
  process.stdout.write(`wrote ${file}\nnext: point versions.v1.entry and versions.v2.entry at your app, then run: graycluster start --config ${path.relative(process.cwd(), file) || file}\n`);
  return 0;
}
