import path from 'node:path';
import { logFileDefaults, logsDefaults, type ConfigFile, type LogFileConfig, type LogFormat, type LogsConfig } from './types.js';

/** The `logs` section with its defaults; `format` (from `--log-format`) wins over the file's. */
export function resolveLogs(raw: ConfigFile['logs'], format: LogFormat | undefined): LogsConfig {
  return { ...logsDefaults, ...raw, ...(format === undefined ? {} : { format }) };
}

/**
 * A version's `logFile` (types are the schema's job): a path, or `{ path, maxBytes, keep }`, the path resolved
 * against the config file's folder like `entry`. `fail` throws naming the key.
 */
export function resolveLogFile(
  key: string,
  logFile: ConfigFile['versions'][string]['logFile'],
  folder: string,
  logs: LogsConfig,
  fail: (key: string, message: string) => never,
  /** logs.maxLineBytes is its default (the file leaves it out): the message says so. */
  maxLineBytesIsDefault = false,
): LogFileConfig | null {
  if (logFile === undefined) return null;
  const written = typeof logFile === 'string' ? { path: logFile } : logFile;
  const resolved = { ...logFileDefaults, ...written, path: path.resolve(folder, written.path) };
  if (resolved.maxBytes < logs.maxLineBytes) {
    fail(`${key}.logFile.maxBytes`, `(${resolved.maxBytes}) must be at least logs.maxLineBytes (${logs.maxLineBytes}${maxLineBytesIsDefault ? ', its default' : ''}): a file must hold the longest line`);
  }
  return resolved;
}

/** Two versions writing one file would rotate it under each other: each file has one version. */
export function checkLogFilesDistinct(versions: Iterable<{ name: string; logFile: LogFileConfig | null }>, fail: (key: string, message: string) => never): void {
  const owners = new Map<string, string>();
  for (const { name, logFile } of versions) {
    if (!logFile) continue;
    const owner = owners.get(logFile.path);
    if (owner !== undefined) fail(`versions.${name}.logFile`, `(${logFile.path}) is versions.${owner}.logFile too: each version needs a file of its own`);
    owners.set(logFile.path, name);
  }
}
