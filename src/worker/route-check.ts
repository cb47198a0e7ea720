import type { IncomingMessage } from 'node:http';
import type { WorkerSettings } from '../ipc/messages.js';
import { ClientHead } from '../routing/client-address.js';
import { decide } from '../routing/decide.js';
import { addressMatcher, type AddressMatcher } from '../shared/address-range.js';

/**
 * Decides, for a later request on a connection the primary handed to this worker, which version must answer it.
 * Built once per settings message, so each check only evaluates the rules.
 */
export class RouteCheck {
  readonly #versions: ReadonlySet<string>;
  readonly #serving: ReadonlySet<string>;
  /** Every header a rule or the sticky key reads (`cookie` for any cookie); the query string when one reads it. */
  readonly #signalHeaders: readonly string[];
  readonly #readsQuery: boolean;
  /** Proxies whose X-Forwarded-For names the client for the `ip` sticky key (`server.trustProxy`). */
  readonly #trusted: AddressMatcher | undefined;

  constructor(readonly settings: WorkerSettings, readonly ownVersion: string) {
    this.#versions = new Set(settings.versions);
    this.#serving = new Set(settings.serving);
    this.#trusted = settings.trustProxy === false ? undefined : addressMatcher(settings.trustProxy);
    const { rules, sticky, weights } = settings.routing;
    const sources = rules.map((rule) => ({ source: rule.source, name: rule.name }));
    if (weights.length > 0) {
      if (sticky.key.source !== 'ip') sources.push({ source: sticky.key.source, name: sticky.key.name });
      else if (this.#trusted) sources.push({ source: 'header', name: 'x-forwarded-for' });
      if (sticky.cookie !== null) sources.push({ source: 'cookie', name: sticky.cookie });
    }
    this.#signalHeaders = [...new Set(sources.filter((read) => read.source !== 'query').map((read) => (read.source === 'cookie' ? 'cookie' : read.name)))];
    this.#readsQuery = sources.some((read) => read.source === 'query');
  }

  /**
   * The version that must answer a later request on a connection (see #check), remembering in `memo` the raw
   * values the routing read (headers, cookie header, query string) and its answer: a request whose values are the
   * same as the last one's gets the same answer without the rules being run again, and without allocating. A fresh
   * pick (a client with no key, when `sticky.cookie` is set) is never reused: each such client gets its own, and
   * `memo.assignCookie` the cookie that keeps it there.
   */
  versionForLater(req: IncomingMessage, memo: RouteMemo): string | null {
    const url = req.url ?? '/';
    if (memo.route === this && memo.assignCookie === undefined && this.#sameSignals(url, req, memo)) return memo.version;
    memo.route = this;
    const decision = this.#check(req);
    memo.version = decision.version;
    memo.assignCookie = decision.assignCookie;
    memo.query = this.#readsQuery ? queryOf(url) : '';
    memo.values.length = 0;
    for (const name of this.#signalHeaders) memo.values.push(req.headers[name] as string | undefined);
    return memo.version;
  }

  // `req.headers` is read only inside the loops: Node builds it on first read, and routing that reads no header
  // never needs it.
  #sameSignals(url: string, req: IncomingMessage, memo: RouteMemo): boolean {
    for (const [index, name] of this.#signalHeaders.entries()) {
      if (req.headers[name] !== memo.values[index]) return false;
    }
    if (!this.#readsQuery) return true;
    const mark = url.indexOf('?');
    if (mark === -1) return memo.query === '';
    return url.length - mark - 1 === memo.query.length && url.startsWith(memo.query, mark + 1);
  }

  /**
   * The version that must answer: this worker's own unless a rule or the request's sticky key says another; that
   * version's fallback (`routing.default`) when it has no ready worker; null when neither has one. And for a client
   * without a key when `sticky.cookie` is set, the cookie it is to get: such a client gets a weighted pick of its own
   * (the version its new cookie hashes to, or this one when that has no ready worker), as the primary places a
   * connection's first request. Without `sticky.cookie` a request with no key stays with its connection's version.
   */
  #check(req: IncomingMessage): { version: string | null; assignCookie?: string } {
    const head = new ClientHead(req.method ?? 'GET', req.url ?? '/', req.headers as Record<string, string>, req.socket, this.#trusted);
    const decision = decide(head, this.settings.routing, this.#versions);
    if (decision.assignCookie !== undefined) {
      return { version: this.#serving.has(decision.version) ? decision.version : this.ownVersion, assignCookie: decision.assignCookie };
    }
    if (!decision.determined || decision.version === this.ownVersion) return { version: this.ownVersion };
    if (this.#serving.has(decision.version)) return { version: decision.version };
    const fallback = this.settings.routing.default;
    if (fallback === this.ownVersion) return { version: this.ownVersion };
    return { version: this.#serving.has(fallback) ? fallback : null };
  }

  /** The private forward sockets of a version's ready workers. */
  forwardPaths(version: string): readonly string[] {
    return this.settings.forwardPaths[version] ?? [];
  }
}

/** What a connection's last routing check read and answered (see RouteCheck.versionForLater). */
export interface RouteMemo {
  route: RouteCheck | undefined;
  version: string | null;
  /** The sticky cookie for the last request, when it was a client without a key given a pick of its own. */
  assignCookie: string | undefined;
  query: string;
  values: Array<string | undefined>;
}

export function emptyRouteMemo(): RouteMemo {
  return { route: undefined, version: null, assignCookie: undefined, query: '', values: [] };
}

function queryOf(url: string): string {
  const mark = url.indexOf('?');
  return mark === -1 ? '' : url.slice(mark + 1);
}
