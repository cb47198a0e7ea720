import http from 'node:http';
import { request } from './cluster.js';

export interface LoadReport {
  ok: number;
  failed: number;
  /** Responses with a status other than 200, by status. */
  unexpected: Record<number, number>;
  errors: string[];
  /** Who answered (body.version + body.build) for requests started after mark(). */
  afterMark: Map<string, number>;
}

/**
 * A steady load: `clients` loops, each sending its next request as soon as the last one is answered, over
 * keep-alive connections (or a new connection per request). Counts every response. `headers` may be a function,
 * called per request (many users by a sticky key).
 */
export function steadyLoad(url: () => string, { clients = 4, keepAlive = true, headers = {} as Record<string, string> | (() => Record<string, string>) } = {}) {
  const agent = new http.Agent({ keepAlive, maxSockets: clients });
  const report: LoadReport = { ok: 0, failed: 0, unexpected: {}, errors: [], afterMark: new Map() };
  let running = true;
  let marked = false;
  const loop = async () => {
    while (running) {
      const afterMark = marked;
      try {
        const reply = await request(url(), { agent: keepAlive ? agent : undefined, headers: typeof headers === 'function' ? headers() : headers });
        if (reply.status === 200) report.ok++;
        else report.unexpected[reply.status] = (report.unexpected[reply.status] ?? 0) + 1;
        if (afterMark) {
          const who = `${reply.body?.version}${reply.body?.build ? `/${reply.body.build}` : ''}`;
          report.afterMark.set(who, (report.afterMark.get(who) ?? 0) + 1);
        }
      } catch (error) {
        report.failed++;
        if (report.errors.length < 10) report.errors.push((error as Error).message);
      }
    }
  };
  const loops = Array.from({ length: clients }, loop);
  return {
    report,
    /** From now on, record who answers. */
    mark() {
      marked = true;
    },
    async stop(): Promise<LoadReport> {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return report;
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
