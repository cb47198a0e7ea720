// The test-and-bench toolkit in one import: tests reach it through ./cluster.js, the bench (plain JS, after
// `npm run build`) through bench/lib/toolkit.js, which loads this file's build from dist/test/helpers/.
export { bin, fixture, makeConfig, root, token, type VersionOptions } from './config.js';
export { get, request, type Reply } from './http.js';
export { startInstance, waitForRunState, type Instance, type InstanceOptions } from './instance.js';
export { nginxConfig, nginxMissing, nginxPath, startNginx, upstreamKeepalive, type Nginx, type NginxOptions, type NginxServer } from './nginx.js';
export { findExecutable, installCleanup, killAll, startProcess, temporaryFolder, type StartedProcess } from './processes.js';
export { residentBytes, rssOf, sampleRss, type RssSample } from './procfs.js';
export { canConnect, freePort } from './ports.js';
export { holdUp, sleep, waitFor, type WaitOptions } from './wait.js';
export { runCli, type CliResult } from './cli.js';
