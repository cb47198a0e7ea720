// The stable version of a tiny service. It knows nothing of graycluster: it listens on $PORT like any app.
import http from 'node:http';

const greeting = process.env.GREETING ?? 'hello';

http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end(`${greeting} from v1 (pid ${process.pid})\n`);
}).listen(process.env.PORT ?? 3000, () => {
  console.log(`greeter v1 listening on ${process.env.PORT ?? 3000}`);
});
