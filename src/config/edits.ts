import type { ConfigFile } from './types.js';

/**
 * The operator's moves as pure edits of the config file's contents. The CLI and the dashboard both apply
 * these through updateConfigFile, so there is one way to change a running supervisor: its file.
 */
export type Edit = (config: ConfigFile) => void;

/**
 * An edit the file's current contents refuse. `invalid`: the asker's mistake (the CLI's exit 1, the API's 400);
 * `conflict`: the file moved on since the asker looked (the rollout controller skips it quietly).
 */
export class EditError extends Error {
  override name = 'EditError';
  constructor(message: string, readonly code: 'invalid' | 'conflict' = 'invalid') {
    super(message);
  }
}

function requireVersion(config: ConfigFile, version: string): ConfigFile['versions'][string] {
  const found = config.versions[version];
  if (found === undefined) throw new EditError(`unknown version "${version}" (known: ${Object.keys(config.versions).join(', ')})`);
  return found;
}

/** The largest weight a version may have; the schema says the same (routing.weights). */
export const maxWeight = 1_000_000;

/** Why `weight` is not a usable weight for the key named, or null when it is. */
export function weightProblem(key: string, weight: unknown): string | null {
  if (typeof weight === 'number' && Number.isInteger(weight) && weight >= 0 && weight <= maxWeight) return null;
  return `${key} must be a whole number from 0 to ${maxWeight}, not ${JSON.stringify(weight) ?? String(weight)}`;
}

/** Sets the weights of the versions named; the others keep theirs. */
export function setWeights(weights: Record<string, number>): Edit {
  return (config) => {
    for (const [version, weight] of Object.entries(weights)) {
      requireVersion(config, version);
      const problem = weightProblem(`routing.weights.${version}`, weight);
      if (problem) throw new EditError(problem);
    }
    config.routing.weights = { ...config.routing.weights, ...weights };
  };
}

/** All traffic to one version: it becomes the default and takes every weight. */
export function promote(version: string): Edit {
  return (config) => {
    requireVersion(config, version);
    config.routing.default = version;
    if (config.routing.weights) {
      config.routing.weights = Object.fromEntries(Object.keys(config.routing.weights).map((name) => [name, name === version ? 100 : 0]));
      if (!(version in config.routing.weights)) config.routing.weights[version] = 100;
    }
  };
}

export function scale(version: string, workers: number): Edit {
  return (config) => {
    const target = requireVersion(config, version);
    if (!Number.isInteger(workers) || workers < 1) throw new EditError(`workers must be a whole number >= 1, not ${workers}`);
    target.workers = workers;
  };
}

/** Adds a version, or points an existing one at new code. */
export function deploy(version: string, entry: string, workers?: number): Edit {
  return (config) => {
    const existing = config.versions[version];
    config.versions[version] = { ...existing, entry, ...(workers === undefined ? {} : { workers }) };
  };
}

/** Sets any key by its dotted path, e.g. "routing.sticky.cookie" or "versions.v2.env.LOG_LEVEL". */
export function setKey(key: string, value: unknown): Edit {
  return (config) => {
    const parts = key.split('.');
    const leaf = parts.at(-1);
    if (leaf === undefined || parts.some((part) => part === '' || part === '__proto__' || part === 'constructor' || part === 'prototype')) {
      throw new EditError(`"${key}" is not a usable key`);
    }
    let node = config as unknown as Record<string, unknown>;
    for (const part of parts.slice(0, -1)) {
      const child = node[part];
      if (child === undefined) node[part] = {};
      else if (typeof child !== 'object' || child === null || Array.isArray(child)) throw new EditError(`${key}: ${part} is not an object`);
      node = node[part] as Record<string, unknown>;
    }
    if (value === undefined) delete node[leaf];
    else node[leaf] = value;
    // A version taken out takes its weight of 0 with it (what a rollback that keeps the canary leaves); a weight
    // above 0 stays, so the change is refused, naming it: traffic must be moved off a version before it goes.
    const weights = config.routing?.weights;
    if (value === undefined && parts.length === 2 && parts[0] === 'versions' && weights?.[leaf] === 0) delete weights[leaf];
  };
}

/** Replaces the whole file's contents (rollback to a previously applied config). */
export function replaceWith(previous: ConfigFile): Edit {
  return (config) => {
    for (const key of Object.keys(config)) delete (config as unknown as Record<string, unknown>)[key];
    Object.assign(config, structuredClone(previous));
  };
}
