import { executionAsyncResource } from 'node:async_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Keeps the supervisor's young generation at its initial size (a 1 MB semi-space) instead of letting V8 grow it
 * up to 16 MB per semi-space under load and keep it grown once idle: with it grown, graycluster's primary held
 * about 40 MB more than node:cluster's after a load. The cost is more, smaller scavenges while connections
 * arrive fast; the primary keeps little alive per connection, so each one is short.
 *
 * A V8 flag set at run time (`v8.setFlagsFromString`; V8 reads this one each time it would grow the space).
 * Flags set this way are not in `process.execArgv`, so the workers, forked with it, and the app in them keep
 * V8's defaults. test/heap-policy.test.ts fails if a Node upgrade stops honouring it.
 */
export function keepYoungGenerationSmall(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}

/** The node flags the user started this process with (command line and NODE_OPTIONS), as one string. */
function userNodeFlags(): string {
  return [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
}

/** Node flags under which the optimizing compiler is off or capped: then it is left as the user set it. */
const optimizerFlag = /--(no[-_]opt|no[-_]turbofan|jitless|max[-_]opt)\b/;

/**
 * Runs `load` (the supervisor's module imports) with V8's optimizing compiler off, and turns it back on after.
 * Resolving the primary's ~65 ES modules makes three functions of Node's own ESM resolver hot (it scans every
 * file URL it resolves): V8 optimizes them, and so pages about 4 MB of its optimizing compiler's code in, which
 * an idle supervisor then holds for nothing. Once it is back on, the router's hot path is optimized under load
 * as before. Left alone when the user's node flags already say something about the optimizer.
 * test/heap-policy.test.ts fails if a Node upgrade stops honouring the flag at run time.
 */
export async function loadWithoutOptimizing<T>(load: () => Promise<T>): Promise<T> {
  if (optimizerFlag.test(userNodeFlags())) return load();
  v8.setFlagsFromString('--no-turbofan');
  try {
    return await load();
  } finally {
    v8.setFlagsFromString('--turbofan');
  }
}

/** Node flags under which every full collection compacts already: then that is left as the user set it. */
const compactFlag = /--compact[-_]on[-_]every[-_]full[-_]gc\b/;

/**
 * A function that runs a full, compacting garbage collection now: live objects are moved together, so the pages
 * the garbage held go back to the system (a plain full collection frees the objects but keeps a page while any
 * object on it lives, which after a burst of connections is most of them). The pause is that of one full
 * collection of the primary's small heap, about 15–40 ms.
 *
 * There is no public API for it: `--expose-gc` is set at run time just long enough for a new vm context to get V8's
 * `gc` (the flag is read when a context is made), and `--compact-on-every-full-gc` only around each call. Neither
 * is in `process.execArgv`, so workers keep V8's defaults. test/heap-policy.test.ts fails if a Node upgrade stops
 * honouring either.
 */
export function compactingCollection(): () => void {
  const exposed = typeof (globalThis as { gc?: unknown }).gc === 'function';
  v8.setFlagsFromString('--expose-gc');
  const gc: unknown = vm.runInNewContext('gc');
  if (!exposed) v8.setFlagsFromString('--no-expose-gc');
  if (typeof gc !== 'function') throw new Error('V8 changed: a vm context made under --expose-gc has no gc function');
  const compactsAlways = compactFlag.test(userNodeFlags());
  return () => {
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      (gc as () => void)();
    } finally {
      if (!compactsAlways) v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

let afterBursts: (() => void) | undefined;

/**
 * Opts this process in to a compacting collection after each burst of connections (`collectionAfterBursts()`
 * hands it to the router). Only graycluster's own primary does: a program that embeds graycluster through its API
 * holds a heap of its own, where a forced full collection would cost more than it is worth.
 */
export function collectAfterBursts(): void {
  afterBursts ??= lazily(compactingCollection);
}

/** The collection to run after a burst, if this process opted in (`collectAfterBursts`). */
export function collectionAfterBursts(): (() => void) | undefined {
  return afterBursts;
}

/**
 * Makes the collector on first use, so a primary that never sees a burst never makes the vm context. If it cannot
 * (a Node upgrade changed what it relies on), says so once as a process warning and collects nothing after.
 */
function lazily(make: () => () => void): () => void {
  let collect: (() => void) | undefined;
  return () => {
    if (collect === undefined) {
      try {
        collect = make();
      } catch (error) {
        collect = () => {};
        process.emitWarning(`graycluster: no garbage collection after bursts of connections: ${(error as Error).message}`);
        return;
      }
    }
    collect();
  };
}

let keptTickObject: object | undefined;

/**
 * Keeps one of Node's tick objects alive for the life of the process, so that `process.nextTick` stays on V8's
 * fast path. Node 20 builds each tick object with a literal whose first keys are computed
 * (`{ [async_id_symbol]: …, [trigger_async_id_symbol]: …, callback, args }`, lib/internal/process/task_queues.js).
 * V8 records, at each such key, the hidden class the object had there, and holds it weakly. Tick objects live
 * for one turn of the event loop, so a full collection that runs while none is alive (an idle process: V8's
 * memory reducer, or the primary's collection after a burst) frees those hidden classes. The next `nextTick`
 * finds its recorded class gone, and V8's runtime for computed keys (`DefineKeyedOwnPropertyInLiteral`) then
 * marks that feedback megamorphic, for good: every later tick object is built in the runtime, 300–800 ns a call
 * instead of 40–100 ns, and Node's streams and HTTP server call `nextTick` several times per request.
 * A tick object that stays alive keeps its hidden classes alive, so the feedback stays as it was.
 *
 * Call it before the first full collection can run idle: the feedback that went megamorphic never comes back.
 * `executionAsyncResource()` inside a `nextTick` callback is the tick object itself (Node passes it as the
 * resource of the callback's async context). test/heap-policy.test.ts fails if a Node upgrade changes either.
 */
export function keepTickObjectShape(): void {
  if (keptTickObject !== undefined) return;
  process.nextTick(() => {
    keptTickObject = executionAsyncResource();
  });
}
