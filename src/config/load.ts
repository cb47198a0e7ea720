import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Conf from 'conf';
import { resolveLaunch } from './launch.js';
import { resolveRollout } from './rollout.js';
import { parseAddressRange } from '../shared/address-range.js';
import {
  dashboardDefaults, serverDefaults, versionDefaults,
  type ConfigFile, type ResolvedConfig, type Rule, type RoutingConfig, type StickyKey, type VersionConfig,
} from './types.js';

/** The JSON Schema of the config file, shipped beside it so editors can autocomplete. */
export const schemaFile = new URL('../../../config/graycluster.schema.json', import.meta.url);

interface JsonSchema {
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  [keyword: string]: unknown;
}

const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as JsonSchema;

/** A config that cannot be used; the message names the file and the bad key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Values from the command line or environment that win over the file. */
export interface ConfigOverrides {
  port?: number;
  dashboardPort?: number;
  token?: string;
}

/**
 * Opens the config file through `conf`, which validates it against the schema.
 * Nothing is ever written here: the schema carries no defaults, so `conf` finds nothing to add.
 * A new store each time, dropped after use: its compiled schema (about 1 MB of heap) is not worth keeping in a
 * supervisor that reads its file only when it changes; compiling it again takes a few milliseconds.
 */
export function openStore(file: string): Conf<ConfigFile> {
  const absolute = path.resolve(file);
  if (!existsSync(absolute)) throw new ConfigError(`config file not found: ${absolute}`);
  try {
    return createStore(absolute);
  } catch (error) {
    throw new ConfigError(describeLoadError(absolute, error));
  }
}

function createStore(absolute: string): Conf<ConfigFile> {
  const extension = path.extname(absolute);
  const { properties, ...rootSchema } = schema;
  return new Conf<ConfigFile>({
    cwd: path.dirname(absolute),
    configName: path.basename(absolute, extension),
    fileExtension: extension.slice(1),
    // conf types `schema` per key of the store; ours is the file's JSON Schema.
    schema: properties as never,
    rootSchema: rootSchema as never,
    ajvOptions: { useDefaults: false, strict: false },
    serialize: (value) => `${JSON.stringify(value, null, 2)}\n`,
    // conf's default (0o666) would make every edit world-readable, and the file may hold dashboard.token.
    // Left unset, its writer (atomically) gives the new file the mode and owner of the one it replaces.
    configFileMode: undefined,
  });
}

/** The file's contents, read and validated against the schema now. */
export function readStore(store: Conf<ConfigFile>): ConfigFile {
  try {
    return store.store;
  } catch (error) {
    throw new ConfigError(describeLoadError(store.path, error));
  }
}

/** Reads, validates and resolves a config file. Throws ConfigError naming the bad key. */
export function loadConfig(file: string, overrides: ConfigOverrides = {}): ResolvedConfig {
  const store = openStore(file);
  return resolveConfig(store.path, readStore(store), overrides);
}

