/** One routing rule as written in the config file. */
export interface RuleOptions {
  query?: string;
  header?: string;
  cookie?: string;
  equals?: string;
  to?: string;
}

/** The config file as the user writes it: everything but `versions` and `routing.default` is optional. */
export interface ConfigFile {
  server?: Partial<ServerConfig>;
  dashboard?: Partial<DashboardConfig>;
  versions: Record<string, { entry: string; workers?: number; env?: Record<string, string>; maxInFlight?: number }>;
  routing: {
    default: string;
    rules?: RuleOptions[];
    weights?: Record<string, number>;
    sticky?: { key?: string; cookie?: string };
  };
}

export interface ServerConfig {
  host: string;
  port: number;
  versionHeader: string | false;
  maxHeadBytes: number;
  headTimeoutMs: number;
  maxPendingConnections: number;
  drainTimeoutMs: number;
  readyTimeoutMs: number;
  forwardMaxPending: number;
  statsIntervalMs: number;
}

export interface DashboardConfig {
  host: string;
  port: number;
  /** Null until the supervisor generates one at start. */
  token: string | null;
}

export interface VersionConfig {
  name: string;
  /** Absolute path of the app's main file. */
  entry: string;
  workers: number;
  env: Record<string, string>;
  maxInFlight: number;
}

/** A rule in evaluation form: where to look, and what a match routes to. */
export type Rule =
  | { source: 'query' | 'header' | 'cookie'; name: string; equals?: undefined; to?: undefined }
  | { source: 'query' | 'header' | 'cookie'; name: string; equals: string; to: string };

export type StickyKey = { source: 'ip' } | { source: 'cookie' | 'header'; name: string };

export interface RoutingConfig {
  default: string;
  rules: Rule[];
  /** In the order the versions appear in the file; zero weights left out. Empty: no weighted routing. */
  weights: Array<[version: string, weight: number]>;
  sticky: { key: StickyKey; cookie: string | null };
}

/** A validated config with every default filled in: what the rest of graycluster works with. */
export interface ResolvedConfig {
  /** Absolute path of the file it was read from. */
  file: string;
  /** The file's contents as written. */
  raw: ConfigFile;
  server: ServerConfig;
  dashboard: DashboardConfig;
  versions: Map<string, VersionConfig>;
  routing: RoutingConfig;
}

export const serverDefaults: ServerConfig = {
  host: '0.0.0.0',
  port: 8000,
  versionHeader: 'x-graycluster-version',
  maxHeadBytes: 16 * 1024,
  headTimeoutMs: 10_000,
  maxPendingConnections: 1024,
  drainTimeoutMs: 10_000,
  readyTimeoutMs: 15_000,
  forwardMaxPending: 256,
  statsIntervalMs: 1000,
};

export const dashboardDefaults: DashboardConfig = { host: '127.0.0.1', port: 9000, token: null };

export const versionDefaults = { workers: 1, maxInFlight: 1024 };
