// Configs for a graycluster under test or under the bench: loopback only, every port ephemeral.
import path from 'node:path';

/** The repository (this file runs as dist/test/helpers/config.js). */
export const root = path.resolve(import.meta.dirname, '../../..');
export const bin = path.join(root, 'bin/graycluster.js');
export const fixture = (name: string) => path.join(root, 'test/fixtures', name);
/** The dashboard token makeConfig writes, unless its `dashboard` argument says otherwise. */
export const token = 'test-token-0123456789abcdef';

export interface VersionOptions {
  /** The app (default: test/fixtures/app.mjs). */
  entry?: string;
  workers?: number;
  /** Added to APP_VERSION, which is the version's name. */
  env?: Record<string, string>;
  maxInFlight?: number;
  /** The version's own port (versions.<name>.port). */
  port?: number;
}

/**
 * A config with every port ephemeral and every listener on 127.0.0.1; `versions` maps a name to its app and
 * options, the first is the default. `routing`, `server` and `dashboard` add (or override) options of theirs.
 */
export function makeConfig(versions: Record<string, VersionOptions>, routing: Record<string, unknown> = {}, server: Record<string, unknown> = {}, dashboard: Record<string, unknown> = {}) {
  return {
    server: { host: '127.0.0.1', port: 0, ...server },
    dashboard: { host: '127.0.0.1', port: 0, token, ...dashboard },
    versions: Object.fromEntries(Object.entries(versions).map(([name, version]) => [name, {
      entry: version.entry ?? fixture('app.mjs'),
      workers: version.workers ?? 1,
      env: { APP_VERSION: name, ...version.env },
      ...(version.maxInFlight ? { maxInFlight: version.maxInFlight } : {}),
      ...(version.port ? { port: version.port } : {}),
    }])),
    routing: { default: Object.keys(versions)[0], ...routing },
  };
}
