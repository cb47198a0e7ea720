/**
 * The headers of a `rawHeaders` array (`[name, value, name, value, …]`) as `[name, value, index]`, `index` being
 * where the name stands in the array.
 */
export function* rawHeaderPairs(rawHeaders: readonly string[]): Generator<[name: string, value: string, index: number]> {
  let name = '';
  for (const [index, item] of rawHeaders.entries()) {
    if (index % 2 === 0) name = item;
    else yield [name, item, index - 1];
  }
}

/**
 * A lookup of a raw header name, in whatever case it came, among `names` (lowercase): the name in lowercase when it
 * is one of them, else undefined. It runs on every header of every request, so it compares the name's length first
 * and lowercases only a name of a length among them, once.
 */
export function headerNameIn(names: Iterable<string>): (name: string) => string | undefined {
  const lowercase = new Set(names);
  const lengths = new Set([...lowercase].map((name) => name.length));
  return (name) => {
    if (!lengths.has(name.length)) return undefined;
    const lower = name.toLowerCase();
    return lowercase.has(lower) ? lower : undefined;
  };
}
