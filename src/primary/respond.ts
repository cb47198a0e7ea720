import type { Socket } from 'node:net';
import { answerBody, statusText } from '../shared/answers.js';

/** How long a refused connection may take to read our answer before it is destroyed. */
const lingerMs = 2000;

/**
 * Answers a connection the primary will not hand to a worker, then closes it. Anything more the client sends
 * is read and dropped until it closes, so the answer is not lost to a reset.
 */
export function refuse(socket: Socket, status: number, reason: string, headers: Record<string, string> = {}): void {
  const body = answerBody(status, reason);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.on('error', () => {});
  socket.resume();
  socket.end(
    `HTTP/1.1 ${status} ${statusText[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), lingerMs).unref();
}
