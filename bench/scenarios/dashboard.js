/**
 * Dashboard overhead (issue 4): what open dashboards cost the service. graycluster (v1 ×1, v2 ×1) serves the
 * hello app under keep-alive load, with the version fixed per connection (as throughput's graycluster-sticky
 * variant), once with no dashboard open and once with 10 live-feed clients connected to /ws, interleaved:
 * none, 10 dashboards, none, 10 dashboards, … Each client reads and parses every frame, as the page does.
 * The feed runs at its default interval (dashboard.feedIntervalMs 500): the config sets no dashboard option.
 */
import WebSocket from 'ws';
import { runLoad } from '../lib/load.js';
import { cpuMeter, otherCpuMeter, waitForQuiet } from '../lib/procfs.js';
import { disturbanceNote, format, median, sectionEnd, table, targetLine } from '../lib/report.js';
import { app, startGraycluster } from '../lib/targets.js';

export const defaults = { rounds: 3, seconds: 6, warmupSeconds: 1, connections: 50, dashboards: 10 };

/** Other processes' CPU during a run, in cores, above which the run is flagged as disturbed. */
const disturbedAbove = 0.1;
/** How long each run waits at most for the machine to be quiet. */
const quietWaitMs = 5000;
/** The feed interval the config leaves at its default (dashboard.feedIntervalMs). */
const defaultFeedIntervalMs = 500;

// The same strings as src/dashboard/messages.ts (feedProtocol, tokenProtocolPrefix): the bench runs the build
// through its bin and imports nothing from src/.
const feedProtocol = 'graycluster';
const tokenProtocolPrefix = 'graycluster.token.';

const variants = [
  { key: 'none', label: 'no dashboard open', dashboards: 0 },
  { key: 'dashboards', label: `${defaults.dashboards} dashboards open (feed every ${defaultFeedIntervalMs} ms)`, dashboards: defaults.dashboards },
];

/**
 * One live-feed client as the page opens it: subprotocols `graycluster` and the token's, and the dashboard's
 * own origin (a browser on the dashboard page sends it). Counts and parses every message it receives.
 * Resolves once the handshake is done and the first message (the snapshot) has arrived.
 */
