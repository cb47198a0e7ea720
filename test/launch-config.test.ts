import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConfigError, loadConfig, resolveConfig } from '../src/config/load.js';
import type { ConfigFile } from '../src/config/types.js';

const file = path.join(os.tmpdir(), 'graycluster.json');
const withV1 = (launch: Partial<ConfigFile['versions'][string]>): ConfigFile => ({
  versions: { v1: { entry: './app.js', ...launch } },
  routing: { default: 'v1' },
});
const resolve = (launch: Partial<ConfigFile['versions'][string]>) => resolveConfig(file, withV1(launch)).versions.get('v1')!;

test('nodeArgs, args and cwd default to none and the supervisor\'s folder; cwd resolves against the config file\'s folder', (t) => {
  t.like(resolve({}), { nodeArgs: [], args: [], cwd: null });
  t.like(resolve({ nodeArgs: ['--enable-source-maps'], args: ['--port', '0'], cwd: '.' }), { nodeArgs: ['--enable-source-maps'], args: ['--port', '0'], cwd: os.tmpdir() });
});

test('a nodeArgs item that is not a flag, or a flag that would stop the worker running the app, is refused naming the key', (t) => {
  const refused = (flag: string, message: RegExp) => t.throws(() => resolve({ nodeArgs: ['--enable-source-maps', flag] }), { instanceOf: ConfigError, message });
  refused('256', /versions\.v1\.nodeArgs\[1\] \("256"\) must be a node flag starting with "-"; write a flag and its value as one item/);
  refused('--', /versions\.v1\.nodeArgs\[1\] \("--"\) would end node's options/);
  refused('--eval=1', /versions\.v1\.nodeArgs\[1\] \("--eval=1"\) is not allowed: it makes node run something other than the worker runtime/);
  refused('--watch', /is not allowed: it makes node restart the app by itself/);
  refused('--inspect=127.0.0.1:9229', /is not allowed: it opens a debugger that lets whoever reaches its port run code in the worker/);
  refused('--inspect-brk', /--inspect-brk holds the worker until it is killed as not ready/);
});

test('a cwd that is not a folder is refused naming the key', (t) => {
  t.throws(() => resolve({ cwd: './no-such-folder' }), { message: `${file}: versions.v1.cwd is not a folder: ${path.join(os.tmpdir(), 'no-such-folder')}` });
});

test('the schema gives nodeArgs, args and cwd their types, naming the key', (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-launch-config-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const configFile = path.join(folder, 'graycluster.json');
  const load = (launch: Record<string, unknown>) => {
    writeFileSync(configFile, JSON.stringify({ versions: { v1: { entry: './app.js', ...launch } }, routing: { default: 'v1' } }));
    return () => loadConfig(configFile);
  };
  t.throws(load({ nodeArgs: '--enable-source-maps' }), { message: /versions\.v1\.nodeArgs must be array/ });
  t.throws(load({ args: [1] }), { message: /versions\.v1\.args\.0 must be string/ });
  t.throws(load({ cwd: '' }), { message: /versions\.v1\.cwd must NOT have fewer than 1 characters/ });
});
