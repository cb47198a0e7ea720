import os from 'node:os';
import test from 'ava';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import { describe, hiddenPortChanges, plan } from '../src/config/plan.js';
import type { ConfigFile } from '../src/config/types.js';
import { deploy, EditError, promote, replaceWith, scale, setKey, setWeights } from '../src/config/edits.js';

const base = (): ConfigFile => ({
  versions: { v1: { entry: './a.js', workers: 2 }, v2: { entry: './b.js' } },
  routing: { default: 'v1', weights: { v1: 90, v2: 10 } },
});
const resolve = (raw: ConfigFile) => resolveConfig('/srv/graycluster.json', raw);
const steps = (edit: (raw: ConfigFile) => void) => {
  const next = base();
  edit(next);
  return plan(resolve(base()), resolve(next));
};

test('an unchanged config plans nothing', (t) => {
  t.deepEqual(steps(() => {}), []);
});

test('a routing change only switches routing', (t) => {
  t.deepEqual(steps((raw) => { raw.routing.weights = { v1: 50, v2: 50 }; }), [{ kind: 'switch-routing' }]);
  t.deepEqual(steps((raw) => { raw.routing.rules = [{ header: 'x-canary', equals: '1', to: 'v2' }]; }), [{ kind: 'switch-routing' }]);
  t.deepEqual(steps((raw) => { raw.server = { headTimeoutMs: 500 }; }), [{ kind: 'switch-routing' }]);
});

test('a new entry, env, maxInFlight, nodeArgs, args or cwd replaces the version; a worker count scales it', (t) => {
  t.like(steps((raw) => { raw.versions.v2!.entry = './c.js'; }), [{ kind: 'replace', version: 'v2' }]);
  t.like(steps((raw) => { raw.versions.v2!.env = { A: '1' }; }), [{ kind: 'replace', version: 'v2', reason: 'env changed' }]);
  t.like(steps((raw) => { raw.versions.v1!.maxInFlight = 5; }), [{ kind: 'replace', version: 'v1' }]);
  t.like(steps((raw) => { raw.versions.v2!.nodeArgs = ['--max-old-space-size=256']; }), [{ kind: 'replace', version: 'v2', reason: 'nodeArgs [] → ["--max-old-space-size=256"]' }]);
  t.like(steps((raw) => { raw.versions.v2!.args = ['--port', '0']; }), [{ kind: 'replace', version: 'v2', reason: 'args [] → ["--port","0"]' }]);
  t.like(steps((raw) => { raw.versions.v2!.cwd = os.tmpdir(); }), [{ kind: 'replace', version: 'v2', reason: `cwd (the supervisor's) → ${os.tmpdir()}` }]);
  t.deepEqual(steps((raw) => { raw.versions.v1!.workers = 4; }), [{ kind: 'scale', version: 'v1', from: 2, to: 4 }]);
  t.deepEqual(steps((raw) => { raw.versions.v1!.maxMemoryMB = 300; }), [{ kind: 'set-limit', version: 'v1', key: 'maxMemoryMB', from: null, to: 300 }]);
});

test('a new version starts before routing switches; a removed one drains after', (t) => {
  const added = steps((raw) => {
    raw.versions.v3 = { entry: './c.js' };
    raw.routing.weights = { v1: 80, v2: 10, v3: 10 };
  });
  t.deepEqual(added.map((step) => step.kind), ['start-version', 'switch-routing']);
  const removed = steps((raw) => {
    delete raw.versions.v2;
    raw.routing.weights = { v1: 100 };
  });
  t.deepEqual(removed.map((step) => step.kind), ['switch-routing', 'remove-version']);
});

test('a new address or token is reported as needing a restart', (t) => {
  t.deepEqual(steps((raw) => { raw.server = { port: 81 }; }), [{ kind: 'needs-restart', key: 'server.port' }]);
  t.deepEqual(steps((raw) => { raw.dashboard = { token: 'x'.repeat(20) }; }), [{ kind: 'needs-restart', key: 'dashboard.token' }]);
  t.deepEqual(steps((raw) => { raw.health = { port: 9100 }; }), [{ kind: 'needs-restart', key: 'health.port' }]);
});

test('a port changed in the file where start was given one is named; one start was not given is not', (t) => {
  const next = base();
  next.server = { port: 81 };
  next.dashboard = { port: 9001 };
  t.deepEqual(hiddenPortChanges(base(), next, { port: 8080 }), [
    'server.port changed in the file (unset → 81) and has no effect: start was given --port or $GRAYCLUSTER_PORT, which wins over it',
  ]);
  t.deepEqual(hiddenPortChanges(base(), next, {}), [], 'no override: plan() reports it as needing a restart');
  t.deepEqual(hiddenPortChanges(next, next, { port: 8080, dashboardPort: 0 }), [], 'nothing changed');
});

