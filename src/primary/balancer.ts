/** What the balancer knows of one worker of a version, in pool order. */
export interface Candidate {
  /** Ready, responsive and not holding an overdue handoff. */
  pickable: boolean;
  /** Requests it is running now, as it last said. */
  inFlight: number;
  /** Connections it holds plus those on their way: what "least loaded" compares. */
  load: number;
  /** It can take one more connection now (nothing unacknowledged, or room in its queue). */
  hasRoom: boolean;
}

export type PickResult = { index: number } | { index: undefined; why: 'saturated' | 'unavailable' };

/**
 * The least-loaded pickable worker under its in-flight limit and with room for a connection, starting the
 * scan at `start` so that ties go round-robin. 'unavailable' when no worker is pickable at all (the version
 * falls back to the default), 'saturated' when every pickable one is full.
 */
export function pickWorker(candidates: readonly Candidate[], maxInFlight: number, start: number): PickResult {
  let best: { index: number; load: number; turn: number } | undefined;
  let anyPickable = false;
  for (const [index, candidate] of candidates.entries()) {
    if (!candidate.pickable) continue;
    anyPickable = true;
    if (candidate.inFlight >= maxInFlight || !candidate.hasRoom) continue;
    const turn = (index - start % candidates.length + candidates.length) % candidates.length;  // 0 at `start`
    if (best === undefined || candidate.load < best.load || (candidate.load === best.load && turn < best.turn)) best = { index, load: candidate.load, turn };
  }
  return best !== undefined ? { index: best.index } : { index: undefined, why: anyPickable ? 'saturated' : 'unavailable' };
}
