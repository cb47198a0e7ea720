// The live feed: one WebSocket to /ws, reopened with backoff; a refused token ends it.
import type { FeedMessage } from '@server/dashboard/messages.js';
import { byId } from './dom.js';
import { bearer, tokenProtocol } from './session.js';

export interface FeedHandlers {
  onMessage: (message: FeedMessage) => void;
  /** The server no longer takes this tab's token; the feed stays closed. */
  onTokenRefused: () => void;
}

/** The pill in the header: connecting, live, reconnecting, or no token. */
export function showConnection(text: string, kind: string): void {
  const node = byId('connection');
  node.textContent = text;
  node.dataset.state = kind;
}

let retryMs = 500;

/** After the feed closed: is the token still good? (A browser does not say why a WebSocket was refused.) */
async function tokenRejected(): Promise<boolean> {
  try {
    const response = await fetch('/api/status', { headers: bearer() });
    return response.status === 401;
  } catch {
    return false;  // graycluster is down or restarting: keep trying.
  }
}

export function connectFeed(handlers: FeedHandlers): void {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const socket = new WebSocket(url, ['graycluster', tokenProtocol()]);
  socket.addEventListener('open', () => {
    retryMs = 500;
    showConnection('live', 'live');
  });
  socket.addEventListener('message', (message) => handlers.onMessage(JSON.parse(message.data as string) as FeedMessage));
  socket.addEventListener('close', async () => {
    showConnection('reconnecting…', 'reconnecting');
    if (await tokenRejected()) {
      handlers.onTokenRefused();
      return;
    }
    setTimeout(() => connectFeed(handlers), retryMs);
    retryMs = Math.min(retryMs * 2, 10_000);
  });
}
