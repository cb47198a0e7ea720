/**
 * Throughput of a hello-world handler on 2 workers: plain node:cluster round-robin (the limit, which cannot route
 * by version), graycluster with two versions routed by ?version=, and a parent HTTP proxy to one child per
 * version. Runs interleave (a, b, b', c, a, b, b', c, …) and every ratio is to node:cluster's run of the same round.
 */
import { fetchOnce, runLoad } from '../lib/load.js';
import { cpuMeter, otherCpuMeter, waitForQuiet } from '../lib/procfs.js';
import { disturbanceNote, format, median, sectionEnd, table, targetLine } from '../lib/report.js';
import { app, startGraycluster, startKeepAliveProxy, startPlainCluster } from '../lib/targets.js';
import { runWrk, wrkPath } from '../lib/wrk.js';

// Three runs, not two: the median of three per-round ratios survives one round disturbed by other work.
export const defaults = { runs: 3, seconds: 6, warmupSeconds: 1, connections: 50 };

/** Other processes' CPU during a run, in cores, above which the run is flagged as disturbed. */
const disturbedAbove = 0.1;

/**
 * graycluster's targets (issue 8), as ratios of requests/s to node:cluster's, per row and mode: a keep-alive
 * connection whose requests alternate versions pays for the relay; one version per connection should not be told
 * from plain cluster; a new connection per request pays the primary's read and handoff.
 */
export const targets = {
  graycluster: { 'keep-alive': 0.6, 'new connection per request': 0.9 },
  'graycluster-sticky': { 'keep-alive': 0.97 },
};

const alternating = ['/?version=v1', '/?version=v2'];

/**
 * What each variant sends. Every connection alternates v1, v2, v1… (as a reverse proxy's pooled upstream
 * connections do), except graycluster's "version per connection" variant, where connection i always asks for
 * v1 when i is even and v2 when it is odd (as browsers of users on one version do).
 */
const variants = [
  { key: 'cluster', target: 'cluster', label: 'node:cluster (round-robin, 2 workers)', paths: alternating },
  { key: 'graycluster', target: 'graycluster', label: 'graycluster (v1 ×1, v2 ×1), version alternating per request', paths: alternating },
  { key: 'graycluster-sticky', target: 'graycluster', label: 'graycluster (v1 ×1, v2 ×1), version fixed per connection', perConnection: true, modes: ['keep-alive'] },
  { key: 'proxy', target: 'proxy', label: 'keep-alive proxy (parent + 2 children)', paths: alternating },
];

const modes = [
  { name: 'keep-alive', newConnectionPerRequest: false },
  { name: 'new connection per request', newConnectionPerRequest: true },
];

/** The load generator: wrk when installed (its own CPU is a fraction of autocannon's), autocannon otherwise. */
const client = wrkPath() ? 'wrk' : 'autocannon';

/**
 * One run with wrk. Alternating variants: each request picks v1 or v2 at random (wrk's script cannot tell its
 * connections apart; in turn per thread could keep a connection on one version by accident of their order), so a
 * connection's requests mix versions as a pooled upstream connection's do. Version per connection: two wrk
 * processes at once, half the connections each, one asking for v1 and one for v2.
 */
async function runWrkVariant(target, variant, mode, seconds, connections) {
  const headers = mode.newConnectionPerRequest ? { connection: 'close' } : {};
  if (!variant.perConnection) return runWrk({ url: target.url, paths: variant.paths, connections, durationSeconds: seconds, headers });
  const halves = await Promise.all(['v1', 'v2'].map((version, index) => runWrk({
    url: new URL(`?version=${version}`, target.url).href, connections: index === 0 ? Math.ceil(connections / 2) : Math.floor(connections / 2), durationSeconds: seconds, headers,
  })));
  const sum = (field) => halves.reduce((total, half) => total + half[field], 0);
  return {
    seconds: Math.max(...halves.map((half) => half.seconds)),
    completed: sum('completed'), ok: sum('ok'), timeouts: sum('timeouts'), connectionErrors: sum('connectionErrors'),
    requestsPerSecond: sum('requestsPerSecond'), clientCpu: sum('clientCpu'),
    latency: { p99: Math.max(...halves.map((half) => half.latency.p99)) },  // The worse of the two halves.
    command: halves.map((half) => half.command).join(' & '),
  };
}

