import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Creates `folder` and any missing parent (`mkdir -p`), and always ends. Node 20's own `{ recursive: true }` never
 * returns for a path under /proc (mkdir answers ENOENT there although the parent exists, and Node tries again
 * forever, in the calling thread or a pool thread): this one creates each missing level itself and takes ENOENT
 * once the parent exists as the answer. Throws the system's error (EEXIST when a file holds the name).
 */
export function makeFolder(folder: string): void {
  try {
    mkdirSync(folder);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && statSync(folder).isDirectory()) return;
    const parent = path.dirname(folder);
    if (code !== 'ENOENT' || parent === folder) throw error;
    makeFolder(parent);
  }
  mkdirSync(folder);
}
