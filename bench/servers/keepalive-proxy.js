// What teams build instead of graycluster: a parent HTTP proxy in front of one child process per version, with a
// normal keep-alive agent and a generous socket limit, routing by ?version= ($VERSIONS, comma-separated, the first
// is the default). Tells its parent (over IPC) its port and the children's pids.
import { fork } from 'node:child_process';
import http from 'node:http';

const versions = (process.env.VERSIONS ?? 'v1,v2').split(',');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });

const children = await Promise.all(versions.map((version) => new Promise((resolve, reject) => {
  const child = fork(process.env.APP, [], { env: { ...process.env, PORT: '0', APP_VERSION: version } });
  child.once('error', reject);
  child.once('exit', (code) => reject(new Error(`child ${version} exited (${code}) before listening`)));
  child.on('message', (message) => {
    if (message?.kind === 'hello-listening') resolve({ version, pid: child.pid, port: message.port });
  });
})));
const ports = new Map(children.map((child) => [child.version, child.port]));

// Hop-by-hop headers belong to one connection: a client's `connection: close` must not close the pooled upstream one.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
const endToEnd = (headers) => Object.fromEntries(Object.entries(headers).filter(([name]) => !hopByHop.has(name)));

const server = http.createServer((req, res) => {
  const version = new URL(req.url, 'http://proxy').searchParams.get('version');
  const port = ports.get(version) ?? ports.get(versions[0]);
  const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: endToEnd(req.headers), agent }, (answer) => {
    res.writeHead(answer.statusCode, endToEnd(answer.headers));
    answer.pipe(res);
  });
  upstream.on('error', () => {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end('bad gateway\n');
  });
  req.pipe(upstream);
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ kind: 'ready', port: server.address().port, workerPids: children.map((child) => child.pid) });
});
process.on('SIGTERM', () => {
  for (const child of children) process.kill(child.pid, 'SIGKILL');
  process.exit(0);
});
