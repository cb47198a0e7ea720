/**
 * The seed incident (shared/seed/nodejs-grayscale-oom.md): 400 connections for 20 s against an app that answers
 * after one second, run as two versions, through (a) the article's parent proxy and (b) graycluster, with plain
 * node:cluster (which cannot route by version) as the reference for what two workers can do at best.
 */
import { fetchOnce, runLoad, timeToAnswer } from '../lib/load.js';
import { otherCpuMeter, waitForQuiet } from '../lib/procfs.js';
import { format, table } from '../lib/report.js';
import { seedChild, startGraycluster, startPlainCluster, startSeedProxy } from '../lib/targets.js';
import { sampleRss, sleep } from '../lib/toolkit.js';


export const defaults = { connections: 400, seconds: 20, timeoutSeconds: 10, recoveryCapSeconds: 150, rssIntervalMs: 200 };

/** The targets to pass. An answer needs the app's own second: "immediate" allows 100 ms on top of it. */
export const targets = { timeouts: 0, p99Ms: 1100, recoveryMs: 1100, rssGrowthKb: 5 * 1024 };

async function measure(start, settings, log) {
  const target = await start();
  try {
    const v1 = new URL('?version=v1', target.url).href;
    const v2 = new URL('?version=v2', target.url).href;
    // One answer from each version first, so both are warm and the baseline is a process that has served.
    for (const url of [v1, v2]) {
      const { status } = await fetchOnce(url, 10_000);
      if (status !== 200) throw new Error(`${target.name}: warm-up request to ${url} answered ${status}`);
    }
    const ours = [process.pid, target.pid, ...target.workerPids];
    await waitForQuiet(ours);
    const rss = sampleRss(target.pid, settings.rssIntervalMs);
    await sleep(1000);
    const baselineKb = rss.latest() / 1024;
    const loadStartIndex = rss.samples.length;
    log(`  ${target.name}: ${settings.connections} connections for ${settings.seconds} s…`);
    const others = otherCpuMeter(ours);
    const load = await runLoad({ urls: [v1, v2], connections: settings.connections, durationSeconds: settings.seconds, timeoutSeconds: settings.timeoutSeconds, steadyState: true });
    const otherCpu = others() / load.seconds;
    log(`  ${target.name}: load over (${load.completed} answered, ${load.timeouts} timeouts); waiting for a fresh request to v1 to be answered (at most ${settings.recoveryCapSeconds} s)…`);
    const recoveryMs = await timeToAnswer(v1, { capMs: settings.recoveryCapSeconds * 1000 });
    const samples = rss.stop();
    const peakKb = Math.max(...samples.slice(loadStartIndex).map((sample) => sample.bytes)) / 1024;
    return { name: target.name, command: target.command, config: target.config, load, otherCpu, baselineKb, peakKb, growthKb: peakKb - baselineKb, recoveryMs };
  } finally {
    await target.stop();
  }
}

