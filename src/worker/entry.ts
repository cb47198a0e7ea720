import { existsSync, readFileSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** True when Node would load `file` as an ES module: .mjs, or .js under a package.json with "type": "module". */
export function isEsModule(file: string): boolean {
  const extension = path.extname(file);
  if (extension === '.mjs' || extension === '.mts') return true;
  if (extension === '.cjs' || extension === '.cts') return false;
  for (let folder = path.dirname(file); ; folder = path.dirname(folder)) {
    const manifest = path.join(folder, 'package.json');
    if (existsSync(manifest)) {
      try {
        return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: string }).type === 'module';
      } catch {
        return false;
      }
    }
    if (path.dirname(folder) === folder) return false;
  }
}

/**
 * Runs the app's main file as `node <entry> ...args` would: process.argv[1] is the entry (the version's `args`,
 * forked after the runtime's path, follow it), and a CommonJS app sees
 * `require.main === module`, so apps that listen only when run directly still listen.
 */
export async function runEntry(entry: string): Promise<void> {
  process.argv[1] = entry;
  if (isEsModule(entry)) await import(pathToFileURL(entry).href);
  else Module.runMain(entry);
}