async function measureOnce(target, variant, mode, seconds, connections) {
  const urls = variant.perConnection ? ['v1', 'v2'].map((version) => new URL(`?version=${version}`, target.url).href) : [target.url];
  const processes = [target.pid, ...target.workerPids];
  const cpu = cpuMeter(processes);
  const others = otherCpuMeter([process.pid, ...processes]);
  const clientUsage = process.cpuUsage();
  const load = client === 'wrk'
    ? await runWrkVariant(target, variant, mode, seconds, connections)
    : await runLoad({ urls, paths: variant.paths, connections, durationSeconds: seconds, newConnectionPerRequest: mode.newConnectionPerRequest });
  const [primarySeconds, ...workerSeconds] = cpu();
  const inProcess = process.cpuUsage(clientUsage);
  // wrk has exited by now, so its CPU would count as other processes'; autocannon's is the bench process's own.
  const clientSeconds = client === 'wrk' ? load.clientCpu : (inProcess.user + inProcess.system) / 1e6;
  const otherSeconds = Math.max(0, others() - (client === 'wrk' ? clientSeconds : 0));
  const serverSeconds = primarySeconds + workerSeconds.reduce((sum, value) => sum + value, 0);
  return {
    requestsPerSecond: load.requestsPerSecond,
    p99: load.latency.p99,
    failed: load.completed - load.ok + load.timeouts + load.connectionErrors,
    completed: load.completed,
    primaryCpu: primarySeconds / load.seconds,
    serverMicrosPerRequest: (serverSeconds * 1e6) / Math.max(1, load.completed),
    clientCpu: clientSeconds / load.seconds,
    otherCpu: otherSeconds / load.seconds,
    command: load.command,
  };
}