test('steps describe themselves for logs and the CLI', (t) => {
  const next = base();
  next.routing.weights = { v1: 80, v2: 20 };
  const [step] = plan(resolve(base()), resolve(next));
  t.is(describe(step!, resolve(base()), resolve(next)), 'switch routing: default v1, weights v1=90 v2=10, 0 rules → default v1, weights v1=80 v2=20, 0 rules');

  // A switch says what it changes, and nothing that it does not.
  const switchOf = (edit: (raw: ConfigFile) => void) => {
    const after = base();
    edit(after);
    const [before, changed] = [resolve(base()), resolve(after)];
    return plan(before, changed).filter((each) => each.kind === 'switch-routing').map((each) => describe(each, before, changed));
  };
  t.deepEqual(switchOf((raw) => { raw.routing.sticky = { key: 'header:x-user', cookie: 'gc_uid' }; }), ['sticky key ip → sticky key header:x-user, cookie gc_uid']);
  t.deepEqual(switchOf((raw) => { raw.routing.versionCookie = 'gc_version'; }), ['version cookie none → gc_version']);
  t.deepEqual(switchOf((raw) => { raw.server = { ...raw.server, forwardMaxPending: 7 }; }), [`server.forwardMaxPending ${JSON.stringify(resolve(base()).server.forwardMaxPending)} → 7`]);
  t.deepEqual(switchOf((raw) => { raw.versions.v3 = { entry: 'c.js' }; }), ['routing: the versions are now v1, v2, v3']);
});

test('edits: weights, promote, scale, deploy, set, replace', (t) => {
  const apply = (edit: (raw: ConfigFile) => void) => {
    const raw = base();
    edit(raw);
    return raw;
  };
  t.deepEqual(apply(setWeights({ v2: 25 })).routing.weights, { v1: 90, v2: 25 });
  t.like(apply(promote('v2')).routing, { default: 'v2', weights: { v1: 0, v2: 100 } });
  t.is(apply(scale('v2', 3)).versions.v2!.workers, 3);
  t.deepEqual(apply(deploy('v3', './c.js', 2)).versions.v3, { entry: './c.js', workers: 2 });
  t.deepEqual(apply(deploy('v1', './new.js')).versions.v1, { entry: './new.js', workers: 2 });
  t.is(apply(setKey('routing.sticky.cookie', 'gc')).routing.sticky?.cookie, 'gc');
  t.false('maxInFlight' in apply((raw) => { setKey('versions.v1.maxInFlight', 5)(raw); setKey('versions.v1.maxInFlight', undefined)(raw); }).versions.v1!);
  const rolledBack = apply((raw) => { setWeights({ v1: 100, v2: 0 })(raw); setKey('versions.v2', undefined)(raw); });
  t.deepEqual(rolledBack.routing.weights, { v1: 100 }, 'a version taken out takes its weight of 0 with it');
  t.deepEqual(apply(setKey('versions.v2', undefined)).routing.weights, { v1: 90, v2: 10 }, 'a weight above 0 stays, for the check to refuse');
  const other = base();
  other.routing.default = 'v2';
  t.is(apply(replaceWith(other)).routing.default, 'v2');
});

test('edits name what is wrong', (t) => {
  t.throws(() => setWeights({ v9: 1 })(base()), { instanceOf: EditError, message: 'unknown version "v9" (known: v1, v2)' });
  t.throws(() => setWeights({ v1: -1 })(base()), { message: 'routing.weights.v1 must be a whole number from 0 to 1000000, not -1' });
  for (const weight of [1e308, 1e-320, 2.5, 1_000_001, Number.NaN]) {
    t.throws(() => setWeights({ v2: weight })(base()), { message: `routing.weights.v2 must be a whole number from 0 to 1000000, not ${JSON.stringify(weight)}` });
  }
  t.notThrows(() => setWeights({ v2: 1_000_000 })(base()));
  t.throws(() => scale('v1', 0)(base()), { message: 'workers must be a whole number >= 1, not 0' });
  t.throws(() => setKey('routing.default.x', 1)(base()), { message: 'routing.default.x: default is not an object' });
  t.throws(() => setKey('__proto__.polluted', 1)(base()), { message: '"__proto__.polluted" is not a usable key' });
});

