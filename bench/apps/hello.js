// A hello-world service that knows nothing of graycluster: the same file runs under every throughput target.
import http from 'node:http';

const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end('hello world\n');
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  // Where it really listens, for a parent that gave it port 0 (ignored by graycluster and node:cluster).
  process.send?.({ kind: 'hello-listening', port: server.address().port });
});
