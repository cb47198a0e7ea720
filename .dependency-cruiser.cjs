// The layers of src/ point down (see README, Development): `npm run lint:deps` fails on an import that runs
// back up, or on a circle. Bottom to top:
//   shared ← config ← routing, ipc ← worker
//   shared, config, routing, ipc ← primary ← control ← dashboard ← start.ts ← index.ts (the API) ← cli
// The dashboard's page script (dashboard/client) is served to browsers as it compiles: it may import only
// itself, plus types from elsewhere (`import type` vanishes from the output).
/** `layer` may import from src/ only what is in `allowed` (folder names). */
const onlyFrom = (layer, allowed, comment = `src/${layer} sits below everything but ${allowed.filter((name) => name !== layer).join(', ')}.`) => ({
  name: `${layer}-imports-only-${allowed.join('-')}`,
  severity: 'error',
  comment,
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(?!(${allowed.join('|')})/)` },
});

/** `layer` may import nothing from the folders in `above`, nor from src/start.ts (the wiring on top). */
const notFrom = (layer, above, comment = `src/${layer} sits below ${above.join(', ')} and start.ts.`) => ({
  name: `${layer}-not-up`,
  severity: 'error',
  comment,
  from: { path: `^src/${layer}/` },
  to: { path: [`^src/(${above.join('|')})/`, '^src/start\\.ts$'] },
});

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
    onlyFrom('shared', ['shared'], 'src/shared is the bottom layer.'),
    onlyFrom('config', ['shared', 'config']),
    onlyFrom('routing', ['shared', 'config', 'routing']),
    onlyFrom('ipc', ['shared', 'config', 'ipc']),
    onlyFrom('rollout', ['shared', 'config', 'ipc', 'rollout'], 'The canary judge is pure: numbers in, verdicts and config edits out.'),
    notFrom('worker', ['primary', 'rollout', 'control', 'dashboard', 'cli'], 'Every worker process loads src/worker: none of the primary side.'),
    notFrom('primary', ['worker', 'control', 'dashboard', 'cli']),
    notFrom('control', ['worker', 'dashboard', 'cli']),
    notFrom('dashboard', ['worker', 'cli']),
    {
      name: 'start-not-up',
      severity: 'error',
      comment: 'src/start.ts wires the layers together; only the CLI sits above it.',
      from: { path: '^src/start\\.ts$' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'index-not-up',
      severity: 'error',
      comment: 'src/index.ts is the programmatic API over start.ts; the CLI is built on it, not below it.',
      from: { path: '^src/index\\.ts$' },
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
