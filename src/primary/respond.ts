import { answerText } from '../shared/answers.js';
import type { ClientConnection } from './client-connection.js';

/** How long a refused connection may take to read our answer before it is destroyed. */
const lingerMs = 2000;

/**
 * Answers a connection the primary will not hand to a worker, then closes it. Only here does the primary build a
 * net.Socket for a connection. Anything more the client sends is read and dropped until it closes, so the answer
 * is not lost to a reset.
 */
export function refuse(connection: ClientConnection, status: number, reason: string, headers: Record<string, string> = {}): void {
  const socket = connection.toSocket();
  if (socket === undefined) return;  // The client is gone already.
  socket.on('error', () => {});
  socket.resume();
  socket.end(answerText(status, reason, headers));
  setTimeout(() => socket.destroy(), lingerMs).unref();
}
