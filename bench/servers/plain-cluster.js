// The baseline: node:cluster's own round-robin over $WORKERS workers running $APP, which cannot route by version.
// The workers listen wherever the app says ($PORT is 0: one free port, shared); once all of them do, this tells its
// parent (over IPC) the port and the workers' pids.
import cluster from 'node:cluster';

const workers = Number(process.env.WORKERS ?? 2);
cluster.schedulingPolicy = cluster.SCHED_RR;  // The default on Linux; said here because it is what we compare with.
cluster.setupPrimary({ exec: process.env.APP });

const listening = new Map();
cluster.on('listening', (worker, address) => {
  listening.set(worker.process.pid, address.port);
  if (listening.size === workers) process.send?.({ kind: 'ready', port: address.port, workerPids: [...listening.keys()] });
});
cluster.on('exit', (worker, code, signal) => {
  if (!worker.exitedAfterDisconnect) console.error(`plain-cluster: worker ${worker.process.pid} died (${signal ?? code})`);
});
for (let index = 0; index < workers; index++) cluster.fork({ PORT: '0' });

process.on('SIGTERM', () => {
  for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGKILL');
  process.exit(0);
});
