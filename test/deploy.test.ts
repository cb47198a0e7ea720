// The deployment examples (examples/deploy/) hold together: every Kubernetes object validates against the
// Kubernetes OpenAPI schemas, the probes, grace periods and stop timeouts match the config they run, that config
// loads with graycluster's own loader, and the Dockerfile keeps the lines its README promises. Docker is not
// needed: the image itself is built only where a Docker engine runs (skipped with a message elsewhere).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { readConfigFile, resolveConfig } from '../src/config/load.js';
import type { ResolvedConfig } from '../src/config/types.js';
import { root } from './helpers/config.js';
import { findExecutable } from './helpers/processes.js';

const deploy = path.join(root, 'examples/deploy');
const manifestFolder = path.join(deploy, 'k8s');
const configFile = path.join(deploy, 'graycluster.json');
/** Where the image puts the app (the repository's root here) and where its config is mounted, in the image. */
const imageApp = '/app';
const imageConfigFile = '/app/etc/graycluster.json';
const missingTools = 'the manifests are validated with the devDependencies kubernetes-models@^4.5.1 and yaml@^2.9.1: run npm install';

interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
  [key: string]: unknown;
}
interface Probe { httpGet?: { path?: string; port?: number | string } }
interface Container {
  name: string;
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] } } };
  resources?: { limits?: { memory?: string } };
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
}
interface PodTemplate {
  metadata?: { annotations?: Record<string, string> };
  spec: {
    terminationGracePeriodSeconds?: number;
    containers: Container[];
    volumes?: Array<{ name: string; configMap?: { name: string } }>;
  };
}

/** Loads an optional module by a name tsc does not resolve, so the build passes before it is installed. */
async function optionalImport(name: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(name)) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

async function parseManifests(): Promise<KubernetesObject[]> {
  const yaml = await optionalImport('yaml');
  if (!yaml) throw new Error(missingTools);
  const parseAllDocuments = yaml.parseAllDocuments as (text: string) => Array<{ errors: unknown[]; toJS(): unknown }>;
  const objects: KubernetesObject[] = [];
  for (const name of readdirSync(manifestFolder).filter((file) => file.endsWith('.yaml')).sort()) {
    for (const document of parseAllDocuments(readFileSync(path.join(manifestFolder, name), 'utf8'))) {
      if (document.errors.length > 0) throw new Error(`${name}: ${String(document.errors[0])}`);
      const object = document.toJS() as KubernetesObject | null;
      if (object !== null) objects.push(object);
    }
  }
  return objects;
}

