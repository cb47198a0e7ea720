// A fleet as it runs in production: three graycluster instances sharing one config file (each with its own ports
// from the flags), behind a real nginx whose round-robin upstream sends each request to the next instance. A
// sticky user's hash depends on its key alone, so every instance answers it with the same version; and one edit
// of the shared file is applied by all three within the config watcher's second.
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { stickyHash, versionForHash } from '../src/routing/decide.js';
import { makeConfig, runCli, startCluster, startNginxFor, temporaryFolder, testWithNginx, type Cluster } from './helpers/cluster.js';

const test = testWithNginx('fleet.test');

const instanceCount = 3;
const before: Array<[string, number]> = [['v1', 50], ['v2', 50]];
/** The canary raised: only hash ranges move towards v2, so no v2 user leaves it and v1 users below the split stay. */
const after: Array<[string, number]> = [['v1', 20], ['v2', 80]];
const users = Array.from({ length: 200 }, (_, index) => `fleet-user-${index}`);
/** Requests one user may send before it must have been answered by every instance (about 5.5 are needed on average). */
const maxRequestsPerUser = 40;
/** Users sending at once, each one request at a time. */
const concurrentUsers = 8;
/** The config watcher's promise (README, "Changing a running canary"): the explicit contract. */
const applyWithinMs = 1000;

const versionOf = (user: string, weights: Array<[string, number]>) => versionForHash(stickyHash(user), weights);

/** What one user was answered, by which instance (found by the pid of the worker that answered). */
interface Answered {
  versions: Set<string>;
  instances: Set<string>;
  /** Anything but a 200 whose body and version header agree on a version of an instance's worker. */
  oddities: string[];
}

/** One GET /who as `user` on `agent`: status, the version header, and the body's version and worker pid. */
function who(url: string, agent: http.Agent, user: string): Promise<{ status: number; header: string | undefined; version?: string; pid?: number }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent, headers: { 'x-user': user } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => {
        const header = response.headers['x-graycluster-version'] as string | undefined;
        try {
          resolve({ status: response.statusCode ?? 0, header, ...(JSON.parse(body) as { version: string; pid: number }) });
        } catch {
          resolve({ status: response.statusCode ?? 0, header });
        }
      });
      response.on('error', reject);
    });
    request.setTimeout(10_000, () => request.destroy(new Error(`no answer from ${url} within 10 s`)));
    request.on('error', reject);
  });
}

/**
 * Sends every user's requests through nginx, one at a time per user and `concurrentUsers` users at once, until
 * each user has been answered by every instance (at most `maxRequestsPerUser` each).
 */
async function sendEveryUser(t: ExecutionContext, url: string, instanceOfPid: Map<number, string>): Promise<Map<string, Answered>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrentUsers });
  t.teardown(() => agent.destroy());
  const answered = new Map<string, Answered>();
  const queue = [...users];
  const sender = async () => {
    for (let user = queue.shift(); user !== undefined; user = queue.shift()) {
      const seen: Answered = { versions: new Set(), instances: new Set(), oddities: [] };
      answered.set(user, seen);
      for (let sent = 0; sent < maxRequestsPerUser && seen.instances.size < instanceCount; sent++) {
        const answer = await who(url, agent, user);
        const instance = answer.pid === undefined ? undefined : instanceOfPid.get(answer.pid);
        if (answer.status !== 200 || answer.version === undefined || answer.header !== answer.version || instance === undefined) {
          seen.oddities.push(JSON.stringify(answer));
          continue;
        }
        seen.versions.add(answer.version);
        seen.instances.add(instance);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrentUsers }, sender));
  return answered;
}

