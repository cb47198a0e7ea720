#!/usr/bin/env node
/**
 * Instructions per new connection (or, with `--mode alternating`, per request on keep-alive connections whose
 * requests ask for v1 or v2 at random), in the process in front and in the workers, counted by valgrind's
 * callgrind: `node bench/instructions.js [--base <another build's bin/graycluster.js>] [options]`.
 *
 * CPU time per connection from /proc swings by a factor of two between identical runs when the machine is shared
 * (an A/A pair of the same build measured 0.5× to 1.6×), so a patch worth 20% cannot be seen that way. An
 * instruction count does not depend on what else runs: each target runs under callgrind (its children traced),
 * answers wrk (`connection: close`, the hello app, one worker) for a while, and the count over the load, less the
 * same process's count over an equal idle stretch (timers, stats), is divided by the connections answered.
 * Callgrind runs code about 50× slower, so the load is a few hundred connections, and the timeouts of graycluster
 * are raised to match. Needs `valgrind` and `wrk` (Debian: apt-get install valgrind wrk).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { childPids } from './lib/procfs.js';
import { app, repoDir } from './lib/targets.js';
import { findExecutable, installCleanup, makeConfig, sleep, startProcess, temporaryFolder, waitFor, waitForRunState } from './lib/toolkit.js';
import { runWrk, wrkPath } from './lib/wrk.js';

const usage = `Usage: node bench/instructions.js [options]

Counts instructions per new connection (wrk, connection: close, bench/apps/hello.js, 1 worker) in the process in
front and in the worker, under valgrind's callgrind: node:cluster, this build, and --base if given. With --mode
alternating: per request, wrk keeping its connections open and asking for /?version=v1 or /?version=v2 at random
(graycluster v1 ×1 and v2 ×1 routed by that query, node:cluster 2 workers), the workers' counts summed.

Options:
  --mode <mode>        connection (default), keep-alive (one worker, every request /?version=v1 on kept
                       connections, graycluster routing by that query) or alternating
  --base <bin>         another build's bin/graycluster.js, measured too (main, say, to compare a patch with)
  --seconds <s>        seconds of load, and of the idle stretch subtracted (default 15)
  --connections <n>    wrk connections (default 1: no batching, the same work per connection in every target)
  --rounds <n>         times each target is measured (default 1)
  -h, --help           show this help
`;

const { values } = parseArgs({
  options: {
    base: { type: 'string' }, mode: { type: 'string', default: 'connection' }, seconds: { type: 'string', default: '15' }, connections: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '1' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
if (!['connection', 'keep-alive', 'alternating'].includes(values.mode)) throw new Error(`--mode must be connection, keep-alive or alternating, not "${values.mode}"`);
const alternating = values.mode === 'alternating';
const keepAlive = values.mode === 'keep-alive';
for (const option of ['seconds', 'connections', 'rounds']) {
  if (!(Number(values[option]) > 0)) throw new Error(`--${option} must be a positive number, not "${values[option]}"`);
}
const valgrind = findExecutable('valgrind', { envVariable: 'VALGRIND' });
if (!valgrind || !wrkPath()) {
  console.error('bench/instructions.js needs valgrind and wrk (Debian: apt-get install valgrind wrk)');
  process.exit(2);
}
installCleanup();

const seconds = Number(values.seconds);
const connections = Number(values.connections);
const hello = app('hello.js');
// Everything under callgrind is ~50× slower: the worker must not be taken for stuck.
const slowServer = { readyTimeoutMs: 120_000, heartbeatTimeoutMs: 60_000, unresponsiveRestartMs: 120_000, handoffTimeoutMs: 20_000 };

/** Starts a target under callgrind; resolves with its url, its pid and its worker's pid once the worker answers. */
async function start(target, folder) {
  const callgrind = [valgrind, '--tool=callgrind', '--smc-check=all-non-file', '--trace-children=yes', `--callgrind-out-file=${folder}/callgrind.%p`];
  if (target.bin === undefined) {
    const child = startProcess('node:cluster', callgrind[0], [...callgrind.slice(1), process.execPath, path.join(repoDir, 'bench/servers/plain-cluster.js')], { ipc: true, env: { APP: hello, WORKERS: alternating ? '2' : '1' } });
    const ready = await child.waitForMessage((message) => message.kind === 'ready', 180_000);
    return { child, url: `http://127.0.0.1:${ready.port}/`, workerPids: ready.workerPids };
  }
  const configFile = path.join(folder, 'graycluster.json');
  const versions = alternating ? { v1: { entry: hello, workers: 1 }, v2: { entry: hello, workers: 1 } } : { v1: { entry: hello, workers: 1 } };
  writeFileSync(configFile, JSON.stringify(makeConfig(versions, alternating || keepAlive ? { rules: [{ query: 'version' }] } : {}, slowServer)));
  const child = startProcess(target.name, callgrind[0], [...callgrind.slice(1), process.execPath, target.bin, 'start', '--config', configFile], { cwd: folder, env: { GRAYCLUSTER_TOKEN: undefined } });
  const state = await waitForRunState(configFile, child.pid, { timeoutMs: 180_000, describe: child.output });
  const url = `http://127.0.0.1:${state.server.port}/`;
  await waitFor(async () => (await fetch(url, { headers: { connection: 'close' } }).then((reply) => reply.status, () => 0)) === 200, { timeoutMs: 180_000, intervalMs: 500, what: `${target.name}: a first answer` });
  return { child, url, workerPids: childPids(child.pid) };
}

