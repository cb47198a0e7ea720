import type { SchemaError } from './schema-validator.js';

type Schema = Record<string, unknown>;

const isUnion = (error: SchemaError) => error.keyword === 'oneOf' || error.keyword === 'anyOf';

/** The schema node a JSON pointer such as "#/properties/routing/oneOf/1" names, if any. */
function schemaAt(root: Schema, pointer: string): unknown {
  let node: unknown = root;
  for (const part of pointer.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Schema)[decodeURIComponent(part).replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return node;
}

const article = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

/** What a branch of a union accepts, in words: "a string", "an object", "false". */
function branchWords(branch: unknown): string | undefined {
  if (typeof branch !== 'object' || branch === null) return undefined;
  const { type, const: constant } = branch as Schema;
  if ('const' in branch) return JSON.stringify(constant);
  if (typeof type === 'string') return type === 'null' ? 'null' : article(type);
  return undefined;
}

/**
 * ajv reports a value that matches no branch of a `oneOf`/`anyOf` with every branch's errors and then the union's
 * own ("must be string; must be object; must match exactly one schema in oneOf"). This keeps what helps: the
 * errors of the one branch whose type the value has ("logFile.maxBytes must be integer"), or, when the value has
 * none of their types, one line naming what each branch accepts ("must be a string or an object").
 */
export function withoutUnionNoise(errors: SchemaError[], schema: Schema): SchemaError[] {
  let kept = errors;
  for (const union of errors.filter(isUnion)) {
    const prefix = `${union.schemaPath}/`;
    if (!kept.includes(union)) continue;  // Inside a branch of a union already dropped.
    const branches = schemaAt(schema, union.schemaPath);
    if (!Array.isArray(branches)) continue;
    const branchErrors = branches.map((_branch, index) => kept.filter((error) => error.schemaPath.startsWith(`${prefix}${index}/`)));
    const typeOk = branchErrors.map((list) => !list.some((error) =>
      error.instancePath === union.instancePath && (error.keyword === 'type' || error.keyword === 'const')));
    const fitting = typeOk.flatMap((ok, index) => (ok ? [index] : []));
    let replacement: SchemaError[];
    if (fitting.length === 1) {
      replacement = branchErrors[fitting[0]!]!;
    } else if (fitting.length === 0 && branches.every((branch) => branchWords(branch) !== undefined)) {
      replacement = [{ ...union, keyword: 'type', message: `must be ${branches.map(branchWords).join(' or ')}`, params: {} }];
    } else {
      const required = branches.map((branch) => (branch as Schema).required);
      if (union.keyword === 'oneOf' && required.every((names) => Array.isArray(names) && names.length === 1)) {
        const names = required.map((names) => `"${String((names as unknown[])[0])}"`).join(', ');
        replacement = [{ ...union, keyword: 'required', message: `must have exactly one of ${names}`, params: {} }];
      } else {
        continue;
      }
    }
    const at = kept.indexOf(union);
    const dropped = new Set(kept.filter((error) => error === union || error.schemaPath.startsWith(prefix)));
    kept = [...kept.slice(0, at).filter((error) => !dropped.has(error)), ...replacement, ...kept.slice(at + 1).filter((error) => !dropped.has(error))];
  }
  return kept;
}
