/**
 * Where a notification may be sent. A rule's target URL is chosen by whoever holds the admin
 * token or console session, and the Worker then POSTs deal data to it and reports the answer's
 * status in the console: refusing internal addresses keeps that from becoming a way to reach (or
 * probe) what is not on the public internet, or to make the Worker call itself.
 *
 * Refused, at rule creation and again before every delivery (`targetProblem`):
 * - anything but https (http only for the local-dev allow-list below), user names or passwords;
 * - IPv4 loopback, private, CGNAT (100.64/10), link-local (incl. 169.254.169.254, the cloud
 *   metadata address), "this network", multicast, reserved, benchmarking and documentation
 *   ranges, in any spelling the URL parser accepts (decimal 2130706433, hex 0x7f000001 or
 *   0x7f.0.0.1, octal 0177.0.0.1, short 127.1: the WHATWG parser turns each into 127.0.0.1);
 * - IPv6 unspecified, loopback, IPv4-mapped/compatible (::ffff:127.0.0.1 is 127.0.0.1), NAT64
 *   and 6to4 addresses of a refused IPv4 address, unique-local fc00::/7 (incl. fd00:ec2::254, the
 *   AWS metadata address), link-local fe80::/10, site-local, multicast, documentation, Teredo;
 * - names that are not public DNS names: localhost and *.localhost, *.local, *.internal (incl.
 *   metadata.google.internal), *.home.arpa, *.arpa, single-label names, wildcard-DNS services
 *   that answer a private address for any name (nip.io, sslip.io, …);
 * - this Worker's own host (PUBLIC_URL).
 *
 * After DNS: a Worker cannot resolve a name before `fetch`, so a public name whose record points
 * at a private address is not caught here. Such a fetch leaves from Cloudflare's network, where
 * this Worker has no private network behind it (no VPC or Tunnel binding), so it reaches nothing
 * of this deployment; redirects are never followed (`redirect: "manual"`), so a public receiver
 * cannot bounce the delivery to an internal URL either.
 */
import type { Config } from "../config.ts";

