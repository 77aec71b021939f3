/**
 * The client's address, and connections per address. Behind a proxy every
 * connection comes from the proxy's address, so the real one is taken from
 * `X-Forwarded-For` — but only when the connection comes from a proxy the
 * operator trusts (`EDGEWIRE_TRUSTED_PROXIES`): anyone can send that header.
 * The address is the rightmost one in the chain that is not itself a trusted
 * proxy (the leftmost entries are whatever the client claimed).
 */

type Range = { v6: boolean; bits: bigint; prefix: number };

function parseIPv4(ip: string): bigint | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function parseIPv6(ip: string): bigint | undefined {
  let s = ip.replace(/^\[|\]$/g, "").toLowerCase();
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  // An IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = parseIPv4(v4[1] as string);
    if (n === undefined) return undefined;
    s = `${s.slice(0, -(v4[1] as string).length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? (halves[0] as string).split(":") : [];
  const tail = halves.length === 2 && halves[1] ? (halves[1] as string).split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    n = (n << 16n) | BigInt(`0x${g}`);
  }
  return n;
}

/** An address as a number and its family; IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4. */
function parseIp(ip: string): { v6: boolean; bits: bigint } | undefined {
  const v4 = parseIPv4(ip);
  if (v4 !== undefined) return { v6: false, bits: v4 };
  const v6 = parseIPv6(ip);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { v6: false, bits: v6 & 0xffffffffn };
  return { v6: true, bits: v6 };
}

/** Parse `1.2.3.4`, `10.0.0.0/8`, `::1` or `fd00::/8`; throws on anything else. */
export function parseRange(raw: string): Range {
  const [ip, len] = raw.trim().split("/");
  const parsed = parseIp(ip ?? "");
  if (!parsed) throw new Error(`not an IP address or CIDR range: ${raw}`);
  const max = parsed.v6 ? 128 : 32;
  const prefix = len === undefined ? max : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`bad prefix length in ${raw}`);
  return { v6: parsed.v6, bits: parsed.bits, prefix };
}

function inRange(range: Range, ip: { v6: boolean; bits: bigint }): boolean {
  if (range.v6 !== ip.v6) return false;
  const shift = BigInt((range.v6 ? 128 : 32) - range.prefix);
  return range.bits >> shift === ip.bits >> shift;
}

/** Which addresses are proxies whose `X-Forwarded-For` is believed. */
export class TrustedProxies {
  readonly #ranges: Range[];

  /** trust these addresses and CIDR ranges (none by default) */
  constructor(ranges: readonly string[] = []) {
    this.#ranges = ranges.map(parseRange);
  }

  /** whether `address` is a trusted proxy */
  trusts(address: string | undefined): boolean {
    if (address === undefined || this.#ranges.length === 0) return false;
    const ip = parseIp(address);
    return ip !== undefined && this.#ranges.some((r) => inRange(r, ip));
  }

  /** the client's address: the peer's, or (from a trusted proxy) the rightmost untrusted hop of `forwardedFor` */
  client(peer: string | undefined, forwardedFor: string | undefined): string | undefined {
    if (!forwardedFor || !this.trusts(peer)) return peer;
    const hops = forwardedFor
      .split(",")
      .map((h) => h.trim())
      .filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i] as string;
      if (!this.trusts(hop)) return parseIp(hop) ? hop : peer;
    }
    return hops[0] ?? peer;
  }
}

/** Open connections per client address, bounded. */
export class AddressCounter {
  readonly #counts = new Map<string, number>();

  /** at most `limit` connections per address */
  constructor(readonly limit: number) {}

  /** count a new connection from `address`; false (and nothing counted) when it is at the limit */
  acquire(address: string | undefined): boolean {
    if (address === undefined) return true;
    const n = this.#counts.get(address) ?? 0;
    if (n >= this.limit) return false;
    this.#counts.set(address, n + 1);
    return true;
  }

  /** a connection from `address` ended */
  release(address: string | undefined): void {
    if (address === undefined) return;
    const n = (this.#counts.get(address) ?? 0) - 1;
    if (n <= 0) this.#counts.delete(address);
    else this.#counts.set(address, n);
  }

  /** connections open from `address` */
  count(address: string): number {
    return this.#counts.get(address) ?? 0;
  }
}
