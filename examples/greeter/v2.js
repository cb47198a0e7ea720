// The canary: same service, new behaviour. It answers JSON and tells who answered.
import http from 'node:http';

const greeting = process.env.GREETING ?? 'hello';

http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(`${JSON.stringify({ message: `${greeting} from v2`, version: 'v2', pid: process.pid, path: req.url })}\n`);
}).listen(process.env.PORT ?? 3000, () => {
  console.log(`greeter v2 listening on ${process.env.PORT ?? 3000}`);
});
