import { readdirSync } from 'node:fs';
import http from 'node:http';
import test from 'ava';
import { makeConfig, startCluster } from './helpers/cluster.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** A GET with the path sent exactly as written: a URL-based client would resolve `..` before sending it. */
function getRaw(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer for ${path} within 20 s`)));
    req.on('error', reject);
  });
}

/** The specifiers a compiled module imports from (static `import … from`, `export … from`, bare `import '…'`). */
function importsOf(source: string): string[] {
  return [...source.matchAll(/^(?:(?:import|export)\b[^'"\n]*\bfrom\s*|import\s*)'([^']+)';$/gm)].map((match) => match[1]!);
}

test('the page\'s modules are served without the token as JavaScript under the page\'s CSP, importing only each other', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const port = cluster.dashboardPort;
  const page = await getRaw(port, '/');
  const entry = /<script type="module" src="([^"]+)"><\/script>/.exec(page.text)?.[1];
  t.is(entry, '/client/app.js');

  // Every module the browser will load, found as the browser finds them: from the entry, import by import.
  const loaded = new Set<string>();
  const queue = [entry!];
  while (queue.length > 0) {
    const path = queue.shift()!;
    if (loaded.has(path)) continue;
    loaded.add(path);
    const module = await getRaw(port, path);
    t.is(module.status, 200, path);
    t.is(module.headers['content-type'], 'text/javascript; charset=utf-8', path);
    t.is(module.headers['x-content-type-options'], 'nosniff', path);
    t.is(module.headers['content-security-policy'], page.headers['content-security-policy'], path);
    t.notRegex(module.text, /sourceMappingURL/, path);
    for (const specifier of importsOf(module.text)) {
      t.regex(specifier, /^\.\/[a-z][a-z-]*\.js$/, `${path} imports ${specifier}: only modules beside it`);
      queue.push(new URL(specifier, `http://dashboard${path}`).pathname);
    }
  }
  t.true(loaded.has('/client/format.js') && loaded.has('/client/feed.js'), [...loaded].join(' '));

  // And every module tsc compiled for the page is served the same way.
  const compiled = readdirSync(new URL('../src/dashboard/client/', import.meta.url)).filter((file) => file.endsWith('.js'));
  t.true(compiled.includes('app.js'));
  for (const file of compiled) t.is((await getRaw(port, `/client/${file}`)).headers['content-type'], 'text/javascript; charset=utf-8', file);
});

test('a path under /client/ that is not one of the page\'s modules gets 404, however it climbs out', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const port = cluster.dashboardPort;
  const refused = [
    '/client/nope.js',
    '/client/',
    '/client/APP.JS',
    '/client/app.ts',
    '/client/app.js.map',
    '/client//app.js',
    '/client/../page.js',
    '/client/../../../src/dashboard/page.ts',
    '/client/%2e%2e/page.js',
    '/client/..%2fpage.js',
    '/client/..%2F..%2F..%2Fpackage.json',
    '/client/%2e%2e%2f%2e%2e%2fcli%2fmain.js',
    '/client/..\\page.js',
    '/client/app.js%00.css',
    '/app.js',
  ];
  for (const path of refused) {
    const answer = await getRaw(port, path);
    t.is(answer.status, 404, path);
    t.notRegex(answer.text, /\bexport\b|\bimport\b/, path);
  }
  // The same folder, named the ways a browser may name it, is still served.
  t.is((await getRaw(port, '/client/./app.js')).status, 200);
  t.is((await getRaw(port, '/client/app.js?v=1')).status, 200);
});
