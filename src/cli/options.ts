import { UsageError } from './usage.js';

/** The config file a command works on: the flag, else $GRAYCLUSTER_CONFIG, else ./graycluster.json. */
export function configPath(flag: string | undefined): string {
  return flag ?? process.env.GRAYCLUSTER_CONFIG ?? 'graycluster.json';
}

export function parsePort(value: string, name: string, usage: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`${name} must be a port number from 0 to 65535, not "${value}"`, usage);
  return Number(value);
}
