/**
 * Behind a load balancer, as graycluster is deployed: a real nginx (1 worker, pooled keep-alive upstreams) in
 * front, every request from a random user (`x-user`), so each pooled connection carries requests of both versions.
 * Rows: nginx → plain node:cluster (the baseline), nginx → graycluster (sticky on the user header), and nginx
 * `split_clients` on the user header → one plain process per version (what teams would do instead), and graycluster
 * behind nginx keeping a pool per version (`graycluster split-clients`, its versions' own ports, the version
 * cookie). Weights 50/50
 * and 90/10; rounds interleave the rows and every ratio is to node:cluster's run of the same round. Also the
 * primaries' memory: node:cluster's and graycluster's VmRSS idle and after each run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { fetchOnce } from '../lib/load.js';
import { freePort, nginxMissing, nginxPath, residentBytes, sleep, startNginx, startProcess, upstreamKeepalive } from '../lib/toolkit.js';
import { childPids, cpuMeter, otherCpuMeter, waitForQuiet } from '../lib/procfs.js';
import { disturbanceNote, format, median, sectionEnd, table } from '../lib/report.js';
import { app, startGraycluster, startPlainCluster } from '../lib/targets.js';
import { runWrk, wrkPath } from '../lib/wrk.js';
import { resolveConfig } from '../../dist/src/config/load.js';
import { stickyHash, versionForHash } from '../../dist/src/routing/decide.js';
import { keylessUpstream, nginxSplit, upstreamOf } from '../../dist/src/routing/split-clients.js';

export const defaults = { runs: 3, seconds: 6, warmupSeconds: 1, connections: 64 };

/** Other processes' CPU during a run, in cores, above which the run is flagged as disturbed. */
const disturbedAbove = 0.1;

/** graycluster's targets, as ratios of requests/s to nginx → node:cluster (issue 8). */
export const targets = { '50/50': 0.7, '90/10': 0.85 };
/** Most the graycluster primary's RSS may exceed node:cluster's, idle and after load. */
export const primaryRssTargetKb = 10 * 1024;
/**
 * The primaries' RSS is read right after each run and again this long after it, the same for both: graycluster's
 * primary runs a compacting collection once connections stop coming after a burst (src/primary/after-burst.ts).
 */
export const settleMs = 2000;

const weightings = [
  { name: '50/50', v1: 50, v2: 50 },
  { name: '90/10', v1: 90, v2: 10 },
];

const rows = [
  { key: 'cluster', label: 'nginx → node:cluster (round-robin, 2 workers)' },
  { key: 'graycluster', label: 'nginx → graycluster (v1 ×1, v2 ×1), sticky on x-user' },
  { key: 'split', label: 'nginx split_clients on x-user → one plain process per version' },
  { key: 'graycluster-split', label: 'nginx split_clients from `graycluster split-clients` → graycluster, a pool per version' },
  { key: 'graycluster-split-ports', label: 'nginx split_clients → graycluster, each version on a port of its own' },
  { key: 'graycluster-cookie', label: 'nginx map on the version cookie → graycluster, a pool per version (returning users)' },
];

/**
 * Every request from a new random user, or one of `users` (header sets), with autocannon (when wrk is missing): the
 * same load as wrk's script.
 */
async function runAutocannon({ url, connections, durationSeconds, users }) {
  const started = performance.now();
  const client = process.cpuUsage();
  const randomUser = () => `user-${Math.floor(Math.random() * 2 ** 31)}-${Math.floor(Math.random() * 2 ** 31)}`;
  const userHeaders = () => (users ? users[Math.floor(Math.random() * users.length)] : { 'x-user': randomUser() });
  const result = await autocannon({
    url, connections, duration: durationSeconds, timeout: 10,
    requests: [{ method: 'GET', path: '/', setupRequest: (request) => ({ ...request, headers: { ...request.headers, ...userHeaders() } }) }],
  });
  const usage = process.cpuUsage(client);
  const completed = Object.values(result.statusCodeStats ?? {}).reduce((sum, { count }) => sum + Number(count), 0);
  return {
    seconds: (performance.now() - started) / 1000,
    completed,
    ok: Number(result.statusCodeStats?.['200']?.count ?? 0),
    timeouts: result.timeouts,
    connectionErrors: result.errors - result.timeouts,
    requestsPerSecond: completed / result.duration,
    latency: { p99: result.latency.p99 },
    clientCpu: (usage.user + usage.system) / 1e6,
  };
}

