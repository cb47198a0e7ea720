import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Conf from 'conf';
import { resolveLaunch } from './launch.js';
import { checkLogFilesDistinct, resolveLogFile, resolveLogs } from './logs.js';
import { resolveRollout } from './rollout.js';
import { describedRule, withoutUnionNoise, withReadableRules } from './schema-errors.js';
import { validate } from './schema-validator.js';
import { parseAddressRange } from '../shared/address-range.js';
import {
  dashboardDefaults, diagnosticsDefaults, healthDefaults, serverDefaults, versionDefaults,
  type ConfigFile, type LogFormat, type ResolvedConfig, type Rule, type RoutingConfig, type StickyKey, type VersionConfig,
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

/** dashboard.token's schema: the API matches `Bearer\s+(\S+)`, so a token with whitespace could never authenticate. */
const tokenSchema = schema.properties!.dashboard!.properties!.token! as JsonSchema & { minLength: number; pattern: string };
const tokenRule = describedRule(tokenSchema)!;
const usableToken = (token: string) => token.length >= tokenSchema.minLength && new RegExp(tokenSchema.pattern, 'u').test(token);

/** A config that cannot be used; the message names the file and the bad key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Values from the command line or environment that win over the file. */
export interface ConfigOverrides {
  port?: number;
  dashboardPort?: number;
  /** Overrides health.port (and so turns the probes on). */
  healthPort?: number;
  token?: string;
  /** `--log-format`: wins over `logs.format`. */
  logFormat?: LogFormat;
}

/** The sections of the file with a port graycluster listens on, which `graycluster start` can give instead. */
export type PortSection = 'server' | 'dashboard' | 'health';

/** For each such port: the override that replaces it, the start flag and how it is given (flag or variable). */
export const portOverrides: ReadonlyArray<{ section: PortSection; override: 'port' | 'dashboardPort' | 'healthPort'; flag: string; given: string }> = [
  { section: 'server', override: 'port', flag: '--port', given: '--port or $GRAYCLUSTER_PORT' },
  { section: 'dashboard', override: 'dashboardPort', flag: '--dashboard-port', given: '--dashboard-port or $GRAYCLUSTER_DASHBOARD_PORT' },
  { section: 'health', override: 'healthPort', flag: '--health-port', given: '--health-port or $GRAYCLUSTER_HEALTH_PORT' },
];

/** How a port's override is given, for messages: "--port or $GRAYCLUSTER_PORT". */
const portGiven = (section: PortSection) => portOverrides.find((each) => each.section === section)!.given;

/**
 * The file's contents, read and validated against the schema now, by the validator compiled at build time
 * (schema-validator.js): the same checks and messages as `conf`'s, without loading conf, ajv and a schema compiler
 * into a primary that only reads its file.
 */
export function readConfigFile(file: string): ConfigFile {
  const absolute = path.resolve(file);
  if (!existsSync(absolute)) throw new ConfigError(`config file not found: ${absolute}`);
  try {
    const data: unknown = JSON.parse(readFileSync(absolute, 'utf8'));
    checkSchema(data);
    return Object.assign(Object.create(null) as ConfigFile, data);  // A plain object without a prototype, as conf gives.
  } catch (error) {
    throw new ConfigError(describeLoadError(absolute, error));
  }
}

/** Throws a ConfigError naming `file` and each bad key when `contents` (an edited copy, say) do not match the schema. */
export function checkConfigContents(file: string, contents: unknown): void {
  try {
    checkSchema(contents);
  } catch (error) {
    throw new ConfigError(describeLoadError(path.resolve(file), error, contents));
  }
}

/** Throws conf's own "Config schema violation: …" message when `data` does not match the schema. */
function checkSchema(data: unknown): void {
  if (validate(data) || !validate.errors) return;
  const errors = withReadableRules(withoutUnionNoise(validate.errors, schema), schema, data).map(({ instancePath, message = '', keyword, params }) => {
    const allowed = keyword === 'enum' ? params.allowedValues : undefined;
    return `\`${instancePath.slice(1)}\`${message.startsWith(':') ? '' : ' '}${message}${allowed ? ` (${allowed.map((value) => JSON.stringify(value)).join(', ')})` : ''}`;
  });
  throw new Error(`Config schema violation: ${errors.join('; ')}`);
}

/**
 * Writes `contents` to the config file through `conf`, which validates them against the schema, then writes to a
 * temp file and renames it. Only what changed is rewritten, in the file's own layout (file-format.ts). conf is
 * loaded on the first write: a primary that is never edited never loads it.
 */
export async function writeConfigFile(file: string, contents: ConfigFile): Promise<void> {
  const absolute = path.resolve(file);
  try {
    const [Store, { editedText }] = await Promise.all([loadConf(), import('./file-format.js')]);
    const text = readFileSync(absolute, 'utf8');
    const store = createStore(Store, absolute, (value) => editedText(text, value));
    store.store = contents;
  } catch (error) {
    throw new ConfigError(describeLoadError(absolute, error, contents));
  }
}

/** The signals whose handlers a running primary owns (cli/start.ts). */
const ownedSignals = ['SIGINT', 'SIGTERM'] as const;

/**
 * conf's atomic writer (through when-exit) hooks SIGINT and SIGTERM when first imported and raises them again
 * after its clean-up; in a process that already handles them (a primary stopping gracefully) that echo reads as a
 * second signal, so the hooks it adds to those two are taken off again there.
 */
async function loadConf(): Promise<typeof Conf> {
  const before = new Map(ownedSignals.map((signal) => [signal, process.listeners(signal)]));
  const { default: loaded } = await import('conf');
  for (const [signal, listeners] of before) {
    if (listeners.length === 0) continue;
    for (const listener of process.listeners(signal)) if (!listeners.includes(listener)) process.off(signal, listener);
  }
  return loaded;
}

function createStore(Store: typeof Conf, absolute: string, serialize: (value: ConfigFile) => string): Conf<ConfigFile> {
  const extension = path.extname(absolute);
  const { properties, ...rootSchema } = schema;
  return new Store<ConfigFile>({
    cwd: path.dirname(absolute),
    configName: path.basename(absolute, extension),
    fileExtension: extension.slice(1),
    // conf types `schema` per key of the store; ours is the file's JSON Schema.
    schema: properties as never,
    rootSchema: rootSchema as never,
    ajvOptions: { useDefaults: false, strict: false },
    serialize,
    // conf's default (0o666) would make every edit world-readable, and the file may hold dashboard.token.
    // Left unset, its writer (atomically) gives the new file the mode and owner of the one it replaces.
    configFileMode: undefined,
  });
}

/** Reads, validates and resolves a config file. Throws ConfigError naming the bad key. */
export function loadConfig(file: string, overrides: ConfigOverrides = {}): ResolvedConfig {
  return resolveConfig(path.resolve(file), readConfigFile(file), overrides);
}

/** Fills in defaults and checks what the schema cannot: that every version named exists. */
export function resolveConfig(file: string, raw: ConfigFile, overrides: ConfigOverrides = {}): ResolvedConfig {
  const fail = (key: string, message: string): never => {
    throw new ConfigError(`${file}: ${key} ${message}`);
  };
  const folder = path.dirname(file);
  const logs = resolveLogs(raw.logs, overrides.logFormat);
  const versions = new Map<string, VersionConfig>();
  for (const [name, version] of Object.entries(raw.versions)) {
    // The schema's pattern lets these through; as keys of the plain objects that carry versions around (settings,
    // weights) they would read Object.prototype's members instead.
    if (name in Object.prototype) fail(`versions.${name}`, `is not a usable version name: every JavaScript object has a property "${name}"`);
    versions.set(name, {
      name,
      entry: path.resolve(folder, version.entry),
      workers: version.workers ?? versionDefaults.workers,
      env: version.env ?? {},
      maxInFlight: version.maxInFlight ?? versionDefaults.maxInFlight,
      maxMemoryMB: version.maxMemoryMB ?? null,
      maxMemoryHardMB: version.maxMemoryHardMB ?? null,
      ...resolveLaunch(`versions.${name}`, version, folder, fail),
      logFile: resolveLogFile(`versions.${name}`, version.logFile, folder, logs, fail, raw.logs?.maxLineBytes === undefined),
      port: version.port ?? null,
    });
    if (version.maxMemoryHardMB !== undefined && version.maxMemoryMB !== undefined && version.maxMemoryHardMB < version.maxMemoryMB) {
      fail(`versions.${name}.maxMemoryHardMB`, `(${version.maxMemoryHardMB}) must not be below versions.${name}.maxMemoryMB (${version.maxMemoryMB})`);
    }
  }
  checkLogFilesDistinct(versions.values(), fail);
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
    versionCookie: raw.routing.versionCookie ?? null,
  };
  if (routing.versionCookie !== null && routing.versionCookie === routing.sticky.cookie) fail('routing.versionCookie', `must not be the sticky cookie's name ("${routing.versionCookie}")`);
  const keyCookie = routing.sticky.key.source === 'cookie' ? routing.sticky.key.name : null;
  if (routing.versionCookie !== null && routing.versionCookie === keyCookie) fail('routing.versionCookie', `must not be the cookie routing.sticky.key reads ("${keyCookie}"): it would replace each user's key with a version's name`);

  const server = { ...serverDefaults, ...raw.server, ...(overrides.port === undefined ? {} : { port: overrides.port }) };
  if (server.trustProxy !== false) {
    server.trustProxy.forEach((range, index) => {
      if (!parseAddressRange(range)) fail(`server.trustProxy[${index}]`, `"${range}" is not an IP address or CIDR range (like "10.0.0.0/8")`);
    });
  }

  // Checks between keys hold on the resolved values, a default included: the message leads with a key the file set
  // and says which value is a default.
  type Timing = 'statsIntervalMs' | 'handoffTimeoutMs' | 'heartbeatTimeoutMs' | 'unresponsiveRestartMs';
  const isSet = (name: Timing) => raw.server?.[name] !== undefined;
  const shown = (name: Timing) => `server.${name} (${server[name]}${isSet(name) ? '' : ', its default'})`;
  const below = (lower: Timing, upper: Timing, why: string) => {
    if (server[lower] < server[upper]) return;
    if (!isSet(lower) && isSet(upper)) fail(`server.${upper}`, `(${server[upper]}) must be above ${shown(lower)}: ${why}`);
    fail(`server.${lower}`, `(${server[lower]}${isSet(lower) ? '' : ', its default'}) must be below ${shown(upper)}: ${why}`);
  };
  below('handoffTimeoutMs', 'unresponsiveRestartMs', "a stuck worker's connections must go elsewhere before it is killed");
  below('heartbeatTimeoutMs', 'unresponsiveRestartMs', 'a silent worker is flagged unresponsive (and gets no connections) before it is killed');
  below('statsIntervalMs', 'heartbeatTimeoutMs', 'a worker reports every statsIntervalMs, its heartbeat, so a healthy one would be flagged unresponsive between two reports');
  const dashboard = {
    ...dashboardDefaults,
    ...raw.dashboard,
    ...(overrides.dashboardPort === undefined ? {} : { port: overrides.dashboardPort }),
    ...(overrides.token === undefined ? {} : { token: overrides.token }),
  };
  // A value given on the command line or in the environment is named as the flag or variable that gave it.
  const given = (key: string, flag: string, override: unknown) => (override === undefined ? key : `${key} (given by ${flag})`);
  /** A port's key as a clash names it: with the flag that gave it, or as a default the file left out. */
  const portKey = (key: string, flag: string, override: number | undefined, written: unknown) => (
    override === undefined && written === undefined ? `${key} (its default)` : given(key, flag, override));
  // $GRAYCLUSTER_TOKEN (and an edit) passes no schema: its rule is checked here, the schema's own.
  if (dashboard.token !== null && !usableToken(dashboard.token)) {
    fail(given('dashboard.token', '$GRAYCLUSTER_TOKEN', overrides.token), `is not a usable ${tokenRule.subject} (${tokenRule.rule})`);
  }
  const health = { ...healthDefaults, ...raw.health, ...(overrides.healthPort === undefined ? {} : { port: overrides.healthPort }) };
  // Two listeners on one port: the second would fail at start with a bare EADDRINUSE. 0 (any free port) never clashes.
  const serverKey = portKey('server.port', portGiven('server'), overrides.port, raw.server?.port);
  const dashboardKey = portKey('dashboard.port', portGiven('dashboard'), overrides.dashboardPort, raw.dashboard?.port);
  const healthKey = given('health.port', portGiven('health'), overrides.healthPort);
  if (dashboard.port !== 0 && dashboard.port === server.port) {
    // Led by the one the file or a flag set (server.port when both were).
    const dashboardDefaulted = overrides.dashboardPort === undefined && raw.dashboard?.port === undefined;
    const [first, second] = dashboardDefaulted ? [serverKey, dashboardKey] : [dashboardKey, serverKey];
    fail(first, `(${dashboard.port}) must differ from ${second}`);
  }
  for (const [key, taken] of [[serverKey, server.port], [dashboardKey, dashboard.port]] as const) {
    if (health.port !== null && health.port !== 0 && health.port === taken) fail(healthKey, `(${health.port}) must differ from ${key}`);
  }
  checkVersionPorts(versions.values(), [[serverKey, server.port], [dashboardKey, dashboard.port], [healthKey, health.port]], fail);
  return {
    file,
    raw,
    server,
    dashboard,
    health,
    diagnostics: { ...diagnosticsDefaults, ...raw.diagnostics, folder: path.resolve(folder, raw.diagnostics?.folder ?? diagnosticsDefaults.folder) },
    logs,
    versions,
    routing,
    rollout: resolveRollout(raw, fail),
  };
}