export async function run({ settings: overrides, log }) {
  const settings = { ...defaults, ...overrides };
  const entry = seedChild;
  const results = [];
  results.push(await measure(() => startSeedProxy({ name: 'seed proxy (maxSockets: 1)' }), settings, log));
  // The reference: the same two processes under node:cluster, which cannot route by version at all.
  results.push(await measure(() => startPlainCluster({ name: 'node:cluster, 2 workers (reference)', entry, workers: 2 }), settings, log));
  const graycluster = await measure(() => startGraycluster({
    name: 'graycluster (v1 ×1, v2 ×1)',
    versions: { v1: { entry, workers: 1 }, v2: { entry, workers: 1 } },
  }), settings, log);
  results.push(graycluster);

  const cap = settings.recoveryCapSeconds;
  const { text, markdown } = table(
    [
      { title: 'target', align: 'left' }, { title: 'answered' }, { title: '200' }, { title: 'other status' },
      { title: 'timeouts' }, { title: 'conn. errors' }, { title: 'p50' }, { title: 'p99' }, { title: 'p99 w/o 1st' },
      { title: 'RSS before' }, { title: 'RSS peak' }, { title: 'RSS growth' }, { title: 'recovery' }, { title: 'other CPU' },
    ],
    results.map((result) => [
      result.name,
      format.integer(result.load.completed),
      format.integer(result.load.ok),
      format.integer(result.load.completed - result.load.ok),
      format.integer(result.load.timeouts),
      format.integer(result.load.connectionErrors),
      format.ms(result.load.latency.p50),
      format.ms(result.load.latency.p99),
      format.ms(result.load.steadyP99),
      format.mb(result.baselineKb),
      format.mb(result.peakKb),
      format.signedMb(result.growthKb),
      result.recoveryMs === null ? `>${cap} s` : format.seconds(result.recoveryMs),
      `${format.fixed(result.otherCpu * 100, 0)}%`,
    ]),
  );

  const reference = results[1];
  const verdict = (met, what, figure) => `- ${met ? 'met' : '**missed**'}: ${what} (${figure})`;
  const verdicts = [
    verdict(graycluster.load.timeouts <= targets.timeouts, 'graycluster 0 timeouts', `${graycluster.load.timeouts}`),
    verdict(graycluster.load.latency.p99 <= targets.p99Ms, 'graycluster p99 ≤ 1.1 s',
      `${format.ms(graycluster.load.latency.p99)}; without each connection's first request ${format.ms(graycluster.load.steadyP99)}; node:cluster ${format.ms(reference.load.latency.p99)}`),
    verdict(graycluster.recoveryMs !== null && graycluster.recoveryMs <= targets.recoveryMs, 'recovery immediate (first answer ≤ 1.1 s: the app takes 1 s)',
      graycluster.recoveryMs === null ? `>${cap} s` : format.seconds(graycluster.recoveryMs)),
    verdict(graycluster.growthKb < targets.rssGrowthKb, 'primary RSS growth < 5 MB', format.signedMb(graycluster.growthKb)),
  ];

  const fenced = (value) => `\`${value}\``;
  const markdownOut = [
    '## Seed incident',
    '',
    `An app that answers every request after 1 s ([test/fixtures/seed-child.cjs](../test/fixtures/seed-child.cjs), the article's child.js verbatim) runs as two versions, v1 and v2, one process each. autocannon opens ${settings.connections} keep-alive connections for ${settings.seconds} s, half of them sending \`GET /?version=v1\` and half \`GET /?version=v2\` (connection i uses the v1 URL when i is even), and counts a request unanswered after ${settings.timeoutSeconds} s as a timeout (it then reconnects). Latencies are of answered requests only; "p99 w/o 1st" leaves out each connection's first answer, which waits for all ${settings.connections} connections being opened at once. RSS is the parent's / primary's VmRSS from /proc every ${settings.rssIntervalMs} ms: "before" is the last sample before the load (after one warm-up request per version), "peak" the highest from the start of the load to the end of the recovery wait. Other CPU: what processes other than the bench and the target used during the load, in % of a core (each load waits up to 8 s for the machine to be quiet first). Recovery: from the moment autocannon stopped, the time until a fresh request (new connection) to \`?version=v1\` is answered 200, so it includes the app's own second; a new probe goes out after a refusal or error and every 5 s, and the wait is capped at ${cap} s.`,
    '',
    markdown,
    '',
    'Targets (graycluster):',
    '',
    ...verdicts,
    '',
    'Commands:',
    '',
    ...results.map((result) => `- ${result.name}: ${fenced(result.command)}${result.config ? `, config ${fenced(JSON.stringify(result.config))}` : ''}`),
    `- load: autocannon API, \`{ url: [<target>/?version=v1, <target>/?version=v2], connections: ${settings.connections}, duration: ${settings.seconds}, timeout: ${settings.timeoutSeconds} }\``,
  ].join('\n');
  return { text: `${text}\n\n${verdicts.join('\n').replaceAll('**', '')}`, markdown: markdownOut };
}
