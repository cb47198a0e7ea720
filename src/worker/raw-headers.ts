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
 * A test of whether a raw header name, in whatever case it came, is one of `names` (lowercase). It runs on every
 * header of every request, so it compares the name's length first and lowercases only a name of a length among
 * them.
 */
export function headerNameIn(names: Iterable<string>): (name: string) => boolean {
  const lowercase = new Set(names);
  const lengths = new Set([...lowercase].map((name) => name.length));
  return (name) => lengths.has(name.length) && lowercase.has(name.toLowerCase());
}