/** Validates one object with the kubernetes-models class for its apiVersion and kind; throws the schema's message. */
async function validateObject(object: KubernetesObject): Promise<void> {
  const models = await optionalImport(`kubernetes-models/${object.apiVersion}`);
  if (!models) throw new Error(`${missingTools} (or kubernetes-models has no ${object.apiVersion})`);
  const Model = models[object.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (!Model) throw new Error(`kubernetes-models has no ${object.apiVersion} ${object.kind}`);
  new Model(object).validate();
}

function find<T>(objects: KubernetesObject[], kind: string): T & KubernetesObject {
  const found = objects.filter((object) => object.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} in ${manifestFolder}, found ${found.length}`);
  return found[0] as T & KubernetesObject;
}

function graycluster(template: PodTemplate): Container {
  const container = template.spec.containers.find(({ name }) => name === 'graycluster');
  if (!container) throw new Error('the Deployment has no container named graycluster');
  return container;
}

/** The config as the image runs it: the app at /app is this repository, so entries resolve into it. */
function imageConfig(raw = readConfigFile(configFile)): ResolvedConfig {
  return resolveConfig(path.join(root, path.relative(imageApp, imageConfigFile)), raw);
}

function portNumber(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find(({ name }) => name === port)?.containerPort;
}

test('every Kubernetes manifest validates against the Kubernetes OpenAPI schemas', async (t) => {
  const objects = await parseManifests();
  t.deepEqual(objects.map(({ kind }) => kind).sort(), ['ConfigMap', 'Deployment', 'Service']);
  for (const object of objects) {
    await t.notThrowsAsync(validateObject(object), `${object.kind} ${object.metadata?.name ?? ''}`);
  }
  const deployment = find<{ spec: { template: PodTemplate } }>(objects, 'Deployment');
  const wrongType = structuredClone(deployment);
  (wrongType.spec.template.spec as unknown as Record<string, unknown>).terminationGracePeriodSeconds = 'forty';
  await t.throwsAsync(validateObject(wrongType), undefined, 'the validator refuses a wrong type, so a pass means something');
});

test('the mounted config loads with graycluster\'s loader, and the ConfigMap holds exactly that file', async (t) => {
  const config = imageConfig();
  for (const version of config.versions.values()) {
    // resolveConfig does not check that entries exist (a start does); in the image they resolve under /app.
    t.true(existsSync(version.entry), `versions.${version.name}.entry resolves in the image to ${path.join(imageApp, path.relative(root, version.entry))}`);
  }
  const configMap = find<{ data: Record<string, string> }>(await parseManifests(), 'ConfigMap');
  const mounted = configMap.data[path.basename(imageConfigFile)];
  t.truthy(mounted, `the ConfigMap has the key ${path.basename(imageConfigFile)}`);
  t.deepEqual(JSON.parse(mounted ?? 'null'), JSON.parse(readFileSync(configFile, 'utf8')));
});

test('the ConfigMap is mounted as a folder, so its ..data symlink swap reaches the running primary', async (t) => {
  const objects = await parseManifests();
  const template = find<{ spec: { template: PodTemplate } }>(objects, 'Deployment').spec.template;
  const configMapName = find<KubernetesObject>(objects, 'ConfigMap').metadata?.name;
  const volume = template.spec.volumes?.find(({ configMap }) => configMap?.name === configMapName);
  t.truthy(volume, 'a volume from the ConfigMap');
  const mount = graycluster(template).volumeMounts?.find(({ name }) => name === volume?.name);
  t.is(mount?.mountPath, path.dirname(imageConfigFile));
  t.is(mount?.subPath, undefined, 'a subPath mount is never updated');
  const env = graycluster(template).env ?? [];
  t.is(env.find(({ name }) => name === 'GRAYCLUSTER_CONFIG')?.value, imageConfigFile);
  t.truthy(env.find(({ name }) => name === 'GRAYCLUSTER_TOKEN')?.valueFrom?.secretKeyRef, 'the token comes from a Secret');
});

test('probes use the health listener\'s /livez and /readyz, and the pod outlives preStop plus the drain', async (t) => {
  const config = imageConfig();
  const template = find<{ spec: { template: PodTemplate } }>(await parseManifests(), 'Deployment').spec.template;
  const container = graycluster(template);
  t.not(config.health.port, null, 'health.port is set');
  for (const [probe, expected] of [['livenessProbe', '/livez'], ['readinessProbe', '/readyz'], ['startupProbe', '/livez']] as const) {
    const httpGet = container[probe]?.httpGet;
    t.is(httpGet?.path, expected, probe);
    t.is(portNumber(container, httpGet?.port), config.health.port ?? undefined, `${probe} port`);
  }
  const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
  const preStopSeconds = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
  const grace = template.spec.terminationGracePeriodSeconds ?? 30;
  t.true(grace * 1000 > preStopSeconds * 1000 + config.server.drainTimeoutMs,
    `terminationGracePeriodSeconds ${grace} > preStop ${preStopSeconds} s + drainTimeoutMs ${config.server.drainTimeoutMs}`);
});

test('Prometheus scrapes /metrics on the dashboard port, which the config serves without the token', async (t) => {
  const config = imageConfig();
  const template = find<{ spec: { template: PodTemplate } }>(await parseManifests(), 'Deployment').spec.template;
  const annotations = template.metadata?.annotations ?? {};
  t.is(annotations['prometheus.io/scrape'], 'true');
  t.is(annotations['prometheus.io/path'], '/metrics');
  t.is(Number(annotations['prometheus.io/port']), config.dashboard.port);
  t.true(config.dashboard.metricsPublic, 'annotation scraping sends no token');
  t.not(config.dashboard.host, '127.0.0.1', 'Prometheus scrapes the pod address, not its loopback');
});

test('the memory limit holds every worker at its hard limit, with room for the primary', async (t) => {
  const config = imageConfig();
  const container = graycluster(find<{ spec: { template: PodTemplate } }>(await parseManifests(), 'Deployment').spec.template);
  const limit = /^(\d+)(Mi|Gi)$/.exec(container.resources?.limits?.memory ?? '');
  t.truthy(limit, 'a memory limit in Mi or Gi');
  const limitMB = Number(limit?.[1]) * (limit?.[2] === 'Gi' ? 1024 : 1);
  let workersMB = 0;
  for (const version of config.versions.values()) {
    t.not(version.maxMemoryMB, null, `versions.${version.name}.maxMemoryMB is set`);
    workersMB += version.workers * (version.maxMemoryHardMB ?? 2 * (version.maxMemoryMB ?? 0));
  }
  const primaryMB = 128;
  t.true(workersMB + primaryMB <= limitMB, `${workersMB} MB of workers + ${primaryMB} MB for the primary fit ${limitMB} MB`);
});

test('the systemd unit stops gracefully, after the drain, and keeps the hardening that cluster IPC allows', (t) => {
  const config = imageConfig();
  const unit = parseUnit(readFileSync(path.join(deploy, 'systemd/graycluster.service'), 'utf8'));
  t.is(unit.get('Type'), 'simple');
  t.is(unit.get('Restart'), 'on-failure');
  t.true(seconds(unit.get('RestartSec')) >= 1, 'RestartSec of a second or more');
  t.is(unit.get('KillSignal'), 'SIGTERM');
  t.is(unit.get('KillMode'), 'mixed', 'SIGTERM to the primary alone: it drains the workers itself');
  t.true(seconds(unit.get('TimeoutStopSec')) * 1000 > config.server.drainTimeoutMs,
    `TimeoutStopSec ${unit.get('TimeoutStopSec')} > drainTimeoutMs ${config.server.drainTimeoutMs}`);
  t.truthy(unit.get('User'));
  t.not(unit.get('User'), 'root');
  t.truthy(unit.get('EnvironmentFile'));
  t.regex(unit.get('RestrictAddressFamilies') ?? '', /\bAF_UNIX\b/, 'workers talk to the primary over Unix sockets');
  t.not(unit.get('MemoryDenyWriteExecute'), 'yes', 'V8\'s JIT writes code');
  t.not(unit.get('PrivateNetwork'), 'yes');
  t.is(unit.get('NoNewPrivileges'), 'yes');
  t.is(unit.get('ProtectSystem'), 'strict');
});

test('the Dockerfile runs as a non-root user, installs production dependencies only and stops on SIGTERM', (t) => {
  const config = imageConfig();
  const lines = readFileSync(path.join(deploy, 'Dockerfile'), 'utf8').split('\n').filter((line) => !line.startsWith('#'));
  const final = lines.slice(lines.findLastIndex((line) => line.startsWith('FROM ')));
  const instruction = (name: string) => final.filter((line) => line.startsWith(`${name} `));
  t.truthy(instruction('RUN').find((line) => line.includes('npm ci --omit=dev')), 'npm ci --omit=dev in the final stage');
  const user = instruction('USER').at(-1)?.slice(5).trim();
  t.truthy(user);
  t.notRegex(user ?? 'root', /^(root|0)(:|$)/);
  t.deepEqual(instruction('STOPSIGNAL'), ['STOPSIGNAL SIGTERM']);
  const exposed = instruction('EXPOSE').flatMap((line) => line.slice(7).trim().split(/\s+/).map(Number));
  for (const port of [config.server.port, config.dashboard.port, config.health.port]) t.true(exposed.includes(port ?? -1), `EXPOSE ${port}`);
  const entrypoint = instruction('ENTRYPOINT').at(-1) ?? '';
  t.regex(entrypoint, /^ENTRYPOINT \[/, 'exec form: no shell between the signal and graycluster');
  t.regex(entrypoint, /"\/usr\/bin\/tini", "--"/, 'tini forwards SIGTERM to graycluster only (no -g)');
  t.regex(entrypoint, /"bin\/graycluster\.js", "start"/);
  t.true(instruction('ENV').some((line) => line.includes(`GRAYCLUSTER_CONFIG=${imageConfigFile}`)));
  t.true(instruction('COPY').some((line) => line.endsWith(` ${path.relative(imageApp, imageConfigFile)}`)), 'the config is copied where the ConfigMap mounts');
  t.true(existsSync(path.join(deploy, 'Dockerfile.dockerignore')), 'BuildKit\'s ignore file beside the Dockerfile');
});

/** Whether a Docker engine answers here (the client alone is not enough to build). */
function dockerEngine(): string | null {
  const docker = findExecutable('docker');
  if (!docker) return null;
  return spawnSync(docker, ['info'], { stdio: 'ignore', timeout: 20_000 }).status === 0 ? docker : null;
}

const docker = dockerEngine();
if (!docker) console.log('deploy.test.ts: the Docker image build is skipped: no Docker engine answers `docker info` here');
(docker ? test : test.skip)('the Dockerfile builds an image (where a Docker engine runs)', (t) => {
  t.timeout(16 * 60_000);
  const tag = `graycluster-deploy-test:${process.pid}`;
  const build = spawnSync(docker ?? 'docker', ['build', '-f', path.join(deploy, 'Dockerfile'), '-t', tag, root], { encoding: 'utf8', timeout: 15 * 60_000 });
  t.is(build.status, 0, `docker build failed:\n${build.stderr.slice(-4000)}`);
  spawnSync(docker ?? 'docker', ['image', 'rm', '-f', tag], { stdio: 'ignore', timeout: 60_000 });
});

/** The [Service] section's settings (the last value of a key wins, as in systemd). */
function parseUnit(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  let section = '';
  for (const line of text.split('\n').map((raw) => raw.trim())) {
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) section = line;
    else if (section === '[Service]') {
      const equals = line.indexOf('=');
      settings.set(line.slice(0, equals), line.slice(equals + 1));
    }
  }
  return settings;
}

/** A systemd time span of seconds or minutes ("30", "30s", "2min"); NaN for anything else. */
function seconds(span: string | undefined): number {
  const match = /^(\d+)\s*(s|sec|min)?$/.exec(span ?? '');
  if (!match) return Number.NaN;
  return Number(match[1]) * (match[2] === 'min' ? 60 : 1);
}
