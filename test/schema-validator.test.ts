/**
 * The config is validated by a validator that ajv compiled at build time (config/build-schema-validator.js), and
 * written through conf, which compiles the schema itself: both must judge a file alike, with the same messages.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { readConfigFile, writeConfigFile } from '../src/config/load.js';
import type { ConfigFile } from '../src/config/types.js';

const good = { versions: { v1: { entry: 'app.js' } }, routing: { default: 'v1' } };
const bad: Record<string, unknown> = {
  'no routing': { versions: good.versions },
  'a string where a number goes': { ...good, versions: { v1: { entry: 'app.js', workers: 'two' } } },
  'a number below its minimum': { ...good, versions: { v1: { entry: 'app.js', workers: 0 } } },
  'an empty entry': { ...good, versions: { v1: { entry: '' } } },
  'an array at the top': [],
  'several faults at once': { versions: { v1: { workers: -1 } }, routing: { default: 7 } },
};

for (const [what, contents] of Object.entries(bad)) {
  test(`a file with ${what} gets the same message from the build-time validator as from conf`, async (t) => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-schema-'));
    t.teardown(() => rmSync(folder, { recursive: true, force: true }));
    const file = path.join(folder, 'graycluster.json');
    writeFileSync(file, JSON.stringify(good));
    t.notThrows(() => readConfigFile(file));
    const fromConf = await t.throwsAsync(writeConfigFile(file, contents as ConfigFile), { name: 'ConfigError' });
    writeFileSync(file, JSON.stringify(contents));
    const fromValidator = t.throws(() => readConfigFile(file), { name: 'ConfigError' });
    t.is(fromValidator?.message, fromConf?.message);
  });
}

/** What readConfigFile says of a file of `good` with `contents` over it, without the file's path. */
function messageFor(t: ExecutionContext) {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-schema-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'graycluster.json');
  return (contents: object) => {
    writeFileSync(file, JSON.stringify({ ...good, ...contents }));
    return t.throws(() => readConfigFile(file), { name: 'ConfigError' })?.message.replace(`${file}: `, '');
  };
}

test('a value that fits no branch of a oneOf is named once, by what fits, not by every branch', (t) => {
  const messageOf = messageFor(t);
  const version = (logFile: unknown) => ({ versions: { v1: { entry: 'app.js', logFile } } });
  t.is(messageOf(version(5)), 'versions.v1.logFile must be a string or an object', 'no branch\'s type: what each accepts');
  t.is(messageOf(version({ path: 'a.log', maxBytes: 'big' })), 'versions.v1.logFile.maxBytes must be integer', 'the object branch\'s own error');
  t.is(messageOf({ server: { versionHeader: true } }), 'server.versionHeader must be a string or false');
  t.is(messageOf({ server: { trustProxy: '10.0.0.0/8' } }), 'server.trustProxy must be false or an array');
  t.is(messageOf({ rollout: { version: 'v1', progressDeadlineMs: 5 } }), 'rollout.progressDeadlineMs must be >= 1000', 'the integer branch, not "must be null"');
  t.is(messageOf({ routing: { default: 'v1', rules: [{ query: 'a', header: 'b' }] } }), 'routing.rules.0 must have exactly one of "query", "header", "cookie"');
  t.is(messageOf({ versions: { v1: { entry: 'app.js', workers: 0, logFile: 5 } } }), 'versions.v1.workers must be >= 1; versions.v1.logFile must be a string or an object', 'other errors kept, in order');
});

test('a bad version name or a value that breaks a rule is named with the rule in words, not the regex', (t) => {
  const messageOf = messageFor(t);
  const rule = "(letters, digits, '.', '_' or '-', not all digits, at most 64 characters)";
  const long = `v${'x'.repeat(69)}`;
  for (const name of ['vé', '123', long]) {
    t.is(messageOf({ versions: { v1: { entry: 'app.js' }, [name]: { entry: 'app.js' } } }), `versions: ${JSON.stringify(name)} is not a usable version name ${rule}`);
  }
  t.is(messageOf({ routing: { default: 'vé' } }), `routing.default "vé" is not a usable version name ${rule}`);
  t.is(messageOf({ routing: { default: 'v1', weights: { 'a b': 1 } } }), `routing.weights: "a b" is not a usable version name ${rule}`);
  t.is(messageOf({ routing: { default: 'v1', sticky: { key: 'bogus' } } }), 'routing.sticky.key "bogus" is not a usable sticky key ("ip", "cookie:NAME" or "header:NAME")');
  t.regex(messageOf({ routing: { default: 'v1', versionCookie: 'a b' } })!, /^routing\.versionCookie must match pattern/, 'no rule in words: the regex it is');
});
