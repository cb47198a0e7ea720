/** How verdicts write their numbers, so every line reads the same: `5xx 4.1 % on v2 vs 0.2 % on v1 over 30 s`. */

export const count = (value: number): string => Math.round(value).toLocaleString('en-US');

export const percent = (fraction: number): string => `${(fraction * 100).toFixed(1)} %`;

export const milliseconds = (value: number): string => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;

export const megabytes = (bytes: number): string => `${Math.round(bytes / 1024 / 1024)} MB`;

export function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return seconds % 60 === 0 ? `${minutes} min` : `${minutes} min ${seconds % 60} s`;
}
