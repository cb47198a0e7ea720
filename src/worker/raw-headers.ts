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
