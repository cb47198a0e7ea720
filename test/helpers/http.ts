import http from 'node:http';
import { Deadline } from '../../src/shared/stalls.js';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  text: string;
}

/**
 * One request on a fresh connection (or on `agent`); resolves with status, headers and the body, parsed when JSON.
 * Fails when the whole answer has not come within 20 s (time the machine was held up left out: wait.ts).
 */
export function request(url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // Unref'd, like the socket timeout it replaces: the open request keeps the process alive while it lasts.
    const deadline = new Deadline(20_000, () => req.destroy(new Error(`no answer from ${url} within 20 s`))).unref();
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        deadline.clear();
        const text = Buffer.concat(chunks).toString();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
      res.on('error', fail);
    });
    const fail = (error: Error) => {
      deadline.clear();
      reject(error);
    };
    req.on('error', fail);
    req.end(options.body);
  });
}

export const get = (url: string, headers: Record<string, string> = {}) => request(url, { headers });
