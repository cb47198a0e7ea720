import v8 from 'node:v8';

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
  if (optimizerFlag.test([...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' '))) return load();
  v8.setFlagsFromString('--no-turbofan');
  try {
    return await load();
  } finally {
    v8.setFlagsFromString('--turbofan');
  }
}
