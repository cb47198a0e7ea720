/**
 * Every benchmark scenario, in the order `node bench/run.js` runs them and results.md lists them.
 *
 * A scenario is { name, title, run } where `run({ settings, log })` starts what it measures, stops everything it
 * started (in a finally: the processes module also kills leftovers on exit, error and Ctrl-C), and resolves with
 * { text, markdown }: the table printed to the terminal and its section of results.md (run.js adds the date,
 * Node version, CPU and command). `settings` holds the command-line options; `log` prints progress.
 * Start targets with lib/targets.js (graycluster on ephemeral ports and 127.0.0.1 only), drive load with
 * lib/wrk.js when wrk is installed (lib/load.js, autocannon, otherwise), and read CPU with lib/procfs.js and memory with lib/toolkit.js (sampleRss).
 */
import * as dashboard from './dashboard.js';
import * as hotswap from './hotswap.js';
import * as seed from './seed.js';
import * as throughput from './throughput.js';
import * as topology from './topology.js';

export const scenarios = [
  { name: 'seed', title: 'Seed incident: 400 connections against an app that answers after 1 s', run: seed.run },
  { name: 'throughput', title: 'Throughput: node:cluster vs graycluster vs a keep-alive proxy, 2 workers', run: throughput.run },
  { name: 'topology', title: 'Behind nginx: pooled connections, random users, 50/50 and 90/10 (needs nginx; wrk if installed)', run: topology.run },
  { name: 'hotswap', title: 'Hot-swap latency: config file written → routing switched, 20 changes', run: hotswap.run },
  { name: 'dashboard', title: 'Dashboard overhead: throughput with 10 dashboards open vs none', run: dashboard.run },
];
