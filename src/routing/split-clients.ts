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

/** A name nginx can put after `$http_` or `$cookie_`. */
const nginxName = /^[A-Za-z0-9_-]+$/;

/**
 * The nginx value of a request's sticky key: the header or cookie graycluster reads, or the client's address;
 * when a key can be missing and `sticky.cookie` is set, a `map` line makes that cookie the key instead, as
 * graycluster does. Throws, naming the setting, when nginx has no variable for it.
 */
function stickyKeyOf(sticky: RoutingConfig['sticky']): { key: string; map: string | undefined } {
  const { key, cookie } = sticky;
  let value: string;
  if (key.source === 'ip') value = '$remote_addr';
  else if (!nginxName.test(key.name)) throw new Error(`routing.sticky.key "${key.source}:${key.name}": nginx has no variable for a ${key.source} named so (letters, digits, "_" and "-" only)`);
  else if (key.source === 'header') value = `$http_${key.name.toLowerCase().replaceAll('-', '_')}`;
  else if (key.name.includes('-')) throw new Error(`routing.sticky.key "cookie:${key.name}": nginx has no variable for a cookie whose name has "-"`);
  else value = `$cookie_${key.name}`;
  if (cookie === null || key.source === 'ip') return { key: value, map: undefined };
  if (!/^\w+$/.test(cookie)) throw new Error(`routing.sticky.cookie "${cookie}": nginx has no variable for a cookie named so (letters, digits and "_" only)`);
  return { key: '$graycluster_key', map: `map ${value} $graycluster_key { "" $cookie_${cookie}; default ${value}; }` };
}

/** A share in hundredths of a percent as nginx reads it: `90%`, `33.33%`. */
const percent = (hundredths: number): string => `${hundredths / 100}%`;

/**
 * The nginx lines (for its `http` block) that split users as `routing` does and set `variable` to the upstream
 * block of each request's version; the blocks themselves are the caller's (upstreamOf names them). Throws when
 * routing has no weights or nginx cannot read its sticky key.
 */
export function splitClientsLines(routing: RoutingConfig, variable = poolVariable): string[] {
  if (routing.weights.length === 0) throw new Error('routing.weights is not set: graycluster splits no users by weight, so there is nothing for nginx to split');
  const { key, map } = stickyKeyOf(routing.sticky);
  const parts = splitClientsParts(routing.weights).map(({ version, hundredths }) => `${hundredths === undefined ? '*' : percent(hundredths)} ${upstreamOf(version)};`);
  return [...(map ? [map] : []), `split_clients "${key.replace('$', '${')}}" ${variable} { ${parts.join(' ')} }`];
}