test('a version\'s logFile changes without a restart; a logs setting takes effect at the next start', (t) => {
  const changed = steps((raw) => { raw.versions.v1!.logFile = 'logs/v1.log'; });
  t.deepEqual(changed, [{ kind: 'set-log-file', version: 'v1', from: null, to: { path: '/srv/logs/v1.log', maxBytes: 10 * 1024 * 1024, keep: 5 } }]);
  const next = base();
  next.versions.v1!.logFile = 'logs/v1.log';
  t.is(describe(changed[0]!, resolve(base()), resolve(next)), 'set v1\'s logFile from none to /srv/logs/v1.log (rotated at 10485760 bytes, 5 kept) (no restart)');
  t.deepEqual(steps((raw) => { raw.logs = { format: 'json' }; }), [{ kind: 'needs-restart', key: 'logs.format' }]);
});

test('dashboard.port equal to server.port is refused naming both, and the flag that set either; 0 is any free port', (t) => {
  const raw = (): ConfigFile => ({ ...base(), server: { port: 18123 }, dashboard: { port: 18123 } });
  t.throws(() => resolve(raw()), { instanceOf: ConfigError, message: '/srv/graycluster.json: dashboard.port (18123) must differ from server.port' });
  t.throws(() => resolveConfig('/srv/graycluster.json', base(), { port: 9000 }), {
    message: '/srv/graycluster.json: server.port (given by --port or $GRAYCLUSTER_PORT) (9000) must differ from dashboard.port (its default)',
  });
  t.throws(() => resolveConfig('/srv/graycluster.json', base(), { port: 8100, dashboardPort: 8100 }), {
    message: '/srv/graycluster.json: dashboard.port (given by --dashboard-port or $GRAYCLUSTER_DASHBOARD_PORT) (8100) must differ from server.port (given by --port or $GRAYCLUSTER_PORT)',
  });
  t.notThrows(() => resolve({ ...base(), server: { port: 0 }, dashboard: { port: 0 } }));
  t.notThrows(() => resolveConfig('/srv/graycluster.json', raw(), { port: 0, dashboardPort: 0 }));
});

test('checks between keys hold on resolved values, a default included, and say which value is one', (t) => {
  const server = (settings: NonNullable<ConfigFile['server']>) => () => resolve({ ...base(), server: settings });
  t.throws(server({ unresponsiveRestartMs: 500 }), {
    instanceOf: ConfigError,
    message: /^\/srv\/graycluster\.json: server\.unresponsiveRestartMs \(500\) must be above server\.handoffTimeoutMs \(1000, its default\): a stuck worker's connections/,
  });
  t.throws(server({ handoffTimeoutMs: 40_000 }), { message: /server\.handoffTimeoutMs \(40000\) must be below server\.unresponsiveRestartMs \(30000, its default\)/ });
  t.throws(server({ handoffTimeoutMs: 2000, unresponsiveRestartMs: 2000 }), { message: /server\.handoffTimeoutMs \(2000\) must be below server\.unresponsiveRestartMs \(2000\):/ });
  t.throws(server({ heartbeatTimeoutMs: 60_000 }), {
    message: /server\.heartbeatTimeoutMs \(60000\) must be below server\.unresponsiveRestartMs \(30000, its default\): a silent worker is flagged unresponsive/,
  });
  t.throws(server({ unresponsiveRestartMs: 2000, handoffTimeoutMs: 500 }), { message: /server\.unresponsiveRestartMs \(2000\) must be above server\.heartbeatTimeoutMs \(3000, its default\)/ });
  t.notThrows(server({ unresponsiveRestartMs: 3001, handoffTimeoutMs: 500 }));
  t.throws(server({ statsIntervalMs: 5000 }), { message: /server\.statsIntervalMs \(5000\) must be below server\.heartbeatTimeoutMs \(3000, its default\): a worker reports every statsIntervalMs/ });
  t.throws(server({ heartbeatTimeoutMs: 400 }), { message: /server\.heartbeatTimeoutMs \(400\) must be above server\.statsIntervalMs \(500, its default\)/ });
  // A port the file sets clashing with another's default; a log file smaller than the default longest line.
  t.throws(() => resolve({ ...base(), dashboard: { port: 8000 } }), { message: /dashboard\.port \(8000\) must differ from server\.port \(its default\)/ });
  t.throws(() => resolve({ ...base(), health: { port: 9000 } }), { message: /health\.port \(9000\) must differ from dashboard\.port \(its default\)/ });
  const logFile = base();
  logFile.versions.v1!.logFile = { path: 'v1.log', maxBytes: 4096 };
  t.throws(() => resolve(logFile), { message: /versions\.v1\.logFile\.maxBytes \(4096\) must be at least logs\.maxLineBytes \(16384, its default\)/ });
});
