import type { IncomingMessage } from 'node:http';
import type { WorkerSettings } from '../ipc/messages.js';
import { decide } from '../routing/decide.js';
import type { RequestHead } from '../routing/head.js';

/**
 * Decides, for a later request on a connection the primary handed to this worker, which version must answer it.
 * Built once per settings message, so each check only evaluates the rules.
 */
export class RouteCheck {
  readonly #versions: ReadonlySet<string>;
  readonly #serving: ReadonlySet<string>;

  constructor(readonly settings: WorkerSettings, readonly ownVersion: string) {
    this.#versions = new Set(settings.versions);
    this.#serving = new Set(settings.serving);
  }

  /**
   * The version that must answer: this worker's own unless a rule or the request's sticky key says another; that
   * version's fallback (`routing.default`) when it has no ready worker; null when neither has one.
   */
  versionForHead(head: RequestHead): string | null {
    const decision = decide(head, this.settings.routing, this.#versions);
    if (!decision.determined || decision.version === this.ownVersion) return this.ownVersion;
    if (this.#serving.has(decision.version)) return decision.version;
    const fallback = this.settings.routing.default;
    if (fallback === this.ownVersion) return this.ownVersion;
    return this.#serving.has(fallback) ? fallback : null;
  }

  /** versionForHead for a request as the app's server parsed it. */
  versionFor(req: IncomingMessage): string | null {
    return this.versionForHead({
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      headers: req.headers as Record<string, string>,
      remoteAddress: req.socket.remoteAddress ?? '',
    });
  }

  /** The private forward sockets of a version's ready workers. */
  forwardPaths(version: string): readonly string[] {
    return this.settings.forwardPaths[version] ?? [];
  }
}
