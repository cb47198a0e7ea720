/**
 * nginx config that splits users the way graycluster does (`graycluster split-clients`): `split_clients` on the
 * sticky key, written from routing.weights, picking one upstream block per version, every block pointing at
 * graycluster's one port. nginx pools each block's connections apart, so each pooled connection carries the users of
 * one version and graycluster serves every request on it in place, with nothing to relay.
 */
import type { RoutingConfig } from '../config/types.js';
import { splitClientsParts } from './decide.js';

/** The nginx variable that names the upstream block of a request's version. */
export const poolVariable = '$graycluster_pool';

/** The name of a version's upstream block. */
export const upstreamOf = (version: string): string => `graycluster_${version}`;

/**
 * The upstream block for requests without a sticky key (a client's first request before it has the sticky
 * cookie, say): graycluster picks their version at random, which nginx cannot foresee, so they get a pool of
 * their own, and the versions' pools keep carrying only the users nginx placed.
 */
export const keylessUpstream = 'graycluster_any';

/**
 * The nginx value of a request's sticky key: the header or cookie graycluster reads, or the client's address;
 * when `sticky.cookie` is set, a `map` line makes that cookie the key when the other is missing, as graycluster
 * does. Throws, naming the setting, when nginx has no variable for it.
 */
function stickyKeyOf(sticky: RoutingConfig['sticky']): { key: string; map: string | undefined } {
  const { key, cookie } = sticky;
  if (key.source === 'ip') return { key: '$remote_addr', map: undefined };
  let value: string;
  if (key.source === 'header') {
    // nginx names `X-User` $http_x_user, and drops a header with "_" in its name (underscores_in_headers off).
    if (!/^[A-Za-z0-9-]+$/.test(key.name)) throw new Error(`routing.sticky.key "header:${key.name}": nginx reads only headers named with letters, digits and "-" (by default it drops one with "_")`);
    value = `$http_${key.name.toLowerCase().replaceAll('-', '_')}`;
  } else {
    value = `$cookie_${cookieName(key.name, `routing.sticky.key "cookie:${key.name}"`)}`;
  }
  if (cookie === null) return { key: value, map: undefined };
  const fallback = `$cookie_${cookieName(cookie, `routing.sticky.cookie "${cookie}"`)}`;
  return { key: '$graycluster_key', map: `map ${value} $graycluster_key { "" ${fallback}; default ${value}; }` };
}

/** A cookie's name as nginx's `$cookie_` variables take it; throws naming `setting` when they cannot. */
function cookieName(name: string, setting: string): string {
  if (!/^\w+$/.test(name)) throw new Error(`${setting}: nginx has no variable for a cookie named so (letters, digits and "_" only)`);
  return name;
}

/** A share in hundredths of a percent as nginx reads it: `90%`, `33.33%`. */
const percent = (hundredths: number): string => `${hundredths / 100}%`;

/** nginx config that splits users as graycluster does: see nginxSplit. */
export interface NginxSplit {
  /** Lines for nginx's `http` block. */
  lines: string[];
  /** The upstream blocks they pick from, each to point at graycluster's port: upstreamOf's, and keylessUpstream. */
  upstreams: string[];
}

/**
 * The nginx lines that split users as `routing` does and set `variable` to the upstream block of each request's
 * version, or to keylessUpstream for a request without a key (an `ip` key is never missing). Throws when routing
 * has no weights or nginx cannot read its sticky key.
 */
export function nginxSplit(routing: RoutingConfig, variable = poolVariable): NginxSplit {
  if (routing.weights.length === 0) throw new Error('routing.weights is not set: graycluster splits no users by weight, so there is nothing for nginx to split');
  const clash = routing.weights.find(([version]) => upstreamOf(version) === keylessUpstream);
  if (clash) throw new Error(`versions.${clash[0]}: its upstream block would be ${keylessUpstream}, the name of the block for requests without a key; rename the version`);
  const { key, map } = stickyKeyOf(routing.sticky);
  const parts = splitClientsParts(routing.weights);
  const lines = parts.map(({ version, hundredths }) => `${hundredths === undefined ? '*' : percent(hundredths)} ${upstreamOf(version)};`);
  const upstreams = parts.map(({ version }) => upstreamOf(version));
  const quoted = `"${key.replace('$', '${')}}"`;
  if (routing.sticky.key.source === 'ip') return { lines: [`split_clients ${quoted} ${variable} { ${lines.join(' ')} }`], upstreams };
  const split = `${variable}_split`;
  return {
    lines: [
      ...(map ? [map] : []),
      `split_clients ${quoted} ${split} { ${lines.join(' ')} }`,
      `map ${quoted} ${variable} { "" ${keylessUpstream}; default ${split}; }`,
    ],
    upstreams: [...upstreams, keylessUpstream],
  };
}
