/** A mistake on the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(message: string, readonly usage: string) {
    super(message);
  }
}

/** A command that could not do its work (a file it cannot write, say): printed as one line, exit code 1. */
export class CommandFailure extends Error {
  override name = 'CommandFailure';
}

export const mainUsage = `graycluster: gray (canary) releases for Node.js HTTP services

Usage: graycluster <command> [options]

Commands:
  start      Run the supervisor in the foreground: worker pools, router, dashboard
  status     Show every version and worker of a running supervisor (--watch, --json)
  logs       Show what the workers wrote (--lines, --follow, --json): graycluster logs v2 -f
  init       Write a starter config file
  split-clients  Print nginx config that splits users by weight as graycluster does,
             one upstream pool per version, so no request is relayed

  Changing a running canary (each validates, prints what changes, and writes the
  config file atomically; the supervisor applies it within a second):
  weights    Set traffic weights: graycluster weights v1=80 v2=20
  deploy     Add a version or point one at new code: graycluster deploy v2 --entry app.js
  scale      Change a version's worker count: graycluster scale v2 4
  promote    Send all traffic to one version: graycluster promote v2
  set        Set any config key: graycluster set routing.default '"v2"'
  rollback   Go back to the previously applied config
  reload     Replace a version's workers with fresh ones, rolling: graycluster reload v2
  restart    Replace one worker, rolling: graycluster restart v2.1

  Diagnosing a live worker (it keeps serving):
  heap-snapshot  Write a heap snapshot of one worker: graycluster heap-snapshot v2.1
  inspect    Open (or --close) one worker's inspector: graycluster inspect v2.1

  Progressive delivery (steps judged by the canary's numbers against its baseline):
  canary     start <version> | status | pause | resume | abort: graycluster canary start v2

Options:
  -h, --help       Show help (also: graycluster <command> --help)
  -v, --version    Print the version

Config: --config <file>, else $GRAYCLUSTER_CONFIG, else ./graycluster.json.
Exit codes: 0 ok, 1 failure (bad config, port taken, not running), 2 usage error.
`;
