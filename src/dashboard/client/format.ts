// How numbers read on the page: pure functions of their input.

export function megabytes(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GB` : `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

export function duration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor(seconds / 60) % 60}m`;
  return `${Math.floor(seconds / 86_400)}d ${Math.floor(seconds / 3600) % 24}h`;
}

export function milliseconds(ms: number | null): string {
  if (ms === null) return '–';
  if (ms >= 10_000) return '≥10 s';
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export function clockTime(time: number): string {
  const date = new Date(time);
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
}

export function percent(share: number | null | undefined): string {
  if (share === null || share === undefined) return '–';
  return `${(share * 100).toFixed(share > 0 && share < 0.1 ? 1 : 0)}%`;
}

export function perSecond(rate: number | undefined): string {
  if (rate === undefined) return '–';
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
}

/** CPU as a percent of one core; a dash until the primary has sampled it twice. */
export function cpuPercent(value: number | null | undefined): string {
  if (value === null || value === undefined) return '–';
  return `${value.toFixed(value < 10 ? 1 : 0)}%`;
}
