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

/**
 * Old space's committed size in MB before and after one collection, once 200,000 promoted objects are down to every
 * 20th: the survivors are spread over every page. `compacting`: the primary's collector; else V8's plain full one.
 */
function oldSpaceAroundCollection(compacting: boolean, nodeFlags: string[] = []): { before: number; after: number; gcStillHidden: boolean } {
  const script = `
    import v8 from 'node:v8';
    import vm from 'node:vm';
    const { compactingCollection } = await import(${JSON.stringify(policyModule)});
    const collect = compactingCollection();
    v8.setFlagsFromString('--expose-gc');
    const plainCollection = vm.runInNewContext('gc');
    if (typeof globalThis.gc !== 'function') v8.setFlagsFromString('--no-expose-gc');
    const committed = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === 'old_space').space_size / 1048576;
    let all = [];
    for (let i = 0; i < 200_000; i++) all.push({ i, text: 'item ' + i });
    plainCollection(); plainCollection();
    const kept = all.filter((_, i) => i % 20 === 0);
    all = undefined;
    const before = committed();
    ${compacting ? 'collect()' : 'plainCollection()'};
    console.log(JSON.stringify({ before, after: committed(), kept: kept.length, gcStillHidden: vm.runInNewContext('typeof gc') === 'undefined' }));`;
  return JSON.parse(execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })) as { before: number; after: number; gcStillHidden: boolean };
}

test('the primary\'s collector after a burst gives the pages of promoted garbage back, where V8\'s plain full collection keeps them', (t) => {
  const plain = oldSpaceAroundCollection(false);
  // A plain full collection must keep the pages, or this test no longer shows anything.
  t.true(plain.after >= 0.8 * plain.before, `plain full collection: ${plain.before.toFixed(1)} → ${plain.after.toFixed(1)} MB committed`);
  const compacting = oldSpaceAroundCollection(true);
  t.true(compacting.after <= 0.5 * compacting.before, `compacting collection: ${compacting.before.toFixed(1)} → ${compacting.after.toFixed(1)} MB committed`);
});

test('getting the collector leaves gc hidden from contexts made later, unless the user exposed it', (t) => {
  t.true(oldSpaceAroundCollection(true).gcStillHidden);
  t.false(oldSpaceAroundCollection(true, ['--expose-gc']).gcStillHidden);
});

/**
 * The feedback states V8 holds for the object literal in `process.nextTick` (one per key), after nextTick was made
 * hot, six full collections ran while no tick object was alive, and nextTick ran again. `kept`: with
 * keepTickObjectShape() called first.
 */
function tickLiteralFeedbackAfterIdleCollections(kept: boolean): string[] {
  const script = `
    const { keepTickObjectShape } = await import(${JSON.stringify(policyModule)});
    if (${kept}) keepTickObjectShape();
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const noop = () => {};
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 5000; i++) process.nextTick(noop);
      await turn();
    }
    // V8 keeps the maps of freshly optimized code alive for two more full collections: six leave none standing.
    for (let i = 0; i < 6; i++) gc();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 5000; i++) process.nextTick(noop);
      await turn();
    }
    %DebugPrint(process.nextTick);`;
  // Synchronous optimization: code installed late, under load, would not keep those maps alive past the collections.
  const printed = execFileSync(process.execPath, ['--expose-gc', '--allow-natives-syntax', '--no-concurrent-recompilation', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  return [...printed.matchAll(/DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((match) => match[1]!);
}

test('a full collection in an idle process sends nextTick to its slow path for good, unless a tick object is kept', (t) => {
  const alone = tickLiteralFeedbackAfterIdleCollections(false);
  // Node 20's nextTick literal has four keys; if a Node upgrade fixes V8's feedback here, this fails and
  // keepTickObjectShape can go.
  t.is(alone.length, 4, `feedback printed: ${alone.join(' ')}`);
  t.true(alone.includes('MEGAMORPHIC'), `without the kept tick object: ${alone.join(' ')}`);
  t.deepEqual(tickLiteralFeedbackAfterIdleCollections(true), ['MONOMORPHIC', 'MONOMORPHIC', 'MONOMORPHIC', 'MONOMORPHIC']);
});
