import { hash, randomBytes, randomInt } from 'node:crypto';
import { parse as parseCookies } from 'cookie';
import type { RequestHead } from './head.js';
import type { RoutingConfig, Rule, StickyKey } from '../config/types.js';

/** Buckets a sticky key is hashed into; weights are shares of these. */
export const bucketCount = 100;

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
 * The sticky bucket of a key: the first 4 bytes of SHA-256(key) as a big-endian unsigned integer, modulo 100.
 * It depends on nothing but the key, so every host and every restart agrees.
 */
export function bucketOf(key: string): number {
  // The digest as a binary (latin1) string, one character per byte: a third of the cost of a Buffer, and this runs
  // for every request a sticky key routes.
  const digest = hash('sha256', key, 'binary');
  const high = digest.charCodeAt(0) * 0x1000000;
  return (high + ((digest.charCodeAt(1) << 16) | (digest.charCodeAt(2) << 8) | digest.charCodeAt(3))) % bucketCount;
}

/**
 * The version that owns a bucket. Versions take consecutive runs of buckets in the order they are listed,
 * each in proportion to its weight: with { v1: 90, v2: 10 } buckets 0–89 are v1's and 90–99 are v2's, so raising
 * v2 to 20 moves buckets 80–89 and no v2 user ever leaves v2.
 */
export function versionForBucket(bucket: number, weights: RoutingConfig['weights']): string | undefined {
  const total = weights.reduce((sum, [, weight]) => sum + weight, 0);
  const point = ((bucket + 0.5) * total) / bucketCount;
  let edge = 0;
  for (const [version, weight] of weights) {
    edge += weight;
    if (point < edge) return version;
  }
  return weights.at(-1)?.[0];
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
 * Picks the version for one request: the first matching rule, else the sticky key's bucket on the weights,
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
    const version = versionForBucket(bucketOf(key), routing.weights) ?? routing.default;
    return { version, determined: true, reason: 'sticky' };
  }
  if (routing.sticky.cookie !== null) {
    const assignCookie = randomBytes(12).toString('base64url');
    const version = versionForBucket(bucketOf(assignCookie), routing.weights) ?? routing.default;
    return { version, determined: false, reason: 'weighted', assignCookie };
  }
  const version = versionForBucket(randomInt(bucketCount), routing.weights) ?? routing.default;
  return { version, determined: false, reason: 'weighted' };
}
