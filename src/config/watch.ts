import { hash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

/** How often the file is read even without a change notice, so no edit is missed for long. */
const pollMs = 400;
/** Editors write in several steps; act once they settle. */
const settleMs = 30;

/** The fingerprint of a file's contents, or null while it is missing (mid-rename). */
export function fingerprint(file: string): string | null {
  try {
    return hash('sha256', readFileSync(file));
  } catch {
    return null;
  }
}

/**
 * Tells when the contents of a config file change, however they are changed: an in-place write, an editor's
 * write-to-temp-then-rename, or a Kubernetes ConfigMap update (the `..data` symlink in the folder swapped).
 * It watches the folder, not the file (a rename replaces the file the watch was on), and also reads the file
 * on a short poll, since file-change notices are not guaranteed everywhere. It never writes.
 */
export class ConfigWatcher {
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #seen: string | null;

  constructor(private readonly file: string, private readonly onChange: () => void) {
    this.#seen = fingerprint(file);
  }

  start(): void {
    try {
      this.#watcher = watch(path.dirname(this.file), { persistent: false }, () => this.#soon());
      this.#watcher.on('error', () => { this.#watcher = undefined; });
    } catch {
      // No notices here (the folder is gone, or the platform has none): the poll still sees every change.
    }
    this.#poll = setInterval(() => this.#check(), pollMs);
    this.#poll.unref();
  }

  /** Marks the current contents as seen, e.g. after applying them without waiting for a notice. */
  markSeen(): void {
    this.#seen = fingerprint(this.file);
  }

  close(): void {
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#settle);
  }

  #soon(): void {
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => this.#check(), settleMs);
  }

  #check(): void {
    const current = fingerprint(this.file);
    if (current === null || current === this.#seen) return;
    this.#seen = current;
    this.onChange();
  }
}