/** Fills in defaults and checks what the schema cannot: that every version named exists. */
export function resolveConfig(file: string, raw: ConfigFile, overrides: ConfigOverrides = {}): ResolvedConfig {
  const fail = (key: string, message: string): never => {
    throw new ConfigError(`${file}: ${key} ${message}`);
  };
  const folder = path.dirname(file);
  const versions = new Map<string, VersionConfig>();
  for (const [name, version] of Object.entries(raw.versions)) {
    versions.set(name, {
      name,
      entry: path.resolve(folder, version.entry),
      workers: version.workers ?? versionDefaults.workers,
      env: version.env ?? {},
      maxInFlight: version.maxInFlight ?? versionDefaults.maxInFlight,
      maxMemoryMB: version.maxMemoryMB ?? null,
      maxMemoryHardMB: version.maxMemoryHardMB ?? null,
      ...resolveLaunch(`versions.${name}`, version, folder, fail),
    });
    if (version.maxMemoryHardMB !== undefined && version.maxMemoryMB !== undefined && version.maxMemoryHardMB < version.maxMemoryMB) {
      fail(`versions.${name}.maxMemoryHardMB`, `(${version.maxMemoryHardMB}) must not be below versions.${name}.maxMemoryMB (${version.maxMemoryMB})`);
    }
  }
  const known = (key: string, version: string) => {
    if (!versions.has(version)) fail(key, `names unknown version "${version}" (known: ${[...versions.keys()].join(', ')})`);
  };

  known('routing.default', raw.routing.default);
  const rules = (raw.routing.rules ?? []).map((rule, index): Rule => {
    const source = rule.query !== undefined ? 'query' : rule.header !== undefined ? 'header' : 'cookie';
    const name = (rule[source] as string);
    if (rule.to === undefined) return { source, name: source === 'header' ? name.toLowerCase() : name };
    known(`routing.rules[${index}].to`, rule.to);
    return { source, name: source === 'header' ? name.toLowerCase() : name, equals: rule.equals as string, to: rule.to };
  });
  const weights: Array<[string, number]> = [];
  for (const [version, weight] of Object.entries(raw.routing.weights ?? {})) {
    known(`routing.weights.${version}`, version);
    if (weight > 0) weights.push([version, weight]);
  }
  if (raw.routing.weights && Object.keys(raw.routing.weights).length > 0 && weights.length === 0) {
    fail('routing.weights', 'must give at least one version a weight above 0');
  }
  const routing: RoutingConfig = {
    default: raw.routing.default,
    rules,
    weights,
    sticky: { key: parseStickyKey(raw.routing.sticky?.key ?? 'ip'), cookie: raw.routing.sticky?.cookie ?? null },
  };

  const server = { ...serverDefaults, ...raw.server, ...(overrides.port === undefined ? {} : { port: overrides.port }) };
  if (server.trustProxy !== false) {
    server.trustProxy.forEach((range, index) => {
      if (!parseAddressRange(range)) fail(`server.trustProxy[${index}]`, `"${range}" is not an IP address or CIDR range (like "10.0.0.0/8")`);
    });
  }

  if (raw.server?.handoffTimeoutMs !== undefined && server.handoffTimeoutMs >= server.unresponsiveRestartMs) {
    fail('server.handoffTimeoutMs', `(${server.handoffTimeoutMs}) must be below server.unresponsiveRestartMs (${server.unresponsiveRestartMs}): a stuck worker's connections must go elsewhere before it is killed`);
  }
  return {
    file,
    raw,
    server,
    dashboard: {
      ...dashboardDefaults,
      ...raw.dashboard,
      ...(overrides.dashboardPort === undefined ? {} : { port: overrides.dashboardPort }),
      ...(overrides.token === undefined ? {} : { token: overrides.token }),
    },
    versions,
    routing,
    rollout: resolveRollout(raw, fail),
  };
}

export function parseStickyKey(key: string): StickyKey {
  if (key === 'ip') return { source: 'ip' };
  const colon = key.indexOf(':');
  const source = key.slice(0, colon);
  const name = key.slice(colon + 1);
  if (source === 'header') return { source, name: name.toLowerCase() };
  if (source === 'cookie') return { source, name };
  throw new ConfigError(`routing.sticky.key must be "ip", "cookie:NAME" or "header:NAME", not "${key}"`);
}

export function describeLoadError(file: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof SyntaxError) return `${file}: invalid JSON: ${message}`;
  const violation = /^Config schema violation: (.*)$/s.exec(message);
  if (!violation) return `${file}: ${message}`;
  return `${file}: ${violation[1]!.split('; ').map((item) => explainViolation(file, item)).join('; ')}`;
}

/** Turns conf's "`versions/v1` must NOT have additional properties" into "versions.v1.entyr is not a known key". */
function explainViolation(file: string, violation: string): string {
  const match = /^`([^`]*)` (.*)$/s.exec(violation);
  if (!match) return violation;
  const [, pointer = '', message = ''] = match;
  const key = pointer === '' ? '(top level)' : pointer.split('/').join('.');
  if (message === 'must NOT have additional properties') {
    const unknown = unknownKeys(file, pointer);
    if (unknown.length > 0) return unknown.map((name) => `${pointer ? `${key}.` : ''}${name} is not a known key`).join('; ');
  }
  return `${key} ${message}`;
}

/** The keys at `pointer` in the file that the schema does not allow. */
function unknownKeys(file: string, pointer: string): string[] {
  let value: unknown = JSON.parse(readFileSync(file, 'utf8'));
  let node: JsonSchema | undefined = schema;
  for (const part of pointer === '' ? [] : pointer.split('/')) {
    value = (value as Record<string, unknown>)?.[part];
    node = node?.properties?.[part] ?? (typeof node?.additionalProperties === 'object' ? node.additionalProperties : node?.items);
  }
  if (!node?.properties || typeof value !== 'object' || value === null) return [];
  return Object.keys(value).filter((name) => !(name in node.properties!));
}
