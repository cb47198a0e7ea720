// The API token: taken once from ?token=…, then kept in this tab's sessionStorage and out of the address bar.

const tokenKey = 'graycluster.token';

let token: string | null = null;

/** Moves a `?token=` from the address bar into this tab's storage; answers the token this tab holds, if any. */
export function takeToken(): string | null {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given !== null) {
    if (given !== '') sessionStorage.setItem(tokenKey, given);
    url.searchParams.delete('token');
    history.replaceState(null, '', `${url.pathname}${url.search}${url.hash}`);
  }
  token = sessionStorage.getItem(tokenKey);
  return token;
}

/** Keeps a token typed into the login form. */
export function keepToken(given: string): void {
  token = given;
  sessionStorage.setItem(tokenKey, given);
}

/** Drops the token: it was refused, or there was none. */
export function forgetToken(): void {
  sessionStorage.removeItem(tokenKey);
  token = null;
}

/** The header the API wants. */
export function bearer(): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

function base64url(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A browser cannot set headers on a WebSocket, so the token travels as a subprotocol (see auth.ts). */
export function tokenProtocol(): string {
  return `graycluster.token.${base64url(token ?? '')}`;
}
