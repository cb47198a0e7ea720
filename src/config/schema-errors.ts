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

/** A local `$ref` ("#/$defs/versionName") followed to the node it names, as often as it takes. */
function followRefs(root: Schema, node: unknown): unknown {
  for (let hops = 0; hops < 8 && typeof node === 'object' && node !== null && typeof (node as Schema).$ref === 'string'; hops++) {
    node = schemaAt(root, (node as Schema).$ref as string);
  }
  return node;
}

/**
 * The rule a schema node's description states in words, as a sentence "A <subject>: <rule>." ("A version name:
 * letters, digits, …"); undefined when its description has none.
 */
export function describedRule(node: unknown): { subject: string; rule: string } | undefined {
  const description = typeof node === 'object' && node !== null ? (node as Schema).description : undefined;
  if (typeof description !== 'string') return undefined;
  for (const sentence of description.split(/(?<=\.)\s+/)) {
    const [, subject, rule] = /^An? ([^:]+): (.+?)\.?$/s.exec(sentence) ?? [];
    if (subject !== undefined && rule !== undefined) return { subject, rule };
  }
  return undefined;
}

/** A value as a message quotes it: JSON, cut short past 80 characters. */
function quoted(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 78)}…${text.at(-1) === '"' ? '"' : ''}` : text;
}

/** The value at a JSON pointer ("/routing/sticky/key") in `data`. */
function valueAt(data: unknown, pointer: string): unknown {
  let value = data;
  for (const part of pointer.split('/').slice(1)) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return value;
}

/**
 * ajv names a bad name under `propertyNames` twice, once by the regex it failed and once as "property name must be
 * valid", and never says which name; and a `pattern` failure shows the regex. Where the schema states the rule in
 * words (its description's "A <subject>: <rule>." sentence, see describedRule), this says it once, with the bad
 * name or value: `: "vé" is not a usable version name (letters, …)` for a name (the message starts with ": ", to be
 * read after its object's key), `"bogus" is not a usable sticky key (…)` for a value. A `writeOnly` value (a
 * token) is never quoted. Without such a sentence the errors are kept, the name added to them.
 */
export function withReadableRules(errors: SchemaError[], schema: Schema, data: unknown): SchemaError[] {
  return errors.flatMap((error): SchemaError[] => {
    if (error.propertyName !== undefined) return [];  // Said by the propertyNames error that follows it.
    if (error.keyword === 'propertyNames') {
      const name = String(error.params.propertyName);
      const rule = describedRule(followRefs(schema, schemaAt(schema, error.schemaPath)));
      if (rule) return [{ ...error, message: `: ${quoted(name)} is not a usable ${rule.subject} (${rule.rule})` }];
      const inner = errors.filter((each) => each.propertyName === name && each.instancePath === error.instancePath);
      return [{ ...error, message: `: the name ${quoted(name)} ${inner.map((each) => each.message).join(', ') || 'is not allowed'}` }];
    }
    if (error.keyword === 'pattern') {
      const node = followRefs(schema, schemaAt(schema, error.schemaPath.replace(/\/pattern$/, '')));
      const rule = describedRule(node);
      if (!rule) return [error];
      const shown = (node as Schema).writeOnly === true ? '' : `${quoted(valueAt(data, error.instancePath))} `;
      return [{ ...error, message: `${shown}is not a usable ${rule.subject} (${rule.rule})` }];
    }
    return [error];
  });
}
