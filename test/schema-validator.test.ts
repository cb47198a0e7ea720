/**
 * The config is validated by a validator that ajv compiled at build time (scripts/build-schema-validator.js), and
 * written through conf, which compiles the schema itself: both must judge a file alike, with the same messages.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
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
