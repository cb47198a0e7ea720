import { randomBytes, randomInt } from 'node:crypto';
import { parse as parseCookies } from 'cookie';
import murmurhash from 'murmurhash';
import type { RequestHead } from './head.js';
import type { RoutingConfig, Rule, StickyKey } from '../config/types.js';

/** Hash values run over 0 … 2³² − 1; weights split that range. */
const hashRange = 2 ** 32;

/** Where a request goes, and why. */
export interface Decision {
  version: string;
  /**
   * True when a rule or the request's own sticky key chose the version, so every request carrying the same
   * values must reach it; false when it was a fresh weighted pick or the default.
   */
  determined: boolean;
  reason: 'rule' | 'sticky' | 'weighted' | 'default';
  /** A value for the sticky cookie that the response should set, for a client that had no key. */
  assignCookie?: string;
}

/**
 * The sticky hash of a key: MurmurHash2 (seed 0) of its bytes, a 32-bit unsigned integer, as nginx's
 * `split_clients` hashes its string. It depends on nothing but the key, so every host and every restart agrees,
 * and a proxy that splits users with `split_clients` on the same key agrees too (see splitClientsParts). Header
 * values reach Node as one character per byte (latin1), so those bytes are hashed.
 */
export function stickyHash(key: string): number {
  return murmurhash.v2(Buffer.from(key, 'latin1'), 0);
}

/** One line of an nginx `split_clients` block: a version and its share in hundredths of a percent, or the rest. */
export interface SplitPart {
  version: string;
  /** Hundredths of a percent (5000 is `50%`); undefined for the last version, which takes the rest (`*`). */
  hundredths: number | undefined;
}

/**
 * The weights as nginx's `split_clients` lines: versions with a weight above 0 in the order they are listed, the
 * edges between them at their cumulative shares rounded to hundredths of a percent (so the lines never add up to
 * more than 100%), the last taking the rest; a version whose share rounds to nothing is left out, as nginx
 * refuses a 0% line. versionForHash splits the hash range exactly as nginx does with these lines, so an nginx
 * block written from them sends every key to the version graycluster picks for it.
 */
export function splitClientsParts(weights: RoutingConfig['weights']): SplitPart[] {
  const weighted = weights.filter(([, weight]) => weight > 0);
  const total = weighted.reduce((sum, [, weight]) => sum + weight, 0);
  const parts: SplitPart[] = [];
  let cumulative = 0;
  let edge = 0;
  weighted.forEach(([version, weight], index) => {
    if (index === weighted.length - 1) {
      parts.push({ version, hundredths: undefined });
      return;
    }
    cumulative += weight;
    const next = Math.round((cumulative / total) * 10_000);
    if (next > edge) parts.push({ version, hundredths: next - edge });
    edge = next;
  });
  return parts;
}

/**
 * The version that owns a hash value. Versions take consecutive ranges in the order they are listed, each in
 * proportion to its weight: with { v1: 90, v2: 10 } the first 90% of the range is v1's and the rest v2's, so
 * raising v2 to 20 moves part of v1's range and no v2 user ever leaves v2.
 */
export function versionForHash(hash: number, weights: RoutingConfig['weights']): string | undefined {
  let ranges = rangesOf.get(weights);
  if (ranges === undefined) rangesOf.set(weights, (ranges = hashRanges(weights)));
  for (const [version, end] of ranges) if (hash < end) return version;
  return undefined;
}

/** Each weights list's ranges, made on first use: this runs for every request a sticky key routes. */
const rangesOf = new WeakMap<RoutingConfig['weights'], Array<[version: string, end: number]>>();

/**
 * The hash ranges of splitClientsParts, with nginx's edges (ngx_http_split_clients_module): each part adds
 * ⌊hundredths × (2³² − 1) / 10000⌋ to the last edge, and the last part takes the rest.
 */
function hashRanges(weights: RoutingConfig['weights']): Array<[version: string, end: number]> {
  let edge = 0;
  return splitClientsParts(weights).map(({ version, hundredths }) => {
    if (hundredths === undefined) return [version, hashRange];
    edge += Math.floor((hundredths * (hashRange - 1)) / 10_000);
    return [version, edge];
  });
}

/** Request values, each parsed at most once and only when a rule asks for it. */
class RequestValues {
  #query: URLSearchParams | undefined;
  #cookies: Record<string, string | undefined> | undefined;
  constructor(private readonly head: RequestHead) {}

  get(source: 'query' | 'header' | 'cookie', name: string): string | undefined {
    if (source === 'header') return this.head.headers[name];
    if (source === 'cookie') {
      this.#cookies ??= this.head.headers.cookie ? parseCookies(this.head.headers.cookie) : {};
      return this.#cookies[name];
    }
    if (!this.#query) {
      const mark = this.head.target.indexOf('?');
      this.#query = new URLSearchParams(mark === -1 ? '' : this.head.target.slice(mark + 1));
    }
    return this.#query.get(name) ?? undefined;
  }

  stickyKey(key: StickyKey): string | undefined {
    if (key.source === 'ip') return this.head.remoteAddress || undefined;
    const value = this.get(key.source, key.name);
    return value === '' ? undefined : value;
  }
}

function matchRule(rule: Rule, values: RequestValues, versions: ReadonlySet<string>): string | undefined {
  const value = values.get(rule.source, rule.name);
  if (value === undefined) return undefined;
  if (rule.to !== undefined) return value === rule.equals ? rule.to : undefined;
  return versions.has(value) ? value : undefined;
}

/**
 * Picks the version for one request: the first matching rule, else the sticky key's hash on the weights,
 * else (no key) a weighted pick that the sticky cookie, when configured, makes permanent; with no weights, the
 * default. Pure but for the random pick of a client without a key.
 */
export function decide(head: RequestHead, routing: RoutingConfig, versions: ReadonlySet<string>): Decision {
  const values = new RequestValues(head);
  for (const rule of routing.rules) {
    const version = matchRule(rule, values, versions);
    if (version !== undefined) return { version, determined: true, reason: 'rule' };
  }
  if (routing.weights.length === 0) return { version: routing.default, determined: false, reason: 'default' };

  const key = values.stickyKey(routing.sticky.key)
    ?? (routing.sticky.cookie === null ? undefined : values.get('cookie', routing.sticky.cookie) || undefined);
  if (key !== undefined) {
    const version = versionForHash(stickyHash(key), routing.weights) ?? routing.default;
    return { version, determined: true, reason: 'sticky' };
  }
  if (routing.sticky.cookie !== null) {
    const assignCookie = randomBytes(12).toString('base64url');
    const version = versionForHash(stickyHash(assignCookie), routing.weights) ?? routing.default;
    return { version, determined: false, reason: 'weighted', assignCookie };
  }
  const version = versionForHash(randomInt(hashRange), routing.weights) ?? routing.default;
  return { version, determined: false, reason: 'weighted' };
}