/**
 * Each version's own port differs from every other port graycluster listens on: `others`, the config's own, and for a
 * running supervisor also those it still holds (see Reconfigurer.holdPorts).
 */
/**
 * The ports a running supervisor bound at start (`server.port` and the others, 0 resolved; null: none), labelled for
 * checkVersionPorts: a changed `server.port` only takes effect at a restart, so the old one stays open meanwhile.
 */
export function heldPorts(bound: Record<PortSection, number | null>): Array<[key: string, port: number | null]> {
  return portOverrides.map(({ section }) => [`${section}.port (held by the running graycluster until it restarts)`, bound[section]]);
}

export function checkVersionPorts(versions: Iterable<VersionConfig>, others: Array<[key: string, port: number | null]>, fail: (key: string, message: string) => never): void {
  const taken = [...others];
  for (const version of versions) {
    if (version.port === null) continue;
    const key = `versions.${version.name}.port`;
    const clash = taken.find(([, port]) => port === version.port);
    if (clash) fail(key, `(${version.port}) must differ from ${clash[0]}`);
    taken.push([key, version.port]);
  }
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

/**
 * Where in `file` its JSON first goes wrong, as " at line L, column C" (empty when it cannot be read): Node's own
 * message gives an offset or quotes the text instead. Only on this error path is the parser loaded.
 */
function jsonErrorPlace(file: string): string {
  try {
    const text = readFileSync(file, 'utf8');
    const errors: Array<{ offset: number }> = [];
    (createRequire(import.meta.url)('jsonc-parser') as typeof import('jsonc-parser')).parse(text, errors as never, { allowTrailingComma: false, disallowComments: true });
    const offset = errors[0]?.offset ?? text.length;
    const before = text.slice(0, offset).split(/\r?\n/);
    return ` at line ${before.length}, column ${before.at(-1)!.length + 1}`;
  } catch {
    return '';
  }
}

/** A load or write error as one message naming the file and each bad key; `contents`: what was checked, when not the file's. */
export function describeLoadError(file: string, error: unknown, contents?: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof SyntaxError) return `${file}: invalid JSON${jsonErrorPlace(file)}: ${message.replace(/, "[^]*" is not valid JSON$/, '').replace(/ in JSON at position \d+$/, '')}`;
  const [, violations] = /^Config schema violation: (.*)$/s.exec(message) ?? [];
  if (violations === undefined) return `${file}: ${message}`;
  const checked = () => contents ?? JSON.parse(readFileSync(file, 'utf8'));
  return `${file}: ${violations.split('; ').map((item) => explainViolation(checked, item)).join('; ')}`;
}

