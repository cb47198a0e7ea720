/**
 * A worker's answers to an operator's diagnostic requests: a heap snapshot written while the worker keeps its
 * connections (the write blocks the event loop for its duration; requests wait, none is dropped), and the
 * inspector opened on a loopback port or closed.
 */
import inspector from 'node:inspector';
import v8 from 'node:v8';
import type { DiagnoseAnswer, DiagnoseRequest } from '../ipc/messages.js';

function failure(error: unknown): DiagnoseAnswer {
  const { code, message } = error as { code?: string; message?: string };
  return { ok: false, error: code && !message?.includes(code) ? `${code}: ${message}` : String(message ?? error) };
}

/** Carries out one request; never throws. */
export function diagnose(request: DiagnoseRequest): DiagnoseAnswer {
  try {
    switch (request.action) {
      case 'heap-snapshot':
        return { ok: true, file: v8.writeHeapSnapshot(request.file) };
      case 'inspect-open':
        // Already open (by an earlier request, or nodeArgs): report it rather than fail.
        if (inspector.url() === undefined) inspector.open(0, '127.0.0.1', false);
        return { ok: true, inspectorUrl: inspector.url() ?? '' };
      case 'inspect-close': {
        // Which one it closed, if any: an operator is told when there was none.
        const open = inspector.url();
        inspector.close();
        return open === undefined ? { ok: true } : { ok: true, inspectorUrl: open };
      }
    }
  } catch (error) {
    return failure(error);
  }
}
