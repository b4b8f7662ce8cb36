import { BlockList, isIP } from "node:net";
import { ConfigError, describeValue } from "./config-helpers.js";

// Client addresses behind proxies, for both services: the gateway's IP allowlists and
// brute-force buckets, the control plane's admin brute-force buckets and audit actors.

/** One parsed allowlist or TRUSTED_PROXIES entry: an address, or a subnet with its prefix length. */
export interface IpRule {
  address: string;
  family: "ipv4" | "ipv6";
  /** Absent for a single address. */
  prefix?: number;
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * An address as the services compare and report it: IPv4-mapped IPv6
 * (`::ffff:10.0.0.1`, what a dual-stack socket reports for an IPv4 peer)
 * becomes plain IPv4, and an IPv6 zone (`%eth0`) is dropped.
 */
export function normalizeAddress(address: string): string {
  const zone = address.indexOf("%");
  const bare = zone === -1 ? address : address.slice(0, zone);
  const m = MAPPED_V4.exec(bare);
  if (m) return m[1]!;
  // Other spellings of an IPv4-mapped address (`::ffff:7f00:1`, `0:0:0:0:0:ffff:7f00:1`,
  // `::ffff:0:127.0.0.1` is not one): the same peer must be one bucket and match one rule.
  return bare.includes(":") && /ffff/i.test(bare) ? (mappedHexToV4(bare) ?? bare) : bare;
}

/** The IPv4 address of an IPv4-mapped IPv6 address written in any IPv6 form, or null. */
function mappedHexToV4(address: string): string | null {
  if (isIP(address) !== 6) return null;
  const groups = expandV6(address);
  if (groups === null || groups.slice(0, 5).some((g) => g !== 0) || groups[5] !== 0xffff) return null;
  return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
}

/** The eight 16-bit groups of a valid IPv6 address (a trailing dotted IPv4 part included). */
function expandV6(address: string): number[] | null {
  let text = address.toLowerCase();
  const dotted = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...right].map((g) =>
    Number.parseInt(g, 16),
  );
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

/**
 * The bucket a per-client limit counts an address in: an IPv4 address (mapped
 * spellings included) as itself, an IPv6 one by its /64, the block one host or
 * site usually holds.
 */
export function addressBucket(address: string): string {
  const bare = normalizeAddress(address);
  if (isIP(bare) !== 6) return bare;
  const groups = expandV6(bare);
  return groups
    ? `${groups
        .slice(0, 4)
        .map((g) => g.toString(16))
        .join(":")}::/64`
    : bare;
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
 * The brute-force bucket of a request whose forwarded address could not be parsed (clientAddress
 * gave null): the unparseable entry as the nearest trusted hop reported it, so different
 * clients behind proxies that write `unknown` or obfuscated names do not all share one bucket
 * (and lock each other out). Only trusted hops' entries are reached this way, so a client
 * cannot mint new buckets at will.
 */
export function unparseableForwardedBucket(
  socketAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
): string {
  const peer = socketAddress === undefined ? "unknown" : normalizeAddress(socketAddress);
  const header = forwardedFor === undefined ? "" : Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor;
  const entries = header.split(",");
  let hop = peer;
  for (let i = entries.length - 1; i >= 0; i--) {
    const raw = entries[i]!.trim();
    if (raw === "") continue;
    const a = forwardedAddress(raw);
    if (a === null) return `unparseable:${hop}:${raw.slice(0, 64)}`;
    hop = a;
  }
  return `unparseable:${peer}`;
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

/** TRUSTED_PROXIES: comma-separated IPs and CIDRs, each checked; unset or empty: none. */
export function parseTrustedProxies(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const entries = raw
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  for (const e of entries) trustedProxyRule(e);
  return entries;
}

function trustedProxyRule(entry: string): IpRule {
  const rule = parseIpRule(entry);
  if (!rule) {
    throw new ConfigError(
      `TRUSTED_PROXIES must be a comma-separated list of IP addresses and CIDRs such as 10.0.0.0/8,192.168.1.1,fd00::/8; one entry (${describeValue(entry)}) is neither`,
    );
  }
  return rule;
}

/**
 * The trusted proxies as the request path matches them; null when there are
 * none (X-Forwarded-For is never believed). Validates each entry too, for
 * configs built in code rather than from the environment.
 */
export function compileTrustedProxies(entries: readonly string[]): BlockList | null {
  const rules = entries.filter((e) => e.trim() !== "").map(trustedProxyRule);
  return rules.length === 0 ? null : compileIpRules(rules);
}
