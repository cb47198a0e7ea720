/**
 * The environment contract between the supervisor and a worker process: the supervisor encodes it when it
 * forks, the worker runtime decodes it at start. Names and defaults are written here only.
 */

/** What a worker is told at fork. */
export interface WorkerEnv {
  version: string;
  workerId: string;
  /** Absolute path of the app's main file. */
  entry: string;
  maxInFlight: number;
  /** Private folder for the worker's forward socket. */
  runDir: string;
  /** Where the primary really listens: what the app sees as its port and address. */
  port: number;
  host: string;
  statsIntervalMs: number;
  /** The version's own port (`versions.<name>.port`), on `host`, where the worker accepts connections itself. */
  versionPort: number | null;
}

const names = {
  version: 'GRAYCLUSTER_VERSION',
  workerId: 'GRAYCLUSTER_WORKER_ID',
  entry: 'GRAYCLUSTER_ENTRY',
  maxInFlight: 'GRAYCLUSTER_MAX_IN_FLIGHT',
  runDir: 'GRAYCLUSTER_RUN_DIR',
  host: 'GRAYCLUSTER_PUBLIC_HOST',
  statsIntervalMs: 'GRAYCLUSTER_STATS_INTERVAL_MS',
  versionPort: 'GRAYCLUSTER_VERSION_PORT',
} as const;

/**
 * The supervisor's own settings and secrets, inherited from its environment: never passed on to the app.
 * (cluster.fork merges process.env into the worker's; an undefined value leaves the name out.)
 */
const supervisorOnly = ['GRAYCLUSTER_TOKEN', 'GRAYCLUSTER_PORT', 'GRAYCLUSTER_DASHBOARD_PORT', 'GRAYCLUSTER_HEALTH_PORT', 'GRAYCLUSTER_CONFIG'] as const;

/** The env to fork a worker with: the version's own env, $PORT, and the runtime's settings. */
export function encodeWorkerEnv(worker: WorkerEnv, appEnv: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...appEnv, PORT: String(worker.port) };
  for (const name of supervisorOnly) if (!(name in appEnv)) env[name] = undefined;
  for (const [key, name] of Object.entries(names)) env[name] = String(worker[key as keyof typeof names] ?? '');
  return env;
}

/** The runtime's settings, read in the worker. */
export function decodeWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  return {
    version: env[names.version] ?? '',
    workerId: env[names.workerId] ?? '',
    entry: env[names.entry] ?? '',
    maxInFlight: Number(env[names.maxInFlight] ?? 1024),
    runDir: env[names.runDir] ?? '',
    port: Number(env.PORT ?? 0),
    host: env[names.host] ?? '0.0.0.0',
    statsIntervalMs: Number(env[names.statsIntervalMs] ?? 500),
    versionPort: env[names.versionPort] ? Number(env[names.versionPort]) : null,
  };
}