/** One plain process per version: the hello app on a port of its own, told by its `hello-listening` message. */
async function startPlainProcess(version) {
  const child = startProcess(`plain ${version}`, process.execPath, [app('hello.js')], { env: { PORT: '0', APP_VERSION: version }, ipc: true });
  try {
    const { port } = await child.waitForMessage((message) => message?.kind === 'hello-listening');
    return { name: `plain ${version}`, port, pid: child.pid, workerPids: [], stop: () => child.stop() };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

/**
 * Rewrites the routing of graycluster's config file with `weighting` and sticky users (nothing else in the file
 * changes, so its workers keep running: a changed version would be replaced by new processes whose CPU the run
 * would not count), and waits until the primary runs it.
 */
async function applyWeights(graycluster, weighting) {
  const routing = routingOf(weighting);
  const file = JSON.parse(readFileSync(graycluster.configFile, 'utf8'));
  writeFileSync(graycluster.configFile, JSON.stringify({ ...file, routing }, null, 2));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { routing: running, workers } = await graycluster.status();
    if (running.weights?.v1 === weighting.v1 && running.weights?.v2 === weighting.v2 && running.sticky?.key === 'header:x-user') {
      assertSameWorkers(graycluster, workers);
      return routing;
    }
    if (Date.now() > deadline) throw new Error(`graycluster did not take weights ${weighting.name} within 10 s: ${JSON.stringify(running)}`);
    await sleep(50);
  }
}

/** The routing applyWeights writes into graycluster's config file for a weighting: users sticky by header. */
const routingOf = (weighting) => ({ default: 'v1', weights: { v1: weighting.v1, v2: weighting.v2 }, sticky: { key: 'header:x-user' } });

/** That routing as graycluster resolves it, from its own config file with the routing replaced. */
function resolvedRouting(graycluster, weighting) {
  const file = JSON.parse(readFileSync(graycluster.configFile, 'utf8'));
  return resolveConfig(graycluster.configFile, { ...file, routing: routingOf(weighting) }).routing;
}

/** The version cookie the cookie row's nginx routes on (graycluster's `routing.versionCookie`). */
const versionCookie = 'gc_version';

/**
 * Users who come back: each request of the cookie row is one of 2,000 users, with the version cookie graycluster
 * gave it on its first answer (its version by graycluster's own hash), so nginx sends it to its version's pool.
 */
function returningUsers(graycluster, weighting) {
  const { weights } = resolvedRouting(graycluster, weighting);
  return Array.from({ length: 2000 }, (_, index) => {
    const user = `user-${index}-${Math.floor(Math.random() * 2 ** 31)}`;
    return { 'x-user': user, cookie: `${versionCookie}=${versionForHash(stickyHash(user), weights)}` };
  });
}

/**
 * Samples graycluster's router every 100 ms until `stop()`, which resolves with the most connections it held at
 * once (waiting for their head, or queued for a worker to take them): nginx opens new upstream connections in
 * bursts, and each one's first request waits in the primary until a worker of its version has taken it.
 */
function samplePendingPeak(graycluster) {
  let peak = 0;
  let sampling = true;
  const done = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await graycluster.status()).router.pending);
      await sleep(100);
    }
  })();
  return { stop: async () => { sampling = false; await done; return peak; } };
}

/** The CPU per request counts the worker processes graycluster started with: a run after they changed would not. */
function assertSameWorkers(graycluster, workers) {
  const now = workers.map((worker) => worker.pid).sort();
  const measured = [...graycluster.workerPids].sort();
  if (String(now) !== String(measured)) {
    throw new Error(`graycluster's workers changed during the scenario (pids ${measured.join(', ')} → ${now.join(', ')}): their CPU would go unmeasured`);
  }
}