/** Turns conf's "`versions/v1` must NOT have additional properties" into "versions.v1.entyr is not a known key". */
function explainViolation(checked: () => unknown, violation: string): string {
  const match = /^`([^`]*)`( ?)(.*)$/s.exec(violation);
  if (!match) return violation;
  const [, pointer = '', space = '', message = ''] = match;
  const key = pointer === '' ? '(top level)' : pointer.split('/').join('.');
  if (message === 'must NOT have additional properties') {
    const unknown = unknownKeys(checked(), pointer);
    if (unknown.length > 0) return unknown.map((name) => `${pointer ? `${key}.` : ''}${name} is not a known key`).join('; ');
  }
  return `${key}${space}${message}`;
}

/** The keys at `pointer` in `contents` that the schema does not allow. */
function unknownKeys(contents: unknown, pointer: string): string[] {
  let value = contents;
  let node: JsonSchema | undefined = schema;
  for (const part of pointer === '' ? [] : pointer.split('/')) {
    value = (value as Record<string, unknown>)?.[part];
    node = node?.properties?.[part] ?? (typeof node?.additionalProperties === 'object' ? node.additionalProperties : node?.items);
  }
  const known = node?.properties;
  if (!known || typeof value !== 'object' || value === null) return [];
  return Object.keys(value).filter((name) => !(name in known));
}
