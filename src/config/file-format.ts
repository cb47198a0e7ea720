import { isDeepStrictEqual } from 'node:util';
import { applyEdits, modify, type FormattingOptions, type JSONPath } from 'jsonc-parser';
import { isRecord } from '../shared/is-record.js';

/**
 * The text of a config file after an edit, changed only where its values changed: a file kept in git gets a diff
 * of the keys the edit touched, in the file's own indentation and line endings, not a reformatted file.
 * `text` is the file as it is now; `contents` what it must hold. Where a surgical edit cannot give exactly
 * `contents`, the whole file is written out again in the file's indentation.
 */
export function editedText(text: string, contents: unknown): string {
  const formatting = formattingOf(text);
  let before: unknown;
  try {
    before = JSON.parse(text);
  } catch {
    return rewritten(contents, formatting);
  }
  let edited = text;
  for (const [at, value] of changes(before, contents, [])) {
    // A removal is left unformatted: jsonc-parser would reformat the line before the key it takes out.
    edited = applyEdits(edited, modify(edited, at, value, value === undefined ? {} : { formattingOptions: formatting }));
  }
  try {
    if (isDeepStrictEqual(JSON.parse(edited), JSON.parse(JSON.stringify(contents)))) return edited;
  } catch {
    // Falls through to a whole rewrite.
  }
  return rewritten(contents, formatting);
}

/** The file written whole, in the indentation and line endings `formatting` names. */
function rewritten(contents: unknown, { insertSpaces, tabSize, eol }: FormattingOptions): string {
  const indent = insertSpaces ? ' '.repeat(tabSize ?? 2) : '\t';
  return `${JSON.stringify(contents, null, indent)}\n`.replaceAll('\n', eol ?? '\n');
}

/** The indentation of the file's first indented line (two spaces when it has none) and its line ending. */
function formattingOf(text: string): FormattingOptions {
  const indent = /^[ \t]+(?=\S)/m.exec(text)?.[0] ?? '  ';
  const tabs = indent.startsWith('\t');
  return { insertSpaces: !tabs, tabSize: tabs ? 1 : indent.length, eol: text.includes('\r\n') ? '\r\n' : '\n' };
}

/** Each path whose value differs between `before` and `after`, with its new value (undefined: removed). */
function* changes(before: unknown, after: unknown, at: JSONPath): Generator<[JSONPath, unknown]> {
  if (isDeepStrictEqual(before, after)) return;
  if (!isRecord(before) || !isRecord(after)) {
    yield [at, after];
    return;
  }
  for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) yield [[...at, key], undefined];
  for (const [key, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, key)) yield [[...at, key], value];
    else yield* changes(before[key], value, [...at, key]);
  }
}
