// Helpers for the dashboard tests: a strict reader of Prometheus text, feed clients, the browser.
import test from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import type { FeedMessage } from '../src/dashboard/messages.js';
import { token } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';

export { rssOf } from './helpers/procfs.js';

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  type: string;
  help: string;
  samples: MetricSample[];
}

const namePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: "${text}" is not a number`);
  return Number(text);
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const match = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/.exec(rest);
    if (!match) throw new Error(`${where}: bad labels at "${rest}"`);
    if (match[1]! in labels) throw new Error(`${where}: label ${match[1]} twice`);
    labels[match[1]!] = match[2]!.replace(/\\(["\\n])/g, (_, escaped: string) => (escaped === 'n' ? '\n' : escaped));
    rest = rest.slice(match[0].length);
  }
  return labels;
}

/**
 * Parses the Prometheus text exposition format (0.0.4) strictly: HELP and TYPE once per family and before its
 * samples, every sample in the family of the TYPE before it, no series twice, histograms cumulative with a +Inf
 * bucket equal to _count. Throws naming the line on the first violation.
 */
export function parseExposition(text: string): Map<string, MetricFamily> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, MetricFamily>();
  const series = new Set<string>();
  let current: { name: string; family: MetricFamily } | undefined;
  text.slice(0, -1).split('\n').forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line.trim() === '') return;
    const comment = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      if (!namePattern.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      let family = families.get(name);
      if (family && current?.name !== name) throw new Error(`${where}: ${name} appears in two places`);
      if (!family) {
        family = { type: 'untyped', help: '', samples: [] };
        families.set(name, family);
      }
      if (family.samples.length > 0) throw new Error(`${where}: ${kind} for ${name} after its samples`);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`${where}: unknown type ${rest}`);
        family.type = rest;
      } else {
        family.help = rest;
      }
      current = { name, family };
      return;
    }
    if (line.startsWith('#')) return;
    const sample = /^([^\s{]+)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!sample) throw new Error(`${where}: not a sample: ${line}`);
    const [, name, labelText, valueText] = sample as unknown as [string, string, string | undefined, string];
    if (!namePattern.test(name)) throw new Error(`${where}: bad metric name ${name}`);
    if (!current) throw new Error(`${where}: ${name} has no TYPE`);
    const allowed = current.family.type === 'histogram'
      ? ['_bucket', '_count', '_sum'].map((suffix) => current!.name + suffix)
      : [current.name];
    if (!allowed.includes(name)) throw new Error(`${where}: ${name} is not in family ${current.name}`);
    const labels = parseLabels(labelText ?? '', where);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(key)) throw new Error(`${where}: series ${key} twice`);
    series.add(key);
    current.family.samples.push({ name, labels, value: parseValue(valueText, where) });
  });

  for (const [name, family] of families) {
    if (family.type !== 'histogram') continue;
    const groups = new Map<string, MetricSample[]>();
    for (const sample of family.samples) {
      const { le: _le, ...rest } = sample.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      groups.set(key, [...(groups.get(key) ?? []), sample]);
    }
    for (const [key, samples] of groups) {
      const buckets = samples.filter((sample) => sample.name === `${name}_bucket`);
      const bounds = buckets.map((bucket) => parseValue(bucket.labels.le ?? '', `${name}${key}`));
      if (bounds.at(-1) !== Infinity) throw new Error(`${name}${key}: no le="+Inf" bucket`);
      for (let index = 1; index < buckets.length; index++) {
        if (!(bounds[index]! > bounds[index - 1]!) || buckets[index]!.value < buckets[index - 1]!.value) throw new Error(`${name}${key}: buckets not cumulative`);
      }
      const count = samples.find((sample) => sample.name === `${name}_count`);
      if (count && count.value !== buckets.at(-1)!.value) throw new Error(`${name}${key}: _count differs from the +Inf bucket`);
    }
  }
  return families;
}

/** Opens the live feed the way a script would (bearer header), or as given. */
export function openFeed(dashboardPort: number, options: WebSocket.ClientOptions & { protocols?: string[] } = {}): WebSocket {
  const { protocols, ...rest } = options;
  return new WebSocket(`ws://127.0.0.1:${dashboardPort}/ws`, protocols ?? [], { headers: { authorization: `Bearer ${token}` }, ...rest });
}

/** Resolves with the status code a refused handshake got (rejects if it was accepted). */
export function refusal(socket: WebSocket): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      socket.terminate();
    });
    socket.once('open', () => {
      socket.terminate();
      reject(new Error('the handshake was accepted'));
    });
    socket.once('error', () => {});
  });
}

/** Resolves with the first feed message that passes `check`. */
export function nextMessage(socket: WebSocket, check: (message: FeedMessage) => boolean = () => true, timeoutMs = 15_000): Promise<FeedMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error(`no matching feed message within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (data: WebSocket.RawData) => {
      const message = JSON.parse(data.toString()) as FeedMessage;
      if (!check(message)) return;
      clearTimeout(timer);
      socket.off('message', onMessage);
      resolve(message);
    };
    socket.on('message', onMessage);
  });
}

/** Polls `check` until it returns a truthy value (which it resolves with) or the time is up. */
export function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  return waitFor(check, { what, timeoutMs, intervalMs: 100 });
}

/** Debian's Chromium, driven by playwright-core; .ci/run installs it. */
/** One Chromium for the whole test file: launched before its first test, closed after its last; call it in a test. */
export function sharedBrowser(): () => Browser {
  let browser: Browser | undefined;
  test.before(async () => {
    browser = await launchBrowser();
  });
  test.after.always(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error('the shared browser is not launched: call it inside a test');
    return browser;
  };
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless', '--disable-background-networking', '--disable-gpu', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A new page of its own browser context (closed at the test's end) at `url`, collecting the page's errors and
 * console errors; with `acceptDialogs`, every confirm() is accepted as an operator clicking OK would.
 */
export async function openPage(
  browser: Browser, t: { teardown(fn: () => Promise<void>): void }, url: string,
  { viewport = { width: 1400, height: 1000 }, acceptDialogs = false } = {},
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  if (acceptDialogs) page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(url);
  return { page, errors };
}
