import { parseArgs } from 'node:util';
import { defaultLogLines, logLinesRule, maxLogLines, parseLogLines } from '../dashboard/logs.js';
import type { LogStreamItem } from '../dashboard/messages.js';
import { formatWorkerLine } from '../primary/logs/format.js';
import { refuseEmpty } from './options.js';
import { apiTarget, callApi, isLogsAnswer, NotRunningError, remoteCommon, remoteOptions, streamApi, type ApiTarget } from './remote.js';
import { UsageError } from './usage.js';

export const logsUsage = `Usage: graycluster logs [version|worker] [--lines <n>] [--follow] [--json] [options]

Prints the last lines the workers wrote to stdout and stderr, as the supervisor keeps them
(a bounded ring per worker, kept a while after a worker exits): of one worker (v2.1), of
every worker of a version (v2), or of every worker. Lines are in the form the supervisor
prints them ("v2.1 | listening"). --follow then prints every new line until Ctrl-C, or
until the supervisor stops.

Options:
  -n, --lines <n>       How many of the recent lines (default ${defaultLogLines}, at most ${maxLogLines}; 0 with --follow: only new ones)
  -f, --follow          Keep printing new lines
      --json            One JSON object per line: time, worker, version, stream, message
${remoteCommon}
`;

export async function logs(args: string[]): Promise<number> {
  const options = { ...remoteOptions, lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } } as const;
  const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
  if (values.help) {
    process.stdout.write(logsUsage);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`expected at most 1 argument (a version such as v2 or a worker such as v2.1), got ${positionals.length}`, logsUsage);
  const query = new URLSearchParams();
  const [selector] = positionals;
  if (selector === '') throw new UsageError('the version or worker to show is empty: name one such as v2 or v2.1, or none for all', logsUsage);
  refuseEmpty({ values }, logsUsage);
  if (selector !== undefined) query.set('target', selector);
  if (values.lines !== undefined) query.set('lines', String(parseLines(values.lines)));
  const print = values.json ? (item: LogStreamItem) => `${JSON.stringify(item)}\n` : formatItem;
  const target = apiTarget(values);
  if (!values.follow) {
    const answer = await callApi(target, isLogsAnswer, 'GET', `/api/logs?${query}`);
    process.stdout.write(answer.lines.map(print).join(''));
    return 0;
  }
  query.set('follow', '1');
  return follow(target, `/api/logs?${query}`, print);
}

function parseLines(value: string): number {
  const lines = parseLogLines(value);
  if (lines === undefined) throw new UsageError(`--lines must be ${logLinesRule}, not "${value}"`, logsUsage);
  return lines;
}

/** A worker's line as the supervisor prints it (`v2.1 | …`, `v2.1 ! …` from stderr); a count of missed lines goes to stderr. */
function formatItem(item: LogStreamItem): string {
  if ('message' in item) return `${formatWorkerLine(item, 'text')}\n`;
  if ('missed' in item) process.stderr.write(`graycluster: ${item.missed} lines not shown here: this reader fell behind\n`);
  return '';
}

/** Prints the stream's items until Ctrl-C (0), the supervisor stopping (0), or the connection breaking (1). */
async function follow(target: ApiTarget, path: string, print: (item: LogStreamItem) => string): Promise<number> {
  const abort = new AbortController();
  const interrupted = () => abort.abort();
  process.once('SIGINT', interrupted);
  process.stdout.once('error', interrupted);  // Whatever read our output has gone (| head).
  try {
    const body = await streamApi(target, path, abort.signal);
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of body) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const text of lines) {
        const item = JSON.parse(text) as LogStreamItem;
        process.stdout.write(print(item));
        if ('end' in item) {
          process.stderr.write(`graycluster: no more lines: ${item.end}\n`);
          return 0;
        }
      }
    }
    throw new NotRunningError(`${target.url} closed the stream of lines without saying why`);
  } catch (error) {
    if (abort.signal.aborted) return 0;
    if (error instanceof NotRunningError) throw error;
    throw new NotRunningError(`lost the connection to ${target.url}: ${(error as Error).message}`);
  } finally {
    process.off('SIGINT', interrupted);
    process.stdout.off('error', interrupted);
  }
}
