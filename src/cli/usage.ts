/** A mistake on the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(message: string, readonly usage: string) {
    super(message);
  }
}

export const mainUsage = `graycluster: gray (canary) releases for Node.js HTTP services

Usage: graycluster <command> [options]

Commands:
  start    Run the supervisor in the foreground: worker pools, router, status API
  status   Show every version and worker of a running supervisor
  init     Write a starter config file

Options:
  -h, --help       Show help (also: graycluster <command> --help)
  -v, --version    Print the version

Config: --config <file>, else $GRAYCLUSTER_CONFIG, else ./graycluster.json.
Exit codes: 0 ok, 1 failure (bad config, port taken, not running), 2 usage error.
`;
