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

/** Which of two functions V8 optimized: `duringLoad`, made hot inside loadWithoutOptimizing, and `afterLoad`, after it. */
function optimizedAroundLoad(nodeFlags: string[]): { duringLoad: boolean; afterLoad: boolean } {
  const script = `
    const { loadWithoutOptimizing } = await import(${JSON.stringify(policyModule)});
    function duringLoad() { let sum = 0; for (let i = 0; i < 200; i++) sum += (i * 7) % 13; return sum; }
    function afterLoad() { let sum = 0; for (let i = 0; i < 200; i++) sum += (i * 11) % 17; return sum; }
    await loadWithoutOptimizing(async () => { for (let i = 0; i < 20_000; i++) duringLoad(); });
    for (let i = 0; i < 20_000; i++) afterLoad();`;
  // Synchronous compiles, so every optimization is traced before the process exits.
  const trace = execFileSync(process.execPath, [...nodeFlags, '--trace-opt', '--no-concurrent-recompilation', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  const optimized = (name: string) => new RegExp(`completed (compiling|optimizing) .*<JSFunction ${name} `).test(trace);
  return { duringLoad: optimized('duringLoad'), afterLoad: optimized('afterLoad') };
}

test('the primary loads its modules with V8\'s optimizing compiler off, and has it back on afterwards', (t) => {
  t.deepEqual(optimizedAroundLoad([]), { duringLoad: false, afterLoad: true });
});

test('a user\'s --no-opt stays in force after the primary has loaded its modules', (t) => {
  t.deepEqual(optimizedAroundLoad(['--no-opt']), { duringLoad: false, afterLoad: false });
});
