/**
 * The entry of every worker process. It creates the runtime, takes over the app's listen, loads the team's
 * unmodified app, and feeds the app's server the client sockets the primary hands over.
 */
import type { Server } from 'node:http';
import net from 'node:net';
import { displayPath } from '../shared/display-path.js';
import { keepTickObjectShape } from '../shared/heap-policy.js';
import { onPrimaryMessage, sendToPrimary } from '../ipc/channel.js';
import { decodeWorkerEnv } from '../ipc/worker-env.js';
import { runEntry } from './entry.js';
import { interceptListen, originalListen } from './intercept.js';
import { WorkerRuntime } from './worker-runtime.js';

// First: a full collection may run while the app loads, and nextTick's slow path, once taken, is for good.
keepTickObjectShape();
const env = decodeWorkerEnv();
const runtime = new WorkerRuntime({ env, hooks: { send: sendToPrimary, exit: (code) => process.exit(code) } });

interceptListen({
  address: { address: env.host, family: net.isIPv6(env.host) ? 'IPv6' : 'IPv4', port: env.port },
  port: String(env.port),
  adopt(server) {
    runtime.adopt(server as Server);
    // Tell the primary once the app's listen callback has run, as a real listen would have.
    server.once('listening', () => setImmediate(() => runtime.announce()));
  },
});

onPrimaryMessage((message, handle) => runtime.receive(message, handle));

// Ctrl-C reaches every process in the group; the primary decides when workers stop. SIGTERM sent to this
// worker alone drains it like the primary would.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => runtime.startDrain());

runtime.stats.watchEventLoop();
setInterval(() => sendToPrimary({ kind: 'stats', stats: runtime.snapshot() }), env.statsIntervalMs).unref();
Reflect.apply(originalListen, runtime.forwardServer, [{ path: runtime.forwardPath, exclusive: true }]);

try {
  await runEntry(env.entry);
} catch (error) {
  const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(`graycluster: version ${env.version} failed to load ${env.entry}:\n${reason}`);
  const sent = sendToPrimary({ kind: 'fatal', message: `failed to load ${displayPath(env.entry)}: ${reason.split('\n')[0]}` }, undefined, () => process.exit(1));
  if (!sent) process.exit(1);
}
