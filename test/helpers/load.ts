import http from 'node:http';
import { request } from './http.js';
import { waitFor } from './wait.js';

export { sleep } from './wait.js';

export interface LoadReport {
  ok: number;
  failed: number;
  /** Responses with a status other than 200, by status (their bodies are among `errors`). */
  unexpected: Record<number, number>;
  /** The first few failures' messages and unexpected answers' statuses and bodies. */
  errors: string[];
  /** Who answered (body.version + body.build) for requests started after mark(). */
  afterMark: Map<string, number>;
}

/**
 * A steady load: `clients` loops, each sending its next request as soon as the last one is answered, over
 * keep-alive connections (or a new connection per request). Counts every response. `url` and `headers` (when a
 * function) are evaluated for every request, so each one may differ.
 */
export function steadyLoad(url: () => string, { clients = 4, keepAlive = true, headers = {} as Record<string, string> | (() => Record<string, string>) } = {}) {
  const agent = new http.Agent({ keepAlive, maxSockets: clients });
  const report: LoadReport = { ok: 0, failed: 0, unexpected: {}, errors: [], afterMark: new Map() };
  let running = true;
  let marked = false;
  let answers = 0;
  const loop = async () => {
    while (running) {
      const afterMark = marked;
      try {
        const reply = await request(url(), { agent: keepAlive ? agent : undefined, headers: typeof headers === 'function' ? headers() : headers });
        answers++;
        if (reply.status === 200) report.ok++;
        else {
          report.unexpected[reply.status] = (report.unexpected[reply.status] ?? 0) + 1;
          if (report.errors.length < 10) report.errors.push(`${reply.status}: ${reply.text.trim().slice(0, 200)}`);
        }
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
    /** Resolves once `count` more requests have been answered (whatever the status): the load has run on what is now. */
    async answered(count: number, timeoutMs = 15_000): Promise<void> {
      const target = answers + count;
      await waitFor(() => answers >= target, { timeoutMs, intervalMs: 10, what: `${count} more answers to the load`, describe: () => JSON.stringify(report) });
    },
    async stop(): Promise<LoadReport> {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return report;
    },
  };
}
