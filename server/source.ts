/**
 * Source keys: the unit the per-source login limit counts by (SPEC.md section 3). An IPv4
 * client is one address (/32); an IPv6 client is its /56 prefix, because one subscriber
 * usually gets a whole /56 (or /48) and can pick any address inside it at will.
 *
 * Pure: strings in, strings out.
 *
 * @module
 */

/** Bits of an IPv6 address that identify one source. */
export const IPV6_SOURCE_PREFIX = 56;

/**
 * Returns the key that identifies `address` as a login source:
 * - IPv4 `"192.0.2.7"` -> `"192.0.2.7"` (the /32 itself);
 * - IPv4-mapped IPv6 `"::ffff:192.0.2.7"` (or `"::ffff:c000:207"`) -> `"192.0.2.7"`, so a
 *   dual-stack listener counts an IPv4 client the same as an IPv4-only one;
 * - any other IPv6 -> its /56 prefix in RFC 5952 form, `"2001:db8:aa:bb00::/56"`.
 *
 * Accepts compressed IPv6 forms, a trailing dotted quad, a zone id (`"fe80::1%eth0"`, the
 * zone is dropped), square brackets (`"[2001:db8::1]"`) and a key this function returned
 * (so applying it twice gives the same key). Throws TypeError for anything else, including
 * IPv4 octets with leading zeros (ambiguous: some parsers read them as octal).
 *
 * @example
 * ```ts
 * sourceKey("2001:DB8:aa:bb12::1%eth0"); // "2001:db8:aa:bb00::/56"
 * sourceKey("::ffff:10.0.0.1"); // "10.0.0.1"
 * ```
 */
export function sourceKey(address: string): string {
  let text = address.trim();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const slash = text.indexOf("/");
  if (slash !== -1) {
    // Only our own IPv6 /56 keys carry a prefix length.
    if (text.slice(slash + 1) !== String(IPV6_SOURCE_PREFIX) || !text.includes(":")) {
      throw new TypeError(`Not an IP address "${address}"`);
    }
    text = text.slice(0, slash);
  }
  if (!text.includes(":")) {
    const v4 = parseIpv4(text);
    if (v4 === null || slash !== -1) throw new TypeError(`Not an IP address "${address}"`);
    return formatIpv4(v4);
  }
  const zone = text.indexOf("%");
  if (zone !== -1) {
    if (zone === text.length - 1 || slash !== -1) {
      throw new TypeError(`Not an IP address "${address}"`);
    }
    text = text.slice(0, zone);
  }
  const groups = parseIpv6(text);
  if (groups === null) throw new TypeError(`Not an IP address "${address}"`);
  if (isIpv4Mapped(groups) && slash === -1) {
    return formatIpv4([groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff]);
  }
  return `${formatIpv6(maskIpv6(groups, IPV6_SOURCE_PREFIX))}/${IPV6_SOURCE_PREFIX}`;
}

/** Returns true when `address` is an IPv4 or IPv6 address (or a source key) sourceKey accepts. */
export function isIpAddress(address: string): boolean {
  try {
    sourceKey(address);
    return true;
  } catch {
    return false;
  }
}

/** Four octets, or null when `text` is not a strict dotted quad. */
function parseIpv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    octets.push(value);
  }
  return octets;
}

function formatIpv4(octets: readonly number[]): string {
  return octets.join(".");
}

/** Eight 16-bit groups, or null when `text` is not an IPv6 address (no zone, no prefix). */
function parseIpv6(text: string): number[] | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parseSide = (side: string, last: boolean): number[] | null => {
    if (side === "") return [];
    const out: number[] = [];
    const pieces = side.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (last && i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (v4 === null) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  if (halves.length === 1) {
    const groups = parseSide(text, true);
    return groups !== null && groups.length === 8 ? groups : null;
  }
  const head = parseSide(halves[0]!, false);
  const tail = parseSide(halves[1]!, true);
  if (head === null || tail === null) return null;
  // "::" stands for at least one group of zeros.
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

function isIpv4Mapped(groups: readonly number[]): boolean {
  return groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
}

function maskIpv6(groups: readonly number[], bits: number): number[] {
  return groups.map((group, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : group & ((0xffff << (16 - keep)) & 0xffff);
  });
}

/** RFC 5952: lower case, no leading zeros, the longest run (>= 2) of zero groups as "::". */
function formatIpv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}
