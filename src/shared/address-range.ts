import net from 'node:net';

/** An IP address or CIDR range, as written in `server.trustProxy`: "10.0.0.5", "10.0.0.0/8", "::1", "fd00::/8". */
export interface AddressRange {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** Parses one address or CIDR range; undefined when it is neither. */
export function parseAddressRange(text: string): AddressRange | undefined {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = net.isIP(address);
  if (version === 0) return undefined;
  const bits = version === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(bits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return undefined;
  return { address, prefix: Number(prefixText), family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Answers whether an address is one of the ranges. */
export type AddressMatcher = (address: string | undefined) => boolean;

/** Builds a matcher over ranges already validated with parseAddressRange (invalid ones are skipped). */
export function addressMatcher(ranges: readonly string[]): AddressMatcher {
  const list = new net.BlockList();
  for (const text of ranges) {
    const range = parseAddressRange(text);
    if (range) list.addSubnet(range.address, range.prefix, range.family);
  }
  // BlockList matches an IPv4 client a dual-stack listener reports as ::ffff:a.b.c.d against IPv4 ranges too.
  return (address) => {
    if (!address) return false;
    const version = net.isIP(address);
    return version !== 0 && list.check(address, version === 4 ? 'ipv4' : 'ipv6');
  };
}