export async function run({ settings: overrides, log }) {
  const settings = { ...defaults, ...overrides };
  if (!nginxPath()) {
    const message = `skipped: ${nginxMissing}; the bench installs nothing itself`;
    log(`  ${message}`);
    return { skipped: true, text: message, markdown: `## Behind nginx (topology)\n\n${message}.` };
  }
  const client = wrkPath() ? 'wrk' : 'autocannon';
  const started = {};
  try {
    const entry = app('hello.js');
    started.cluster = await startPlainCluster({ entry, workers: 2 });
    const versions = { v1: { entry, workers: 1, port: await freePort() }, v2: { entry, workers: 1, port: await freePort() } };
    started.graycluster = await startGraycluster({ versions });
    started.v1 = await startPlainProcess('v1');
    started.v2 = await startPlainProcess('v2');
    const port = (target) => Number(new URL(target.url).port);
    // graycluster's own split (as `graycluster split-clients` prints it), one variable per weighting.
    const graysplit = (weighting) => `$graycluster_pool_${weighting.v1}`;
    const graysplits = weightings.map((weighting) => nginxSplit(resolvedRouting(started.graycluster, weighting), graysplit(weighting)));
    started.nginx = await startNginx({
      upstreams: {
        cluster: [port(started.cluster)], graycluster: [port(started.graycluster)], split_v1: [started.v1.port], split_v2: [started.v2.port],
        graycluster_port_v1: [versions.v1.port], graycluster_port_v2: [versions.v2.port],
        ...Object.fromEntries(graysplits.flatMap((split) => split.upstreams).map((upstream) => [upstream, [port(started.graycluster)]])),
      },
      http: [
        ...weightings.flatMap((weighting, index) => [
          `split_clients "\${http_x_user}" $split_${weighting.v1} { ${weighting.v1}% split_v1; * split_v2; }`,
          `split_clients "\${http_x_user}" $ports_${weighting.v1} { ${weighting.v1}% graycluster_port_v1; * graycluster_port_v2; }`,
          ...graysplits[index].lines,
        ]),
        `map $cookie_${versionCookie} $graycluster_by_cookie { v1 ${upstreamOf('v1')}; v2 ${upstreamOf('v2')}; default ${keylessUpstream}; }`,
      ],
      servers: [
        { key: 'cluster', pass: 'cluster' },
        { key: 'graycluster', pass: 'graycluster' },
        ...weightings.map((weighting) => ({ key: `split ${weighting.name}`, pass: `$split_${weighting.v1}` })),
        ...weightings.map((weighting) => ({ key: `graycluster-split ${weighting.name}`, pass: graysplit(weighting) })),
        ...weightings.map((weighting) => ({ key: `graycluster-split-ports ${weighting.name}`, pass: `$ports_${weighting.v1}` })),
        { key: 'graycluster-cookie', pass: '$graycluster_by_cookie' },
      ],
    });
    const nginx = started.nginx;
    const nginxWorkerPids = childPids(nginx.pid);
    const processesOf = {
      cluster: [started.cluster], graycluster: [started.graycluster], split: [started.v1, started.v2],
      'graycluster-split': [started.graycluster], 'graycluster-split-ports': [started.graycluster], 'graycluster-cookie': [started.graycluster],
    };
    const usersOf = Object.fromEntries(weightings.map((weighting) => [weighting.name, returningUsers(started.graycluster, weighting)]));
    const pidsOf = (row) => [nginx.pid, ...nginxWorkerPids, ...processesOf[row].flatMap((target) => [target.pid, ...target.workerPids])];
    const everyPid = [process.pid, ...new Set(rows.flatMap((row) => pidsOf(row.key)))];
    const urlOf = (row, weighting) => nginx.url('/', row.includes('split') ? `${row} ${weighting.name}` : row);

    /** A process's VmRSS in kB, or undefined once it is gone. */
    const rssKb = (pid) => { const bytes = residentBytes(pid); return bytes === undefined ? undefined : bytes / 1024; };
    const idleRssKb = { cluster: rssKb(started.cluster.pid), graycluster: rssKb(started.graycluster.pid) };
    const runs = [];  // { weighting, round, row, ...measurement }
    const routings = {};
    const measureOnce = async (row, weighting, seconds) => {
      const pids = pidsOf(row);
      const cpu = cpuMeter(pids);
      const others = otherCpuMeter([process.pid, ...pids]);
      const graycluster = row.startsWith('graycluster') ? started.graycluster : undefined;
      const handedOffBefore = graycluster && (await graycluster.status()).router.handedOff;
      const pendingPeak = graycluster && samplePendingPeak(graycluster);
      const users = row === 'graycluster-cookie' ? usersOf[weighting.name] : undefined;
      const load = client === 'wrk'
        ? await runWrk({ url: urlOf(row, weighting), connections: settings.connections, durationSeconds: seconds, randomUser: !users, users })
        : await runAutocannon({ url: urlOf(row, weighting), connections: settings.connections, durationSeconds: seconds, users });
      const serverSeconds = cpu().reduce((sum, value) => sum + value, 0);
      let connections;
      if (graycluster) {
        const peak = await pendingPeak.stop();
        const { workers, router } = await graycluster.status();
        assertSameWorkers(graycluster, workers);
        connections = { perSecond: (router.handedOff - handedOffBefore) / load.seconds, pendingPeak: peak };
      }
      // wrk has exited by now, so its CPU shows as other processes': take it out.
      const otherSeconds = Math.max(0, others() - (client === 'wrk' ? load.clientCpu : 0));
      const front = processesOf[row].length === 1 ? processesOf[row][0].pid : undefined;
      const primaryRssKb = front === undefined ? undefined : rssKb(front);
      if (front !== undefined) await sleep(settleMs);
      return {
        requestsPerSecond: load.requestsPerSecond,
        p99: load.latency.p99,
        failed: load.completed - load.ok + load.timeouts + load.connectionErrors,
        serverMicrosPerRequest: (serverSeconds * 1e6) / Math.max(1, load.completed),
        clientCpu: load.clientCpu / load.seconds,
        otherCpu: otherSeconds / load.seconds,
        primaryRssKb,
        settledRssKb: front === undefined ? undefined : rssKb(front),
        connections,
        command: load.command,
      };
    };
    let loadCommand;
    for (const weighting of weightings) {
      routings[weighting.name] = await applyWeights(started.graycluster, weighting);
      for (const row of rows) {
        const { status } = await fetchOnce(urlOf(row.key, weighting), 5000);
        if (status !== 200) throw new Error(`${row.label} answered ${status} through nginx`);
        await measureOnce(row.key, weighting, settings.warmupSeconds);
      }
      for (let round = 1; round <= settings.runs; round++) {
        for (const row of rows) {
          const { waitedMs } = await waitForQuiet(everyPid, { thresholdCores: disturbedAbove });
          const { command, ...measurement } = await measureOnce(row.key, weighting, settings.seconds);
          loadCommand ??= command?.replace(/ \S+$/, ' <nginx listener>');
          runs.push({ weighting: weighting.name, round, row: row.key, waitedMs, ...measurement });
          log(`  ${weighting.name}, round ${round}, ${row.label}: ${format.integer(measurement.requestsPerSecond)} req/s, p99 ${format.ms(measurement.p99)}, ${format.integer(measurement.serverMicrosPerRequest)} µs server CPU/req`);
        }
      }
    }
    return report({ runs, settings, started, client, idleRssKb, routings, loadCommand });
  } finally {
    await Promise.all(Object.values(started).map((target) => target.stop()));
  }
}