function openDashboard(dashboardUrl, token, timeoutMs = 5000) {
  const origin = new URL(dashboardUrl).origin;
  const url = new URL('/ws', dashboardUrl).href.replace(/^http/, 'ws');
  const socket = new WebSocket(url, [feedProtocol, `${tokenProtocolPrefix}${Buffer.from(token, 'utf8').toString('base64url')}`], { origin, perMessageDeflate: false });
  const client = { socket, messages: 0, bytes: 0, byType: {}, closed: false, closeCode: undefined };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`dashboard client: no snapshot within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('unexpected-response', (_request, response) => {
      clearTimeout(timer);
      reject(new Error(`dashboard client: /ws answered ${response.statusCode}`));
      socket.terminate();
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', (code) => {
      client.closed = true;
      client.closeCode = code;
      clearTimeout(timer);
      reject(new Error(`dashboard client: closed (${code}) before its snapshot`));
    });
    socket.on('message', (data, isBinary) => {
      const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      client.messages++;
      client.bytes += buffer.length;
      // As the page does: every frame is JSON text, parsed whole.
      const message = JSON.parse(isBinary ? buffer.toString('utf8') : buffer.toString());
      client.byType[message.type] = (client.byType[message.type] ?? 0) + 1;
      if (client.messages === 1) {
        clearTimeout(timer);
        if (message.type !== 'snapshot' || socket.protocol !== feedProtocol) reject(new Error(`dashboard client: first message "${message.type}", protocol "${socket.protocol}"`));
        else resolve(client);
      }
    });
  });
}

/** Closes the clients (a close handshake, as a tab closing does) and waits for them to be gone. */
async function closeDashboards(clients) {
  await Promise.all(clients.map(({ socket }) => new Promise((resolve) => {
    if (socket.readyState === WebSocket.CLOSED) return resolve();
    const timer = setTimeout(() => {
      socket.terminate();
      resolve();
    }, 2000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.close(1000);
  })));
}

/** The feed's counters from /metrics: how many clients the primary has, and whether it skipped frames. */
async function feedMetrics(target) {
  const response = await fetch(new URL('/metrics', target.dashboardUrl), { headers: { authorization: `Bearer ${target.token}` } });
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
  const text = await response.text();
  const value = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
  return { clients: value('graycluster_dashboard_clients'), framesSkipped: value('graycluster_dashboard_frames_skipped_total'), clientsTerminated: value('graycluster_dashboard_clients_terminated_total') };
}

async function measureOnce(target, clients, seconds, connections) {
  const urls = ['v1', 'v2'].map((version) => new URL(`?version=${version}`, target.url).href);
  const processes = [target.pid, ...target.workerPids];
  const before = clients.map((client) => ({ messages: client.messages, bytes: client.bytes, updates: client.byType.update ?? 0 }));
  const cpu = cpuMeter(processes);
  const others = otherCpuMeter([process.pid, ...processes]);
  const bench = process.cpuUsage();
  const load = await runLoad({ urls, connections, durationSeconds: seconds });
  const [primarySeconds, ...workerSeconds] = cpu();
  const benchUsage = process.cpuUsage(bench);
  const otherSeconds = others();
  const received = clients.map((client, index) => ({
    messages: client.messages - before[index].messages,
    bytes: client.bytes - before[index].bytes,
    updates: (client.byType.update ?? 0) - before[index].updates,
  }));
  const sum = (field) => received.reduce((total, entry) => total + entry[field], 0);
  return {
    requestsPerSecond: load.requestsPerSecond,
    p99: load.latency.p99,
    failed: load.completed - load.ok + load.timeouts + load.connectionErrors,
    primaryCpu: primarySeconds / load.seconds,
    workerCpu: workerSeconds.reduce((total, value) => total + value, 0) / load.seconds,
    benchCpu: (benchUsage.user + benchUsage.system) / 1e6 / load.seconds,
    otherCpu: otherSeconds / load.seconds,
    feedMessagesPerSecond: sum('messages') / load.seconds,
    feedBytesPerSecond: sum('bytes') / load.seconds,
    // Per client: shows the interval the feed really ran at (2/s at 500 ms).
    updatesPerClientSecond: clients.length ? sum('updates') / clients.length / load.seconds : 0,
    clientsLost: clients.filter((client) => client.closed).length,
  };
}

export async function run({ settings: overrides, log }) {
  const settings = { ...defaults, ...overrides };
  const entry = app('hello.js');
  const target = await startGraycluster({ name: 'graycluster (v1 ×1, v2 ×1)', versions: { v1: { entry, workers: 1 }, v2: { entry, workers: 1 } } });
  let clients = [];
  const runs = [];
  let feed = { clients: 0, framesSkipped: 0, clientsTerminated: 0 };
  try {
    for (const version of ['v1', 'v2']) {
      const response = await fetch(new URL(`?version=${version}`, target.url));
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`graycluster answered ${response.status} to ?version=${version}`);
    }
    await measureOnce(target, [], settings.warmupSeconds, settings.connections);
    const pids = [process.pid, target.pid, ...target.workerPids];
    for (let round = 1; round <= settings.rounds; round++) {
      for (const variant of variants) {
        // Idle target and a machine nobody else is busy on, or at most 5 s of waiting for one (the scenario
        // must stay well under 2 min).
        const { waitedMs, quiet } = await waitForQuiet(pids, { thresholdCores: disturbedAbove, maxWaitMs: quietWaitMs });
        if (variant.dashboards) {
          clients = await Promise.all(Array.from({ length: variant.dashboards }, () => openDashboard(target.dashboardUrl, target.token)));
          const seen = await feedMetrics(target);
          if (seen.clients !== variant.dashboards) throw new Error(`the dashboard counts ${seen.clients} live clients, not ${variant.dashboards}`);
        }
        try {
          const measurement = await measureOnce(target, clients, settings.seconds, settings.connections);
          runs.push({ round, variant: variant.key, waitedMs, quietBefore: quiet, ...measurement });
          const feedText = variant.dashboards ? `, feed ${format.integer(measurement.feedMessagesPerSecond)} msg/s ${format.fixed(measurement.feedBytesPerSecond / 1024, 0)} KiB/s` : '';
          log(`  round ${round}, ${variant.label}: ${format.integer(measurement.requestsPerSecond)} req/s, p99 ${measurement.p99} ms, primary CPU ${format.fixed(measurement.primaryCpu * 100, 1)}%${feedText}`);
        } finally {
          if (clients.length) {
            feed = await feedMetrics(target);
            await closeDashboards(clients);
            clients = [];
          }
        }
      }
    }
  } finally {
    await closeDashboards(clients);
    await target.stop();
  }
  return report(runs, settings, target, feed);
}

function report(runs, settings, target, feed) {
  const baseline = (round) => runs.find((entry) => entry.round === round && entry.variant === 'none');
  const summary = {};
  const rows = variants.map((variant) => {
    const own = runs.filter((entry) => entry.variant === variant.key);
    const value = (field) => median(own.map((entry) => entry[field]));
    const ratio = (field) => median(own.map((entry) => entry[field] / baseline(entry.round)[field]));
    summary[variant.key] = { value, ratio };
    return [
      variant.label,
      format.integer(value('requestsPerSecond')), variant.key === 'none' ? '1' : format.ratio(ratio('requestsPerSecond')),
      format.ms(value('p99')),
      `${format.fixed(value('primaryCpu') * 100, 1)}%`,
      `${format.fixed(value('workerCpu') * 100, 0)}%`,
      variant.dashboards ? format.fixed(value('feedMessagesPerSecond'), 1) : '0',
      variant.dashboards ? `${format.fixed(value('feedBytesPerSecond') / 1024, 1)} KiB/s` : '0',
      `${format.fixed(value('benchCpu') * 100, 0)}%`,
      format.integer(own.reduce((total, entry) => total + entry.failed, 0)),
    ];
  });
  const columns = [
    { title: 'variant', align: 'left' }, { title: 'req/s' }, { title: '× none' }, { title: 'p99' }, { title: 'primary CPU' },
    { title: 'workers CPU' }, { title: 'feed msg/s (10 clients)' }, { title: 'feed bytes/s (10 clients)' }, { title: 'bench CPU' }, { title: 'failed' },
  ];
  const { text, markdown } = table(columns, rows);

  const perRun = table(
    [{ title: 'round' }, { title: 'variant', align: 'left' }, { title: 'req/s' }, { title: 'p99' }, { title: 'primary CPU' }, { title: 'workers CPU' }, { title: 'feed msg/s' }, { title: 'feed bytes/s' }, { title: 'updates/s per client' }, { title: 'bench CPU' }, { title: 'other CPU' }, { title: 'failed' }],
    runs.map((entry) => [
      entry.round, entry.variant, format.integer(entry.requestsPerSecond), format.ms(entry.p99),
      `${format.fixed(entry.primaryCpu * 100, 1)}%`, `${format.fixed(entry.workerCpu * 100, 0)}%`,
      format.fixed(entry.feedMessagesPerSecond, 1), `${format.fixed(entry.feedBytesPerSecond / 1024, 1)} KiB/s`, format.fixed(entry.updatesPerClientSecond, 2),
      `${format.fixed(entry.benchCpu * 100, 0)}%`,
      `${format.fixed(entry.otherCpu * 100, 0)}%${entry.otherCpu > disturbedAbove ? ' ⚠' : ''}`, format.integer(entry.failed),
    ]),
  );

  const none = summary.none;
  const open = summary.dashboards;
  const ratio = open.ratio('requestsPerSecond');
  const cpuPoints = (open.value('primaryCpu') - none.value('primaryCpu')) * 100;
  const perClientBytes = open.value('feedBytesPerSecond') / settings.dashboards;
  const lost = runs.reduce((total, entry) => total + entry.clientsLost, 0);
  const ratios = runs.filter((entry) => entry.variant === 'dashboards').map((entry) => entry.requestsPerSecond / baseline(entry.round).requestsPerSecond);
  const withinNoise = Math.min(...ratios) <= 1 && Math.max(...ratios) >= 1;
  // How far the no-dashboard runs alone spread: the noise any difference has to stand out from.
  const alone = runs.filter((entry) => entry.variant === 'none').map((entry) => entry.requestsPerSecond);
  const spread = (Math.max(...alone) - Math.min(...alone)) / median(alone);
  const change = ratio >= 1 ? `${format.fixed((ratio - 1) * 100, 1)}% more` : `${format.fixed((1 - ratio) * 100, 1)}% fewer`;
  const costText = [
    `${settings.dashboards} open dashboards cost graycluster's primary ${cpuPoints >= 0 ? '+' : '−'}${format.fixed(Math.abs(cpuPoints), 1)} points of a core`,
    `(${format.fixed(none.value('primaryCpu') * 100, 1)}% → ${format.fixed(open.value('primaryCpu') * 100, 1)}%, about ${format.fixed(Math.abs(cpuPoints) * 10, 0)} ms of CPU per second)`,
    `and send ${format.fixed(perClientBytes / 1024, 1)} KiB/s to each page (${format.fixed(open.value('feedBytesPerSecond') / 1024, 1)} KiB/s, ${format.fixed(open.value('feedMessagesPerSecond'), 1)} messages/s for all ${settings.dashboards}; ${format.fixed(open.value('updatesPerClientSecond'), 2)} updates/s each, as the 500 ms interval gives).`,
    `Requests/s with them open: ${format.ratio(ratio)} of the same round's run without (${change}; per-round ratios ${ratios.map((value) => value.toFixed(2)).join(', ')})${withinNoise ? ': they fall on both sides of 1, so no throughput cost stands out from this machine\'s run-to-run noise' : ''}; the runs without dashboards alone spread over ${format.fixed(spread * 100, 0)}% of their median;`,
    `p99 ${format.ms(none.value('p99'))} → ${format.ms(open.value('p99'))}.`,
  ].join(' ');
  const health = `Feed health at the end of the last run with dashboards: ${feed.clients} clients connected, ${feed.framesSkipped} frames skipped, ${feed.clientsTerminated} clients cut off; ${lost} client${lost === 1 ? '' : 's'} lost during runs.`;
  const disturbance = disturbanceNote(runs, { thresholdCores: disturbedAbove, maxWaitMs: quietWaitMs });

  const markdownText = [
    '## Dashboard overhead',
    '',
    `graycluster (v1 ×1, v2 ×1) serving the hello app ([bench/apps/hello.js](apps/hello.js)); autocannon (in the bench process) keeps ${settings.connections} keep-alive connections busy for ${settings.seconds} s per run, connection i always asking for \`?version=v1\` when i is even and \`?version=v2\` when odd (as throughput's "version fixed per connection" row). ${settings.rounds} rounds, interleaved: no dashboard, ${settings.dashboards} dashboards, no dashboard, …, after a ${settings.warmupSeconds} s warm-up.`,
    `Before each "${settings.dashboards} dashboards" run the bench opens ${settings.dashboards} WebSocket clients (the \`ws\` package, in the bench process) to \`/ws\` as the page does (subprotocols \`graycluster\` and \`graycluster.token.<base64url token>\`, the dashboard's own \`Origin\`), waits for each one's snapshot and checks that /metrics counts ${settings.dashboards} clients; each client parses every frame as JSON and counts messages and bytes; they are closed after the run. The feed runs at its default interval (\`dashboard.feedIntervalMs\` ${defaultFeedIntervalMs}): an \`update\` per client every ${defaultFeedIntervalMs} ms and a chart \`sample\` once a second.`,
    '',
    'Figures are medians over the rounds; "× none" is the median of the per-round ratios to the no-dashboard run of the same round. Primary CPU: graycluster\'s primary (where the feed is built and sent) in % of one core over the run, from /proc/<pid>/stat; workers CPU: both workers together. Feed msg/s and bytes/s: what the clients received during the run, all together (WebSocket payloads). Bench CPU: the bench process (autocannon and the clients), for context. Failed: non-200 answers, timeouts and connection errors over all runs.',
    '',
    markdown,
    '',
    `**What it costs:** ${costText}`,
    '',
    health,
    '',
    ...sectionEnd({
      disturbance,
      perRunMarkdown: perRun.markdown,
      commands: [
        targetLine(target),
        `- load: autocannon API, \`{ url: [<target>/?version=v1, <target>/?version=v2], connections: ${settings.connections}, duration: ${settings.seconds} }\``,
        `- dashboards: \`new WebSocket('ws://127.0.0.1:<dashboard port>/ws', ['graycluster', 'graycluster.token.' + base64url(token)], { origin: 'http://127.0.0.1:<dashboard port>' })\` ×${settings.dashboards}`,
      ],
    }),
  ].join('\n');
  return {
    text: `${text}\n\n${`What it costs: ${costText}`}\n${health}\n${disturbance.replaceAll('**', '')}\n\nEvery run:\n${perRun.text}`,
    markdown: markdownText,
  };
}
