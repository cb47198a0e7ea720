import { ConfigError } from '../config/load.js';
import { updateConfigFile } from '../config/update.js';
import type { Reconfigurer } from '../primary/reconfigure.js';
import type { Supervisor } from '../primary/supervisor.js';
import { promote, replaceWith, setWeights, type Edit } from '../config/edits.js';
import { abortRollout, pauseRollout, resumeRollout } from '../rollout/edits.js';
import type { ControlResult, Controls, RolloutAction } from './types.js';

/** The rollout edits the operator may ask for, the same ones `graycluster canary pause|resume|abort` writes. */
export const rolloutEdits: Record<RolloutAction, (now: number) => Edit> = {
  pause: (now) => pauseRollout(now),
  resume: (now) => resumeRollout(now),
  abort: (now) => abortRollout(now),
};

/**
 * Writes an edit to the config file exactly as the CLI does (locked, validated, atomic), then applies the file at
 * once rather than when the watcher notices. 400: invalid, nothing written; 409: written, but not applied.
 */
export async function applyEdit(reconfigurer: Reconfigurer, change: Edit): Promise<ControlResult> {
  try {
    const { changes } = await updateConfigFile(reconfigurer.current.file, change);
    await reconfigurer.reload();
    const error = reconfigurer.configError;
    return error ? { ok: false, status: 409, error } : { ok: true, changes };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, status: 400, error: error.message };
    throw error;
  }
}

/**
 * The operator's moves inside a running primary (what the dashboard calls). Config changes are written to the
 * file exactly as the CLI writes them, then applied at once rather than when the watcher notices.
 */
export function primaryControls(reconfigurer: Reconfigurer, supervisor: Supervisor): Controls {
  const edit = (change: Edit) => applyEdit(reconfigurer, change);

  const replace = async (versions: string[], reason: string): Promise<ControlResult> => {
    const changes: string[] = [];
    for (const version of versions) {
      const failure = await supervisor.replaceVersion(version, reason);
      if (failure) return { ok: false, status: 500, error: `${version}: ${failure}` };
      changes.push(`replaced every worker of ${version}, rolling`);
    }
    return { ok: true, changes };
  };

  return {
    setWeights: (weights) => edit(setWeights(weights)),
    promote: (version) => edit(promote(version)),
    async rollback() {
      const previous = reconfigurer.previous;
      if (!previous) return { ok: false, status: 409, error: 'no previously applied config to roll back to' };
      return edit(replaceWith(previous));
    },
    async restartWorker(workerId) {
      const replacing = supervisor.replaceWorker(workerId, 'restart requested');
      if (!replacing) return { ok: false, status: 404, error: `no serving worker "${workerId}"` };
      const failure = await replacing;
      return failure ? { ok: false, status: 500, error: failure } : { ok: true, changes: [`replaced worker ${workerId}, rolling`] };
    },
    rollout: (action) => edit(rolloutEdits[action](Date.now())),
    async reload(version) {
      const known = [...reconfigurer.current.versions.keys()];
      if (version !== undefined && !known.includes(version)) {
        return { ok: false, status: 400, error: `unknown version "${version}" (known: ${known.join(', ')})` };
      }
      return replace(version === undefined ? known : [version], 'reload requested');
    },
    async heapSnapshot(workerId) {
      const outcome = await supervisor.diagnostics.heapSnapshot(workerId);
      if (!outcome.ok) return outcome;
      return { ok: true, changes: [`wrote a heap snapshot of ${workerId} to ${outcome.file}`], ...(outcome.file ? { file: outcome.file } : {}) };
    },
    async inspect(workerId, open) {
      const outcome = await supervisor.diagnostics.inspector(workerId, open);
      if (!outcome.ok) return outcome;
      if (!open) return { ok: true, changes: [outcome.inspectorUrl ? `closed the inspector of ${workerId} (${outcome.inspectorUrl})` : `${workerId} had no inspector open`] };
      if (!outcome.inspectorUrl) return { ok: false, status: 500, error: `the inspector of ${workerId} did not open` };
      const url = outcome.inspectorUrl;
      const devtools = `devtools://devtools/bundled/js_app.html?experiments=true&v8only=true&ws=${url.slice('ws://'.length)}`;
      return { ok: true, changes: [`the inspector of ${workerId} listens at ${url}`, `open in Chrome: ${devtools}`], inspector: { url, devtools } };
    },
  };
}
