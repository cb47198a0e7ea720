/** True for a JSON object (not null, not an array): a parsed body, a config section, an API answer. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
