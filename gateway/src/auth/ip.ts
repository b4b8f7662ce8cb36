import { BlockList, isIP } from "node:net";

/** One parsed allowlist or TRUSTED_PROXIES entry: an address, or a subnet with its prefix length. */
export interface IpRule {
  address: string;
  family: "ipv4" | "ipv6";
  /** Absent for a single address. */
  prefix?: number;
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * An address as the gateway compares and reports it: IPv4-mapped IPv6
 * (`::ffff:10.0.0.1`, what a dual-stack socket reports for an IPv4 peer)
 * becomes plain IPv4, and an IPv6 zone (`%eth0`) is dropped.
 */
export function normalizeAddress(address: string): string {
  const zone = address.indexOf("%");
  const bare = zone === -1 ? address : address.slice(0, zone);
  const m = MAPPED_V4.exec(bare);
  return m ? m[1]! : bare;
}

/** Parses `10.0.0.1`, `10.0.0.0/8`, `2001:db8::1` or `2001:db8::/32`; undefined when it is neither. */
export function parseIpRule(text: string): IpRule | undefined {
  const value = text.trim();
  const slash = value.indexOf("/");
  // A single address is normalized; a subnet keeps its family, as its prefix length counts in it
  // (`::ffff:10.0.0.0/104` stays IPv6, and BlockList still matches IPv4 peers against it).
  const address = slash === -1 ? normalizeAddress(value) : value.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? "ipv4" : "ipv6";
  if (slash === -1) return { address, family };
  const prefixText = value.slice(slash + 1);
  const max = family === "ipv4" ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return undefined;
  return { address, family, prefix: Number(prefixText) };
}

/**
 * Compiles rules into a BlockList (used here as an allow list). Node's
 * BlockList matches an IPv4 rule for the IPv4-mapped IPv6 form of the
 * address too, and the other way round.
 */
export function compileIpRules(rules: readonly IpRule[]): BlockList {
  const list = new BlockList();
  for (const r of rules) {
    if (r.prefix === undefined) list.addAddress(r.address, r.family);
    else list.addSubnet(r.address, r.prefix, r.family);
  }
  return list;
}

/** True when `address` (any form) is inside `list`; false for anything that is not an IP address. */
export function ipInList(list: BlockList, address: string): boolean {
  const a = normalizeAddress(address);
  const version = isIP(a);
  if (version === 0) return false;
  return list.check(a, version === 4 ? "ipv4" : "ipv6");
}

/** One X-Forwarded-For entry → an address: drops a port (`1.2.3.4:80`, `[::1]:80`) and brackets. */
function forwardedAddress(entry: string): string | null {
  let e = entry.trim();
  if (e.startsWith("[")) {
    const close = e.indexOf("]");
    if (close === -1) return null;
    e = e.slice(1, close);
  } else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d+$/.test(e)) {
    e = e.slice(0, e.lastIndexOf(":"));
  }
  const a = normalizeAddress(e);
  return isIP(a) === 0 ? null : a;
}

/**
 * The client's address for IP rules. The socket's peer, unless that peer is a
 * trusted proxy (TRUSTED_PROXIES): then X-Forwarded-For is read from the
 * right, skipping trusted proxies, and the first address that is not one is
 * the client (the leftmost when all are). Entries left of it were written by
 * the client and are never believed. An unparseable entry reached this way
 * gives null: unknown, so refused by any allowlist (fail closed).
 */
export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trustedProxies: BlockList | null,
): string | null {
  if (socketAddress === undefined) return null;
  const peer = normalizeAddress(socketAddress);
  if (trustedProxies === null || forwardedFor === undefined || !ipInList(trustedProxies, peer)) return peer;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor;
  const entries = header.split(",");
  let client = peer;
  for (let i = entries.length - 1; i >= 0; i--) {
    const raw = entries[i]!;
    if (raw.trim() === "") continue;
    const a = forwardedAddress(raw);
    if (a === null) return null;
    client = a;
    if (!ipInList(trustedProxies, a)) return a;
  }
  return client;
}
