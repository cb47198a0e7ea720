import { UsageError } from './usage.js';

/** The config file a command works on: the flag, else $GRAYCLUSTER_CONFIG, else ./graycluster.json. */
export function configPath(flag: string | undefined): string {
  return flag ?? process.env.GRAYCLUSTER_CONFIG ?? 'graycluster.json';
}

function parsePort(value: string, name: string, usage: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`${name} must be a port number from 0 to 65535, not "${value}"`, usage);
  return Number(value);
}

/**
 * A port given by a flag or, without it, by an environment variable; undefined when neither is. A bad one is a
 * usage error naming whichever gave it.
 */
export function portOption(flagValue: string | undefined, flag: string, variable: string, usage: string): number | undefined {
  const value = flagValue ?? process.env[variable];
  return value === undefined ? undefined : parsePort(value, flagValue !== undefined ? flag : variable, usage);
}

/**
 * Refuses a flag or argument given as "" (an unset shell variable, most often), naming it: taken as given, it
 * would be the config file "", the current folder, or an endpoint such as /api/workers//restart. `argument`
 * names the positional arguments in order; the last name goes for any further ones.
 */
export function refuseEmpty({ values, positionals = [] }: { values: object; positionals?: string[] }, usage: string, argument: string[] = ['an argument']): void {
  for (const [flag, value] of Object.entries(values)) {
    if (value === '') throw new UsageError(`--${flag} is empty (""): give it a value, or leave it out`, usage);
  }
  const at = positionals.indexOf('');
  if (at >= 0) throw new UsageError(`${argument[Math.min(at, argument.length - 1)] ?? 'an argument'} is empty ("")`, usage);
}