export async function run({ settings: overrides, log }) {
  const settings = { ...defaults, ...overrides };
  const started = {};
  try {
    const entry = app('hello.js');
    started.cluster = await startPlainCluster({ entry, workers: 2 });
    started.graycluster = await startGraycluster({
      versions: { v1: { entry, workers: 1 }, v2: { entry, workers: 1 } },
      nodeArgs: settings.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${settings.cpuProfDir}`] : [],
    });
    started.proxy = await startKeepAliveProxy({ entry, versions: ['v1', 'v2'] });
    for (const target of Object.values(started)) {
      for (const version of ['v1', 'v2']) {
        const { status } = await fetchOnce(new URL(`?version=${version}`, target.url).href, 5000);
        if (status !== 200) throw new Error(`${target.name} answered ${status} to ?version=${version}`);
      }
    }

    const runs = [];  // { mode, round, variant, ...measurement }
    const commands = new Map();  // wrk's command line per mode and variant
    for (const mode of modes) {
      const active = variants.filter((variant) => !variant.modes || variant.modes.includes(mode.name));
      for (const variant of active) {
        await measureOnce(started[variant.target], variant, mode, settings.warmupSeconds, settings.connections);
      }
      for (let round = 1; round <= settings.runs; round++) {
        for (const variant of active) {
          const target = started[variant.target];
          // Idle targets and a machine nobody else is busy on, or at most 8 s of waiting for one.
          const { waitedMs, quiet } = await waitForQuiet([process.pid, ...Object.values(started).flatMap((each) => [each.pid, ...each.workerPids])], { thresholdCores: disturbedAbove });
          const { command, ...measurement } = await measureOnce(target, variant, mode, settings.seconds, settings.connections);
          commands.set(`${mode.name}, ${variant.label}`, command);
          runs.push({ mode: mode.name, round, variant: variant.key, waitedMs, quietBefore: quiet, ...measurement });
          log(`  ${mode.name}, round ${round}, ${variant.label}: ${format.integer(measurement.requestsPerSecond)} req/s, p99 ${measurement.p99} ms`);
        }
      }
    }
    return report(runs, settings, started, commands);
  } finally {
    await Promise.all(Object.values(started).map((target) => target.stop()));
  }
}

function report(runs, settings, started, commands) {
  const texts = [];
  const markdowns = [];
  const verdicts = [];
  const columns = [
    { title: 'target', align: 'left' }, { title: 'req/s' }, { title: '× cluster' }, { title: 'p99' }, { title: '× cluster' },
    { title: 'primary CPU' }, { title: '× cluster' }, { title: 'server CPU/req' }, { title: '× cluster' }, { title: 'client CPU' }, { title: 'failed' },
  ];
  for (const mode of modes) {
    const ofMode = runs.filter((entry) => entry.mode === mode.name);
    const baseline = (round) => ofMode.find((entry) => entry.round === round && entry.variant === 'cluster');
    const rows = [];
    for (const variant of variants.filter((candidate) => !candidate.modes || candidate.modes.includes(mode.name))) {
      const own = ofMode.filter((entry) => entry.variant === variant.key);
      const value = (field) => median(own.map((entry) => entry[field]));
      const ratio = (field) => median(own.map((entry) => entry[field] / baseline(entry.round)[field]));
      // A ratio to next to nothing (node:cluster's primary is idle with keep-alive connections) says nothing.
      const meaningless = (field) => median(ofMode.filter((entry) => entry.variant === 'cluster').map((entry) => entry[field])) < 0.05 && field === 'primaryCpu';
      const ratioCell = (field) => (variant.key === 'cluster' ? '1' : meaningless(field) ? 'n/a' : format.ratio(ratio(field)));
      rows.push([
        variant.label,
        format.integer(value('requestsPerSecond')), ratioCell('requestsPerSecond'),
        format.ms(value('p99')), ratioCell('p99'),
        `${format.fixed(value('primaryCpu') * 100, 0)}%`, ratioCell('primaryCpu'),
        `${format.integer(value('serverMicrosPerRequest'))} µs`, ratioCell('serverMicrosPerRequest'),
        `${format.fixed(value('clientCpu') * 100, 0)}%`,
        format.integer(own.reduce((sum, entry) => sum + entry.failed, 0)),
      ]);
      if (variant.target === 'graycluster') {
        const achieved = ratio('requestsPerSecond');
        const wanted = targets[variant.key][mode.name];
        verdicts.push(`- ${achieved >= wanted ? 'met' : '**missed**'}: ${mode.name}, ${variant.label}: ≥ ${wanted.toFixed(2)}× node:cluster requests/s (${format.ratio(achieved)})`);
      }
    }
    const { text, markdown } = table(columns, rows);
    texts.push(`${mode.name}:\n${text}`);
    markdowns.push(`### ${mode.name[0].toUpperCase()}${mode.name.slice(1)}\n\n${markdown}`);
  }

  const perRun = table(
    [{ title: 'mode', align: 'left' }, { title: 'round' }, { title: 'target', align: 'left' }, { title: 'req/s' }, { title: 'p99' }, { title: 'primary CPU' }, { title: 'server CPU/req' }, { title: 'client CPU' }, { title: 'other CPU' }, { title: 'failed' }],
    runs.map((entry) => [
      entry.mode, entry.round, entry.variant, format.integer(entry.requestsPerSecond), format.ms(entry.p99),
      `${format.fixed(entry.primaryCpu * 100, 0)}%`, `${format.integer(entry.serverMicrosPerRequest)} µs`, `${format.fixed(entry.clientCpu * 100, 0)}%`,
      `${format.fixed(entry.otherCpu * 100, 0)}%${entry.otherCpu > disturbedAbove ? ' ⚠' : ''}`, format.integer(entry.failed),
    ]),
  );

  const disturbance = disturbanceNote(runs, { thresholdCores: disturbedAbove });
  const markdown = [
    '## Throughput',
    '',
    `Table produced by **${client}**. A hello-world handler ([bench/apps/hello.js](apps/hello.js), the same file everywhere) on 2 worker processes in total. ${client === 'wrk' ? 'wrk (1 thread, a separate process on the same 2 cores; two at once, half the connections each, for the version-per-connection row)' : 'autocannon (in the bench process, on the same 2 cores: wrk is not installed, and autocannon\'s own CPU hides part of the server\'s cost)'} keeps ${settings.connections} connections busy for ${settings.seconds} s per run; ${settings.runs} runs per target, interleaved (node:cluster, graycluster, graycluster per connection, proxy, then again), after a ${settings.warmupSeconds} s warm-up of each. ${client === 'wrk' ? 'Every request asks for `GET /?version=v1` or `GET /?version=v2` at random, so each connection mixes versions,' : 'Every connection alternates `GET /?version=v1` and `GET /?version=v2`'} unless the row says the version is fixed per connection. With a new connection per request, every request carries \`connection: close\` and the client opens a new connection for the next one.`,
    '',
    'Figures are medians over the runs; every "× cluster" is the median of the per-round ratios to node:cluster\'s run of the same round. Primary CPU: the process in front (cluster primary, graycluster primary, proxy parent) in % of one core over the run, from /proc/<pid>/stat (its ratio is left out where node:cluster\'s primary is all but idle). Server CPU/req: CPU of the front process and its 2 workers/children together, per answered request. Client CPU: the load generator, for context: when it nears 100% the client is the bottleneck and the req/s ratios understate server-side differences (server CPU/req does not). Other CPU (under "Every run"): what the rest of the machine used meanwhile (/proc/stat busy time minus ours). Failed: non-200 answers, timeouts and connection errors over all runs.',
    '',
    ...markdowns.flatMap((entry) => [entry, '']),
    ...sectionEnd({
      disturbance,
      verdicts,
      perRunMarkdown: perRun.markdown,
      commands: [
        ...Object.values(started).map(targetLine),
        ...(client === 'wrk'
          ? [...commands].map(([label, command]) => `- load, ${label}: \`${command.replaceAll(/http:\/\/127\.0\.0\.1:\d+/g, '<target>')}\``)
          : [`- load: autocannon API, \`{ url, connections: ${settings.connections}, duration: ${settings.seconds}, requests: [{ path: '/?version=v1' }, { path: '/?version=v2' }] }\`; version per connection: \`url: [<target>/?version=v1, <target>/?version=v2]\` and no \`requests\`; new connection per request: \`headers: { connection: 'close' }\` plus a \`setupClient\` that stops autocannon from writing the next request on the connection being closed (see bench/lib/load.js).`]),
      ],
    }),
  ].join('\n');
  return { text: `client: ${client}\n\n${texts.join('\n\n')}\n\n${disturbance.replaceAll('**', '')}\n${verdicts.join('\n').replaceAll('**', '')}`, markdown };
}