/** Hosts a local-dev Worker may also deliver to (loopback receivers, plain http). */
export interface TargetPolicy {
  /** This Worker's own hostname (from PUBLIC_URL), lower case. */
  ownHost: string;
  /** `host` or `host:port` entries allowed despite the rules above; empty outside local dev. */
  devHosts: ReadonlySet<string>;
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * The policy for `config`. `NOTIFY_DEV_TARGET_HOSTS` (comma-separated `host[:port]`) counts only
 * when PUBLIC_URL is plain http on a loopback host, i.e. under `wrangler dev`; deployed, it is ignored.
 */
export function targetPolicy(config: Pick<Config, "PUBLIC_URL" | "NOTIFY_DEV_TARGET_HOSTS">): TargetPolicy {
  const own = new URL(config.PUBLIC_URL);
  const localDev = own.protocol === "http:" && LOOPBACK_NAMES.has(own.hostname);
  const listed = (config.NOTIFY_DEV_TARGET_HOSTS ?? "").split(",").map((h) => h.trim().toLowerCase());
  const devHosts = new Set(localDev ? listed.filter(Boolean) : []);
  return { ownHost: own.hostname.toLowerCase(), devHosts };
}

/** Why an IPv4 address (4 bytes) is refused, or null for a public unicast address. */
export function ipv4Problem(b: readonly number[]): string | null {
  const [a = 0, c = 0, d = 0, e = 0] = b;
  const ip = `${a}.${c}.${d}.${e}`;
  if (a === 169 && c === 254 && d === 169 && e === 254) return `${ip} is the cloud metadata address`;
  if (a === 0) return `${ip} is in 0.0.0.0/8 ("this network")`;
  if (a === 10) return `${ip} is a private address (10.0.0.0/8)`;
  if (a === 100 && c >= 64 && c <= 127) return `${ip} is a carrier-grade NAT address (100.64.0.0/10)`;
  if (a === 127) return `${ip} is a loopback address (127.0.0.0/8)`;
  if (a === 169 && c === 254) return `${ip} is a link-local address (169.254.0.0/16)`;
  if (a === 172 && c >= 16 && c <= 31) return `${ip} is a private address (172.16.0.0/12)`;
  if (a === 192 && c === 0 && d === 0) return `${ip} is an IETF protocol address (192.0.0.0/24)`;
  if (a === 192 && c === 0 && d === 2) return `${ip} is a documentation address (192.0.2.0/24)`;
  if (a === 192 && c === 88 && d === 99) return `${ip} is a 6to4 relay address (192.88.99.0/24)`;
  if (a === 192 && c === 168) return `${ip} is a private address (192.168.0.0/16)`;
  if (a === 198 && (c === 18 || c === 19)) return `${ip} is a benchmarking address (198.18.0.0/15)`;
  if (a === 198 && c === 51 && d === 100) return `${ip} is a documentation address (198.51.100.0/24)`;
  if (a === 203 && c === 0 && d === 113) return `${ip} is a documentation address (203.0.113.0/24)`;
  if (a >= 224 && a <= 239) return `${ip} is a multicast address (224.0.0.0/4)`;
  if (a >= 240) return `${ip} is a reserved address (240.0.0.0/4)`;
  return null;
}

/** The 16 bytes of an IPv6 address in URL-hostname form (`[…]`), or null if it does not parse. */
export function parseIpv6(host: string): number[] | null {
  const inner = host.replace(/^\[/, "").replace(/\]$/, "");
  if (inner.includes("%")) return null;
  let text = inner;
  const tail: number[] = [];
  const dotted = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(inner);
  if (dotted) {
    const parts = (dotted[2] ?? "").split(".").map(Number);
    if (parts.some((p) => p > 255)) return null;
    tail.push(...parts);
    text = `${dotted[1]}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string | undefined) => (s ? s.split(":") : []);
  const head = groups(halves[0]);
  const rest = groups(halves[1]);
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  if (all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return null;
  const bytes = all.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** Why an IPv6 address (16 bytes) is refused, or null for a public unicast address. */
export function ipv6Problem(b: readonly number[]): string | null {
  const at = (i: number) => b[i] ?? 0;
  const word = (i: number) => (at(2 * i) << 8) | at(2 * i + 1);
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4 = (from: number) => ipv4Problem(b.slice(from, from + 4));
  if (zero(0, 16)) return "[::] is the unspecified address";
  if (zero(0, 15) && at(15) === 1) return "[::1] is the loopback address";
  if (zero(0, 10) && word(5) === 0xffff) return `IPv4-mapped address: ${v4(12) ?? "use the IPv4 address"}`;
  if (zero(0, 12)) return `IPv4-compatible address (::/96): ${v4(12) ?? "deprecated, use the IPv4 address"}`;
  const nat64 = word(0) === 0x64 && word(1) === 0xff9b;
  if (nat64 && zero(4, 12)) return `NAT64 address: ${v4(12) ?? "use the IPv4 address"}`;
  if (nat64 && word(2) === 1) return "local-use NAT64 address (64:ff9b:1::/48)";
  if (at(0) === 0) return "reserved IPv6 address (::/8)";
  if (word(0) === 0x100 && zero(2, 8)) return "discard-only address (100::/64)";
  if (word(0) === 0x2001 && word(1) === 0) return "Teredo address (2001::/32)";
  if (word(0) === 0x2001 && word(1) === 0xdb8) return "documentation address (2001:db8::/32)";
  if (word(0) === 0x2002) {
    const inner = v4(2);
    if (inner) return `6to4 address: ${inner}`;
  }
  if ((at(0) & 0xfe) === 0xfc) return "unique-local address (fc00::/7)";
  if (at(0) === 0xfe && (at(1) & 0xc0) === 0x80) return "link-local address (fe80::/10)";
  if (at(0) === 0xfe && (at(1) & 0xc0) === 0xc0) return "site-local address (fec0::/10)";
  if (at(0) === 0xff) return "multicast address (ff00::/8)";
  return null;
}

/** Names that are not (or do not stay) public DNS names. */
const PRIVATE_SUFFIXES = ["localhost", "local", "internal", "home.arpa", "arpa", "localdomain", "intranet", "lan"];
/** Wildcard-DNS services answering any address spelled in the name (127.0.0.1.nip.io → 127.0.0.1). */
const WILDCARD_DNS = ["nip.io", "sslip.io", "xip.io", "localtest.me", "lvh.me"];

function hostProblem(host: string): string | null {
  const name = host.replace(/\.$/, "");
  if (name.startsWith("[")) {
    const bytes = parseIpv6(name);
    return bytes ? ipv6Problem(bytes) : `${host} is not an IPv6 address`;
  }
  const dotted = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  if (dotted) {
    const bytes = dotted.slice(1).map(Number);
    return bytes.some((x) => x > 255) ? `${host} is not an IPv4 address` : ipv4Problem(bytes);
  }
  const labels = name.split(".");
  // The URL parser reads a numeric last label as an IPv4 address; one it left alone is refused.
  if (/^(0x[0-9a-f]*|\d+)$/i.test(labels.at(-1) ?? "")) return `${host} is a numeric host, not a DNS name`;
  const suffix = PRIVATE_SUFFIXES.find((s) => name === s || name.endsWith(`.${s}`));
  if (suffix) return `${host} is a local or internal name (.${suffix})`;
  if (labels.length < 2) return `${host} is not a public DNS name (one label)`;
  const wildcard = WILDCARD_DNS.find((s) => name === s || name.endsWith(`.${s}`));
  if (wildcard) return `${host} is a wildcard-DNS name (${wildcard}) that can point anywhere`;
  return null;
}

/**
 * Why `url` may not be a target of `kind`, or null when it may. Pure; run at rule creation and
 * before every delivery (a stored rule is re-checked under the current policy).
 */
export function targetProblem(kind: "slack" | "webhook", url: string, policy: TargetPolicy): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "not a URL";
  }
  if (u.username || u.password) return "must not carry a user name or password";
  const host = u.hostname.toLowerCase();
  if (kind === "slack") {
    const slack = u.protocol === "https:" && host === "hooks.slack.com" && u.port === "";
    return slack && u.pathname.startsWith("/services/")
      ? null
      : "must be a Slack incoming-webhook URL (https://hooks.slack.com/services/…)";
  }
  if (policy.devHosts.has(u.host.toLowerCase()) || policy.devHosts.has(host)) {
    return u.protocol === "https:" || u.protocol === "http:" ? null : "must be an http(s):// URL";
  }
  if (u.protocol !== "https:") return "must be an https:// URL";
  if (host.replace(/\.$/, "") === policy.ownHost) return `${host} is this Worker's own host`;
  return hostProblem(host);
}
