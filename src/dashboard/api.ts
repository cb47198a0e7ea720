import type { ControlResult, Controls, RolloutAction } from '../control/types.js';
import { weightProblem } from '../config/edits.js';
import { isRecord } from '../shared/is-record.js';

/** One operator's move, read from a POST: which Controls method, with what. */
export type ControlCall = (controls: Controls) => Promise<ControlResult>;

/** Why a POST cannot become a call: 400 names the bad field, 404 an unknown endpoint. */
export interface Rejection {
  status: 400 | 404;
  error: string;
}

/** Largest request body the API reads. */
export const maxBodyBytes = 16 * 1024;

function versionField(body: Record<string, unknown>, required: boolean): string | undefined | Rejection {
  const version = body.version;
  if (version === undefined && !required) return undefined;
  if (typeof version !== 'string' || version === '') return { status: 400, error: `version must be a version name (a non-empty string)${required ? '' : ', or left out'}` };
  return version;
}

const workerEndpoint = /^\/api\/workers\/([^/]+)\/(restart|heap-snapshot|inspect)$/;
const rolloutEndpoint = /^\/api\/rollout\/(pause|resume|abort)$/;
/** The control endpoints at fixed paths, with the fields each one's body may have. */
const fixedEndpoints: Record<string, string[]> = { '/api/weights': ['weights'], '/api/promote': ['version'], '/api/reload': ['version'], '/api/rollback': [] };

/** True for a path that names a control endpoint (POST only), so another one gets 404 whatever its method. */
export function isControlEndpoint(pathname: string): boolean {
  return workerEndpoint.test(pathname) || rolloutEndpoint.test(pathname) || Object.hasOwn(fixedEndpoints, pathname);
}

/**
 * Turns `POST <pathname>` with its parsed JSON body into a Controls call. Shapes are checked here; whether a
 * version or worker exists is the Controls' business, so the CLI and the page get the same answer.
 *
 *   POST /api/weights               { "weights": { "v1": 90, "v2": 10 } }
 *   POST /api/promote               { "version": "v2" }
 *   POST /api/rollback              {}
 *   POST /api/reload                { "version": "v2" }  (or {} for every version)
 *   POST /api/workers/<id>/restart  {}
 *   POST /api/workers/<id>/heap-snapshot  {}
 *   POST /api/workers/<id>/inspect  {}  (or {"close": true})
 *   POST /api/rollout/pause         {}  (also resume, abort)
 */
export function parseControl(pathname: string, body: unknown): ControlCall | Rejection {
  const [, encodedWorkerId, workerAction] = workerEndpoint.exec(pathname) ?? [];
  const rollout = rolloutEndpoint.exec(pathname);
  if (!isControlEndpoint(pathname)) return { status: 404, error: `no such endpoint: POST ${pathname}` };
  if (!isRecord(body)) return { status: 400, error: 'the body must be a JSON object' };
  // A field the endpoint does not read is refused, not ignored: a misspelt one would otherwise do nothing, silently.
  const fields = workerAction === 'inspect' ? ['close'] : encodedWorkerId !== undefined || rollout ? [] : fixedEndpoints[pathname] ?? [];
  const unknown = Object.keys(body).find((field) => !fields.includes(field));
  if (unknown !== undefined) {
    return { status: 400, error: `unknown field ${JSON.stringify(unknown)}: ${fields.length === 0 ? 'this endpoint takes an empty body, {}' : `this endpoint takes ${fields.join(', ')}`}` };
  }

  if (encodedWorkerId !== undefined) {
    let workerId: string;
    try {
      workerId = decodeURIComponent(encodedWorkerId);
    } catch {
      return { status: 400, error: 'worker id in the path is not valid percent-encoding' };
    }
    if (workerAction === 'heap-snapshot') return (controls) => controls.heapSnapshot(workerId);
    if (workerAction === 'inspect') {
      const close = body.close;
      if (close !== undefined && typeof close !== 'boolean') return { status: 400, error: 'close must be true or false, or left out' };
      return (controls) => controls.inspect(workerId, close !== true);
    }
    return (controls) => controls.restartWorker(workerId);
  }
  if (rollout) {
    const action = rollout[1] as RolloutAction;
    return (controls) => controls.rollout(action);
  }
  switch (pathname) {
    case '/api/weights': {
      const weights = body.weights;
      if (!isRecord(weights) || Object.keys(weights).length === 0) {
        return { status: 400, error: 'weights must be an object of version names to numbers, e.g. {"weights":{"v1":90,"v2":10}}' };
      }
      for (const [version, weight] of Object.entries(weights)) {
        const problem = weightProblem(`weights.${version}`, weight);
        if (problem) return { status: 400, error: problem };
      }
      const checked = weights as Record<string, number>;
      return (controls) => controls.setWeights(checked);
    }
    case '/api/promote': {
      const version = versionField(body, true);
      if (typeof version !== 'string') return version as Rejection;
      return (controls) => controls.promote(version);
    }
    case '/api/reload': {
      const version = versionField(body, false);
      if (typeof version === 'object') return version;
      return (controls) => controls.reload(version);
    }
    default:
      return (controls) => controls.rollback();
  }
}
