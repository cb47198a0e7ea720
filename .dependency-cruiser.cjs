// The layers of src/ point down (see README, Development): `npm run lint:deps` fails on an import that runs
// back up, or on a circle. Bottom to top:
//   shared ← config ← routing, ipc ← worker
//   shared, config, routing, ipc ← primary ← control ← dashboard ← start.ts ← cli
// The dashboard's page script (dashboard/client) is served to browsers as it compiles: it may import only
// itself, plus types from elsewhere (`import type` vanishes from the output).
/** Everything of ours in src outside the folders named (as path regexes). */
const outside = (...folders) => `^src/(?!(${folders.join('|')})/)`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A circle of imports has no bottom: split out what both sides need.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'shared-imports-nothing-of-ours',
      severity: 'error',
      comment: 'src/shared is the bottom layer.',
      from: { path: '^src/shared/' },
      to: { path: outside('shared') },
    },
    {
      name: 'config-imports-only-shared',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: outside('shared', 'config') },
    },
    {
      name: 'routing-imports-only-shared-and-config',
      severity: 'error',
      from: { path: '^src/routing/' },
      to: { path: outside('shared', 'config', 'routing') },
    },
    {
      name: 'ipc-imports-only-shared-and-config',
      severity: 'error',
      from: { path: '^src/ipc/' },
      to: { path: outside('shared', 'config', 'ipc') },
    },
    {
      name: 'worker-not-up',
      severity: 'error',
      comment: 'Every worker process loads src/worker: it must not pull in the primary, controls, dashboard or CLI.',
      from: { path: '^src/worker/' },
      to: { path: ['^src/(primary|control|dashboard|cli)/', '^src/start\\.ts$'] },
    },
    {
      name: 'primary-not-up',
      severity: 'error',
      from: { path: '^src/primary/' },
      to: { path: ['^src/(worker|control|dashboard|cli)/', '^src/start\\.ts$'] },
    },
    {
      name: 'control-not-up',
      severity: 'error',
      from: { path: '^src/control/' },
      to: { path: ['^src/(worker|dashboard|cli)/', '^src/start\\.ts$'] },
    },
    {
      name: 'dashboard-not-up',
      severity: 'error',
      from: { path: '^src/dashboard/' },
      to: { path: ['^src/(worker|cli)/', '^src/start\\.ts$'] },
    },
    {
      name: 'start-not-up',
      severity: 'error',
      comment: 'src/start.ts wires the layers together; only the CLI sits above it.',
      from: { path: '^src/start\\.ts$' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'dashboard-client-only-itself',
      severity: 'error',
      comment: 'The page script runs in the browser: code from elsewhere would not be there. Types are fine.',
      from: { path: '^src/dashboard/client/' },
      to: { path: '^src/(?!dashboard/client/)', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