function report({ runs, settings, started, client, idleRssKb, routings, loadCommand }) {
  const texts = [];
  const markdowns = [];
  const verdicts = [];
  const columns = [
    { title: 'target', align: 'left' }, { title: 'req/s' }, { title: '× cluster' }, { title: 'p99' },
    { title: 'server CPU/req' }, { title: '× cluster' }, { title: 'client CPU' }, { title: 'failed' },
  ];
  for (const weighting of weightings) {
    const own = runs.filter((entry) => entry.weighting === weighting.name);
    const baseline = (round) => own.find((entry) => entry.round === round && entry.row === 'cluster');
    const tableRows = rows.map((row) => {
      const ofRow = own.filter((entry) => entry.row === row.key);
      const value = (field) => median(ofRow.map((entry) => entry[field]));
      const ratio = (field) => median(ofRow.map((entry) => entry[field] / baseline(entry.round)[field]));
      const ratioCell = (field) => (row.key === 'cluster' ? '1' : format.ratio(ratio(field)));
      if (row.key === 'graycluster') {
        const achieved = ratio('requestsPerSecond');
        verdicts.push(`- ${achieved >= targets[weighting.name] ? 'met' : '**missed**'}: ${weighting.name}: ≥ ${targets[weighting.name].toFixed(2)}× nginx → node:cluster requests/s (${format.ratio(achieved)})`);
      }
      return [
        row.label, format.integer(value('requestsPerSecond')), ratioCell('requestsPerSecond'), format.ms(value('p99')),
        `${format.integer(value('serverMicrosPerRequest'))} µs`, ratioCell('serverMicrosPerRequest'),
        `${format.fixed(value('clientCpu') * 100, 0)}%`, format.integer(ofRow.reduce((sum, entry) => sum + entry.failed, 0)),
      ];
    });
    const { text, markdown } = table(columns, tableRows);
    texts.push(`weights ${weighting.name}:\n${text}`);
    markdowns.push(`### Weights ${weighting.name}\n\n${markdown}`);
  }

  const medianOf = (field) => (row) => median(runs.filter((entry) => entry.row === row).map((entry) => entry[field]));
  const readings = [
    { label: 'idle', kb: (row) => idleRssKb[row] },
    { label: 'right after load', kb: medianOf('primaryRssKb') },
    { label: `${settleMs / 1000} s after load`, kb: medianOf('settledRssKb') },
  ];
  const memoryRows = ['cluster', 'graycluster'].map((row) => [
    row === 'cluster' ? 'node:cluster primary' : 'graycluster primary',
    ...readings.flatMap(({ kb }) => [format.mb(kb(row)), row === 'cluster' ? '–' : format.signedMb(kb(row) - kb('cluster'))]),
  ]);
  const memory = table(
    [
      { title: 'process', align: 'left' }, { title: 'RSS idle' }, { title: 'vs node:cluster' },
      { title: 'RSS right after each run (median)' }, { title: 'vs node:cluster' },
      { title: `RSS ${settleMs / 1000} s after each run (median)` }, { title: 'vs node:cluster' },
    ],
    memoryRows,
  );
  for (const { label, kb } of readings) {
    const over = kb('graycluster') - kb('cluster');
    verdicts.push(`- ${over <= primaryRssTargetKb ? 'met' : '**missed**'}: primary RSS ${label} within ${primaryRssTargetKb / 1024} MB of node:cluster's (${format.signedMb(over)})`);
  }

  const disturbance = disturbanceNote(runs, { thresholdCores: disturbedAbove });
  const perRun = table(
    [{ title: 'weights' }, { title: 'round' }, { title: 'target', align: 'left' }, { title: 'req/s' }, { title: 'p99' }, { title: 'server CPU/req' }, { title: 'primary RSS' }, { title: `+${settleMs / 1000} s` }, { title: 'new conn/s' }, { title: 'pending peak' }, { title: 'client CPU' }, { title: 'other CPU' }, { title: 'failed' }],
    runs.map((entry) => [
      entry.weighting, entry.round, entry.row, format.integer(entry.requestsPerSecond), format.ms(entry.p99), `${format.integer(entry.serverMicrosPerRequest)} µs`,
      format.mb(entry.primaryRssKb), format.mb(entry.settledRssKb), entry.connections ? format.integer(entry.connections.perSecond) : '–', entry.connections ? format.integer(entry.connections.pendingPeak) : '–',
      `${format.fixed(entry.clientCpu * 100, 0)}%`, `${format.fixed(entry.otherCpu * 100, 0)}%${entry.otherCpu > disturbedAbove ? ' ⚠' : ''}`, format.integer(entry.failed),
    ]),
  );
  const clientText = client === 'wrk'
    ? `wrk (1 thread, a separate process on the same 2 cores) keeps ${settings.connections} connections to nginx busy for ${settings.seconds} s per run; its Lua script gives every request a new random \`x-user\``
    : `autocannon (in the bench process, on the same cores: wrk is not installed, so its own CPU hides part of the server's cost) keeps ${settings.connections} connections to nginx busy for ${settings.seconds} s per run, every request with a new random \`x-user\``;
  const markdown = [
    '## Behind nginx (topology)',
    '',
    `Table produced by **${client}**. A hello-world handler ([bench/apps/hello.js](apps/hello.js)) behind a real nginx (1 worker; every upstream \`keepalive ${upstreamKeepalive}\`, \`proxy_http_version 1.1\`, \`proxy_set_header Connection ""\`), as graycluster runs in production behind a TLS-terminating proxy: nginx's pooled connections carry requests of many users, so of both versions. ${clientText}. Weights ${weightings.map((weighting) => weighting.name).join(' and ')}; ${settings.runs} rounds per weighting, each running the rows in turn (after a ${settings.warmupSeconds} s warm-up of each), the machine quiet before each run.`,
    '',
    'Rows: nginx → plain node:cluster (2 workers, round-robin; cannot route by version: the baseline); nginx → graycluster (v1 ×1, v2 ×1, `routing.sticky.key: "header:x-user"`, the weights); nginx `split_clients "${http_x_user}"` → one plain process per version (nginx splits users itself, as ingress-nginx canaries do: the anchor); nginx `split_clients` as `graycluster split-clients` writes it → the same graycluster, through one upstream block per version, all to its one port (nginx pools each block apart, so each pooled connection carries one version\'s users; graycluster still routes every request and would relay one nginx sent to the wrong pool); the same split (`split_clients` at the same percentages, which is the split graycluster\'s hash makes) → the same graycluster, each block to its version\'s own port (`versions.<name>.port`: the version\'s workers accept those connections themselves, without the primary); nginx `map` on the version cookie (`routing.versionCookie`) → the same graycluster through the same blocks, under another load: every request from one of 2,000 users who come back with the cookie graycluster gave them on their first answer (their version by its hash; graycluster runs without the option here, since the cookie only matters on a first answer, and every other row\'s new users would get one on each). Figures are medians; "× cluster" is the median of the per-round ratios to the node:cluster row of the same round. Server CPU/req: nginx (master and worker) plus the target\'s processes (primary and workers, or the two plain processes), from /proc/<pid>/stat, per answered request. Client CPU: the load generator, for context. Failed: non-2xx answers, timeouts and connection errors over all runs. Under "Every run", for the graycluster rows: new conn/s, the connections its primary handed to a worker per second (nginx\'s upstream pool opens one whenever more than its `keepalive` connections are busy and closes the surplus when they come back idle), and pending peak, the most connections the primary held at once (waiting for their head or for a worker to take them), from `/api/status` sampled every 100 ms.',
    '',
    ...markdowns.flatMap((entry) => [entry, '']),
    '### Primary memory',
    '',
    `VmRSS of the process in front of the workers (node:cluster\'s primary, graycluster\'s primary): idle after start (workers ready, one request per version), and after each run of that row (the median over all its runs of both weightings), read right after the run and again ${settleMs / 1000} s later, both primaries alike. graycluster\'s primary runs a compacting garbage collection once new connections stop for a moment after a burst, so its second reading shows what it keeps once that has run.`,
    '',
    memory.markdown,
    '',
    ...sectionEnd({
      disturbance,
      verdicts,
      perRunMarkdown: perRun.markdown,
      commands: [
        `- node:cluster: \`${started.cluster.command}\``,
        `- graycluster: \`${started.graycluster.command}\`, routing ${Object.entries(routings).map(([name, routing]) => `${name} \`${JSON.stringify(routing)}\``).join(', ')}`,
        `- one plain process per version: \`PORT=0 APP_VERSION=v1 node bench/apps/hello.js\` and the same with v2`,
        `- nginx: \`${started.nginx.command}\`, config:`,
        '',
        '```nginx',
        started.nginx.config.trim(),
        '```',
        '',
        `- load: ${client === 'wrk' ? `\`${loadCommand}\`` : `autocannon API, \`{ url: <nginx listener>, connections: ${settings.connections}, duration: ${settings.seconds}, requests: [{ setupRequest: a new random x-user }] }\``}`,
      ],
    }),
  ].join('\n');
  const text = `client: ${client}\n\n${texts.join('\n\n')}\n\nprimary memory:\n${memory.text}\n\n${disturbance.replaceAll('**', '')}\n${verdicts.join('\n').replaceAll('**', '')}`;
  return { text, markdown };
}
