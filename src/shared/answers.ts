import type { ServerResponse } from 'node:http';

/** Reason phrases of the statuses graycluster answers itself. */
export const statusText: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** Seconds a client is told to wait after a 503 for lack of capacity. */
export const retryAfterSeconds = 1;

/** The body of every answer graycluster gives itself: the status, its reason phrase and why, one line. */
export function answerBody(status: number, reason: string): string {
  return `${status} ${statusText[status] ?? ''}: ${reason}\n`;
}

/** Headers of a 503 that tells the client to come back: the one capacity answer, from the primary or a worker. */
export const unavailableHeaders = { 'content-type': 'text/plain; charset=utf-8', 'retry-after': String(retryAfterSeconds) };

/** Answers a request 503 with Retry-After, through the app's own response object. */
export function respondUnavailable(res: ServerResponse, reason: string): void {
  res.writeHead(503, unavailableHeaders);
  res.end(answerBody(503, reason));
}

/** Answers a request 502: the worker it was relayed to failed before its answer began. */
export function respondBadGateway(res: ServerResponse, reason: string): void {
  res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(answerBody(502, reason));
}

/**
 * A whole answer as raw bytes that also closes the connection, for a socket that no `ServerResponse` owns
 * (one the primary refuses, or an upgrade the worker cannot relay).
 */
export function answerText(status: number, reason: string, headers: Record<string, string> = {}): string {
  const body = answerBody(status, reason);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return `HTTP/1.1 ${status} ${statusText[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`;
}

/** The 503 with Retry-After as raw bytes. */
export function unavailableText(reason: string): string {
  return answerText(503, reason, { 'retry-after': String(retryAfterSeconds) });
}
