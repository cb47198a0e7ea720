import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';

const policyModule = pathToFileURL(path.resolve(import.meta.dirname, '../src/shared/heap-policy.js')).href;

/** The young generation's size after allocating 2 million short-lived objects while holding 20,000 of them. */
function youngGenerationAfterLoad(withPolicy: boolean): { initial: number; after: number } {
  const script = `
    import v8 from 'node:v8';
    ${withPolicy ? `(await import(${JSON.stringify(policyModule)})).keepYoungGenerationSmall();` : ''}
    const newSpace = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size;
    const initial = newSpace();
    const kept = new Array(20_000);
    for (let i = 0; i < 2_000_000; i++) kept[i % kept.length] = { i, text: 'item ' + i };
    console.log(JSON.stringify({ initial, after: newSpace() }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })) as { initial: number; after: number };
}

test('the primary\'s heap policy keeps V8\'s young generation small under allocation, where V8 alone grows it', (t) => {
  const alone = youngGenerationAfterLoad(false);
  const kept = youngGenerationAfterLoad(true);
  // Without the policy the load must grow it, or this test no longer shows anything.
  t.true(alone.after >= 8 * alone.initial, `V8 alone: ${alone.initial} → ${alone.after} bytes`);
  t.true(kept.after <= 2 * kept.initial, `with the policy: ${kept.initial} → ${kept.after} bytes`);
});
