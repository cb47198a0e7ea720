import { hash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

/** How often the file is read even without a change notice, so no edit is missed for long. */
const pollMs = 400;
/** Editors write in several steps; act once they settle. */
const settleMs = 30;
/** A file that cannot be read is reported once it stays so this long: an editor may leave the name empty mid-save. */
const confirmMs = 150;

/** The fingerprint of a file's contents, or why it cannot be read (missing, a folder, no permission). */
export function fingerprint(file: string): string {
  try {
    return hash('sha256', readFileSync(file));
  } catch (error) {
    return `unreadable: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
}

/**
 * Tells when the contents of a config file change, however they are changed: an in-place write, an editor's
 * write-to-temp-then-rename, or a Kubernetes ConfigMap update (the `..data` symlink in the folder swapped).
 * It watches the folder, not the file (a rename replaces the file the watch was on), and also reads the file
 * on a short poll, since file-change notices are not guaranteed everywhere. A file that goes missing, becomes a
 * folder or cannot be read is a change too (the reader then reports it), once it stays so. It never writes.
 */
export class ConfigWatcher {
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #seen: string;
  /** A failed read seen once, reported if the next check fails the same way. */
  #unconfirmed: string | undefined;

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
    const unreadable = current.startsWith('unreadable:');
    if (!unreadable) this.#unconfirmed = undefined;
    if (current === this.#seen) return;
    if (unreadable && this.#unconfirmed !== current) {
      this.#unconfirmed = current;
      clearTimeout(this.#settle);
      this.#settle = setTimeout(() => this.#check(), confirmMs);
      return;
    }
    this.#unconfirmed = undefined;
    this.#seen = current;
    this.onChange();
  }
}
