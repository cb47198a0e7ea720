/**
 * The test-and-bench toolkit (test/helpers/toolkit.ts: processes, finding an executable, rss, waitFor, makeConfig,
 * a running graycluster found through its run-state file, nginx in front of it), as built by `npm run build`.
 * One copy serves tests and bench.
 */
let toolkit;
try {
  toolkit = await import('../../dist/test/helpers/toolkit.js');
} catch (error) {
  if (error.code !== 'ERR_MODULE_NOT_FOUND') throw error;
  throw new Error('bench: dist/test/helpers/toolkit.js is missing: run `npm run build` first (npm run bench does)');
}

export const {
  findExecutable, freePort, installCleanup, killAll, makeConfig, nginxMissing, nginxPath, residentBytes, sampleRss, sleep, startInstance, startNginx,
  startProcess, temporaryFolder, upstreamKeepalive, waitFor, waitForRunState,
} = toolkit;