/** Instructions counted since the last zeroing, per process: callgrind_control dumps, the file names the pid. */
function dump(folder, pids, label) {
  for (const pid of pids) execFileSync('callgrind_control', ['--dump=' + label, String(pid)], { stdio: 'ignore' });
  return pids.map((pid) => {
    const files = readdirSync(folder).filter((file) => file.startsWith(`callgrind.${pid}.`));
    const counts = files.map((file) => Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(path.join(folder, file), 'utf8'))?.[1] ?? 0));
    return Math.max(0, ...counts);
  });
}

const zero = (pids) => { for (const pid of pids) execFileSync('callgrind_control', ['--zero', String(pid)], { stdio: 'ignore' }); };

async function measure(target) {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-callgrind-'));
  const removeFolder = temporaryFolder(folder);
  let started;
  try {
    started = await start(target, folder);
    const pids = [started.child.pid, ...started.workerPids];
    const load = () => alternating || keepAlive
      ? runWrk({ url: started.url, paths: alternating ? ['/?version=v1', '/?version=v2'] : ['/?version=v1'], connections, durationSeconds: seconds })
      : runWrk({ url: started.url, connections, durationSeconds: seconds, headers: { connection: 'close' } });
    await load();  // Warm-up: the JIT settles.
    zero(pids);
    await sleep(seconds * 1000);
    const idle = dump(folder, pids, 'idle');
    for (const file of readdirSync(folder).filter((name) => /^callgrind\.\d+\.\d+$/.test(name))) rmSync(path.join(folder, file));
    zero(pids);
    const result = await load();
    const loaded = dump(folder, pids, 'load');
    const failed = result.completed - result.ok + result.timeouts + result.connectionErrors;
    const perConnection = loaded.map((count, index) => (count - idle[index] * result.seconds / seconds) / result.completed / 1000);
    return { connections: result.completed, failed, front: perConnection[0], worker: perConnection.slice(1).reduce((sum, count) => sum + count, 0) };
  } finally {
    await started?.child.stop(0);
    removeFolder();
  }
}

const targets = [
  { name: 'node:cluster (1 worker)', bin: undefined },
  { name: 'graycluster (this build)', bin: path.join(repoDir, 'bin/graycluster.js') },
  ...(values.base ? [{ name: `graycluster (${values.base})`, bin: path.resolve(values.base) }] : []),
];
const unit = alternating || keepAlive ? 'request' : 'connection';
const how = alternating ? 'keep-alive, v1 or v2 at random per request' : keepAlive ? 'keep-alive, every request for v1' : 'connection: close';
console.log(`k instructions per ${unit} (callgrind; wrk -c ${connections}, ${how}; ${seconds} s of load less ${seconds} s idle)\n`);
console.log(`| target | round | ${unit}s | failed | in front | worker${alternating ? 's' : ''} |\n| :-- | --: | --: | --: | --: | --: |`);
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const target of targets) {
    const row = await measure(target);
    console.log(`| ${target.name} | ${round} | ${row.connections} | ${row.failed} | ${row.front.toFixed(0)}k | ${row.worker.toFixed(0)}k |`);
  }
}
process.exit(0);
