import { readFileSync } from 'node:fs';
import type { RolloutOptions } from '../../src/config/types.js';
import type { RolloutReport } from '../../src/rollout/report.js';
import { fixture, get, makeConfig, runCli, type Cluster } from './cluster.js';
import { steadyLoad } from './load.js';

/** Users of the sticky header; a load cycles through them, so every step moves whole users. */
export const users = Array.from({ length: 200 }, (_, index) => `user-${index}`);

/**
 * Two versions of the fault-injecting app (fixtures/canary-app.mjs) weighted by the sticky header x-user, and a
 * rollout of v2 with short steps. Gates a test does not exercise keep thresholds a busy test machine cannot
 * cross by itself (event-loop delay on 2 shared cores), so that only the fault under test decides.
 */
export function canaryConfig(env: { v1?: Record<string, string>; v2?: Record<string, string> }, rollout: Partial<RolloutOptions> | null = {}) {
  const config = makeConfig(
    { v1: { entry: fixture('canary-app.mjs'), env: env.v1 }, v2: { entry: fixture('canary-app.mjs'), env: env.v2 } },
    { sticky: { key: 'header:x-user' } },
    { statsIntervalMs: 100 },
  );
  if (rollout === null) return config;
  return {
    ...config,
    rollout: { version: 'v2', steps: [10, 30, 60, 100], stepMs: 2000, checkIntervalMs: 250, minRequests: 50, ...rollout, gates: { eventLoop: { maxDelayMs: 5000 }, ...rollout.gates } },
  };
}

/** Requests from every user in turn, each on a new connection, until stopped. */
export function usersLoad(cluster: Cluster, clients = 4) {
  let next = 0;
  return steadyLoad(() => cluster.url('/'), { clients, keepAlive: false, headers: () => ({ 'x-user': users[next++ % users.length]! }) });
}

/** Waits for the rollout in /api/status to pass `check`. */
export async function waitForRollout(cluster: Cluster, check: (rollout: RolloutReport) => boolean, timeoutMs = 30_000): Promise<RolloutReport> {
  const status = await cluster.waitForStatus((status) => status.rollout !== null && check(status.rollout), timeoutMs)
    .catch(async (error: Error) => {
      throw new Error(`${error.message.split('\n')[0]}\nrollout: ${JSON.stringify((await cluster.status()).rollout, null, 2)}`);
    });
  return status.rollout!;
}

/** Which version answers each user now. */
export async function versionsOfUsers(cluster: Cluster): Promise<Map<string, string[]>> {
  const byVersion = new Map<string, string[]>();
  for (let index = 0; index < users.length; index += 50) {
    const answers = await Promise.all(users.slice(index, index + 50).map(async (user) => [user, (await get(cluster.url('/'), { 'x-user': user })).body.version as string] as const));
    for (const [user, version] of answers) byVersion.set(version, [...(byVersion.get(version) ?? []), user]);
  }
  return byVersion;
}

/** The config file as the supervisor left it. */
export const fileOf = (cluster: Cluster) => JSON.parse(readFileSync(cluster.configFile, 'utf8'));

/** Runs the real CLI; resolves with its exit code and output. */
export const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { env });
