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