/** Every user that was not answered by all three instances with exactly the version its hash has under `weights`. */
function wrongAnswers(answered: Map<string, Answered>, weights: Array<[string, number]>) {
  return [...answered].flatMap(([user, seen]) => {
    const wanted = versionOf(user, weights);
    return seen.oddities.length === 0 && seen.instances.size === instanceCount && seen.versions.size === 1 && seen.versions.has(wanted!)
      ? []
      : [{ user, wanted, versions: [...seen.versions], instances: [...seen.instances], oddities: seen.oddities.slice(0, 3) }];
  });
}

async function workerPids(instances: Cluster[], names: string[]): Promise<Map<number, string>> {
  const pids = new Map<number, string>();
  for (const [index, instance] of instances.entries()) {
    for (const worker of (await instance.status()).workers) pids.set(worker.pid!, names[index]!);
  }
  return pids;
}

test('three instances sharing one config file behind nginx round-robin: every sticky user gets one version from all three, and one edit of the file is applied by all three within a second', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-fleet-'));
  t.teardown(temporaryFolder(folder));
  const file = path.join(folder, 'graycluster.json');
  // The file a production fleet would share, fixed ports and all: each instance here takes its own from the flags.
  const config = makeConfig({ v1: {}, v2: {} }, { weights: Object.fromEntries(before), sticky: { key: 'header:x-user' } }, { port: 8000 }, { port: 9000 });
  writeFileSync(file, JSON.stringify(config, null, 2));
  const names = Array.from({ length: instanceCount }, (_, index) => `instance ${index + 1}`);
  const instances = await Promise.all(names.map((name) => startCluster(t, file, { name, args: ['--port', '0', '--dashboard-port', '0'] })));
  const nginx = await startNginxFor(t, instances.map((instance) => instance.port));
  const instanceOfPid = await workerPids(instances, names);

  const expectedMoves = users.filter((user) => versionOf(user, before) !== versionOf(user, after));
  t.true(expectedMoves.length > 0 && expectedMoves.length < users.length && expectedMoves.every((user) => versionOf(user, before) === 'v1'),
    `the users cover both versions and the edit moves some of them, only from v1 to v2 (${expectedMoves.length} of ${users.length})`);

  const answeredBefore = await sendEveryUser(t, nginx.url('/who'), instanceOfPid);
  t.deepEqual(wrongAnswers(answeredBefore, before), [], 'before the edit: each user, from all three instances, gets its hash\'s version');

  // One edit of the shared file, as an operator makes it: the CLI writes it atomically under its lock.
  const edit = await runCli(['weights', 'v1=20', 'v2=80', '--config', file]);
  t.is(edit.code, 0, edit.stderr);
  // When the write completed: the file's mtime, taken when its data was written, just before the rename that
  // replaced the file (so the delays below are, if anything, overstated).
  const writtenAt = statSync(file).mtimeMs;
  const pids = instances.map((instance) => instance.state.pid).sort((a, b) => a - b);
  t.true(edit.stdout.includes(`the 3 supervisors running with it (pids ${pids.join(', ')}) apply it within a second`), edit.stdout);
  const applied = await Promise.all(instances.map((instance) => instance.waitForStatus((status) => status.routing.weights?.v2 === 80, 10_000)));
  const delays = applied.map((status) => Math.round(status.configAppliedAt - writtenAt));
  const measured = delays.map((delay, index) => `${names[index]} after ${delay} ms`).join(', ');
  t.log(`the edit was applied by ${measured}`);
  t.true(delays.every((delay) => delay <= applyWithinMs), `each instance applied the edit within ${applyWithinMs} ms of the write: ${measured}`);

  const answeredAfter = await sendEveryUser(t, nginx.url('/who'), instanceOfPid);
  t.deepEqual(wrongAnswers(answeredAfter, after), [], 'after the edit: each user, from all three instances, gets its hash\'s new version');
  const moved = users.filter((user) => [...answeredBefore.get(user)!.versions].join() !== [...answeredAfter.get(user)!.versions].join());
  t.deepEqual(moved, expectedMoves, 'exactly the users whose hash the new split gave to v2 moved; every other user kept its version');
});
