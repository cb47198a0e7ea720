/**
 * Hot-swap latency (issue 3): how long from writing the config file to requests being routed by the new rules.
 * The file's routing.default flips between v1 and v2, 20 times; after each write, fresh connections ask every
 * 5 ms which version answers, until it is the new default. Half the writes are in place, half the way editors
 * write (a temp file renamed over it), since the watcher must see both.
 */
import { renameSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { table } from '../lib/report.js';
import { app, startGraycluster } from '../lib/targets.js';
import { sleep, waitFor } from '../lib/toolkit.js';

export const defaults = { changes: 20, pollMs: 5, capMs: 5000 };
export const targets = { medianMs: 1000, maxMs: 1000 };

/** The version that answers a request on a new connection (graycluster names it in a response header). */
function answeringVersion(url) {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      response.resume();
      response.once('end', () => resolve(response.headers['x-graycluster-version']));
    });
    request.setTimeout(2000, () => request.destroy(new Error('no answer within 2 s')));
    request.once('error', reject);
  });
}

function percentile(sorted, fraction) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

export async function run({ settings: overrides, log }) {
  const settings = { ...defaults, ...overrides };
  const entry = app('hello.js');
  const target = await startGraycluster({ name: 'graycluster (v1 ×1, v2 ×1)', versions: { v1: { entry, workers: 1 }, v2: { entry, workers: 1 } } });
  const samples = { 'in place': [], 'rename over': [] };
  try {
    const configFile = target.configFile;
    for (let change = 0; change < settings.changes; change++) {
      const config = JSON.parse(readFileSync(configFile, 'utf8'));
      const next = config.routing.default === 'v1' ? 'v2' : 'v1';
      config.routing.default = next;
      const how = change % 2 === 0 ? 'in place' : 'rename over';
      // Let the previous change settle, so each write is a separate change.
      await sleep(200);
      const written = performance.now();
      if (how === 'in place') {
        writeFileSync(configFile, JSON.stringify(config, null, 2));
      } else {
        const temporary = path.join(path.dirname(configFile), `.graycluster.json.${change}.tmp`);
        writeFileSync(temporary, JSON.stringify(config, null, 2));
        renameSync(temporary, configFile);
      }
      await waitFor(async () => (await answeringVersion(target.url)) === next, { timeoutMs: settings.capMs, intervalMs: settings.pollMs, what: `routing switched to ${next} after the write` });
      const elapsed = performance.now() - written;
      samples[how].push(elapsed);
      log(`  change ${change + 1}/${settings.changes} (${how}): routing switched after ${elapsed.toFixed(1)} ms`);
    }
  } finally {
    await target.stop();
  }

  const all = [...samples['in place'], ...samples['rename over']].sort((a, b) => a - b);
  const row = (name, values) => {
    const sorted = [...values].sort((a, b) => a - b);
    return [name, String(sorted.length), percentile(sorted, 0.5).toFixed(1), sorted.at(-1).toFixed(1)];
  };
  const { text, markdown } = table(
    [{ title: 'write', align: 'left' }, { title: 'changes', align: 'right' }, { title: 'median ms', align: 'right' }, { title: 'max ms', align: 'right' }],
    [row('in place', samples['in place']), row('rename over', samples['rename over']), row('all', all)],
  );
  const met = percentile(all, 0.5) < targets.medianMs && all.at(-1) < targets.maxMs;
  const verdict = `Target: routing switched under ${targets.maxMs} ms after the write, every time: **${met ? 'met' : 'missed'}** ` +
    `(median ${percentile(all, 0.5).toFixed(0)} ms, max ${all.at(-1).toFixed(0)} ms).`;
  return {
    text: `${text}\n${verdict.replaceAll('**', '')}`,
    markdown: [
      '## Hot-swap latency',
      '',
      `${settings.changes} changes of routing.default (v1 ↔ v2) in the config file of a running graycluster; after each write, a fresh connection every ${settings.pollMs} ms asks which version answers, until the new default does. The time is from the end of the write to that answer.`,
      'Half the writes are in place, half are a temp file renamed over the config (as editors write).',
      'The watcher acts on the folder\'s change notice after 30 ms of quiet and also reads the file every 400 ms; the primary then switches routing for new connections at once.',
      '',
      markdown,
      '',
      verdict,
    ].join('\n'),
  };
}
