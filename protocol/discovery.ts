/**
 * LAN discovery packets (SPEC.md section 5): a small, versioned binary codec for the UDP
 * datagrams a server announces and a client probes with, plus the pure IPv4 helpers both
 * sides use to pick broadcast addresses and to check that a probe comes from a local subnet.
 *
 * Pure: bytes in, values out; no sockets. See DISCOVERY.md for the byte layout.
 *
 * @example
 * ```ts
 * const bytes = encodePacket({ kind: "probe", instanceId: newRandomId(), nonce: newRandomId() });
 * const result = decodePacket(bytes);
 * if (result.ok && result.packet.kind === "probe") console.log(result.packet.nonce);
 * ```
 *
 * @module
 */

import type { ErrorCode } from "./errors.ts";
import { PROTOCOL_VERSION } from "./frame.ts";

/** The four bytes that open every discovery datagram: ASCII `CLDP`. */
export const DISCOVERY_MAGIC: Uint8Array = new Uint8Array([0x43, 0x4c, 0x44, 0x50]);
/** Version of the discovery packet layout this code speaks. */
export const DISCOVERY_VERSION = 1;
/** Default UDP port for discovery. */
export const DEFAULT_DISCOVERY_PORT = 7071;
/** Hard cap on a discovery datagram, checked before anything is parsed. */
export const MAX_PACKET_BYTES = 512;
/** Largest server name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 128;
/** Bytes of an instance id and of a probe nonce. */
export const ID_BYTES = 16;
/** Bytes of a certificate fingerprint (SHA-256). */
export const FINGERPRINT_BYTES = 32;

const HEADER_BYTES = DISCOVERY_MAGIC.length + 1 + 1 + ID_BYTES;
/** Bytes of the server description shared by announce and reply, without the name. */
const DESCRIPTION_FIXED_BYTES = 2 + 1 + FINGERPRINT_BYTES + 1;
/** The largest reply this version can produce. */
export const MAX_REPLY_BYTES: number = HEADER_BYTES + ID_BYTES + DESCRIPTION_FIXED_BYTES +
  MAX_NAME_BYTES;
/**
 * Minimum size of a probe: padded to the largest possible reply, so a reply is never
 * larger than the probe that caused it (no amplification).
 */
export const PROBE_BYTES: number = MAX_REPLY_BYTES;

const KIND_CODES = { announce: 1, probe: 2, reply: 3 } as const;

/** The kinds of discovery packet. */
export type DiscoveryKind = keyof typeof KIND_CODES;

/** What a server says about itself in announcements and replies. */
export interface ServerDescription {
  /** Random id of the announcing server process, 32 lower-case hex digits. */
  instanceId: string;
  /** TCP port of the `cloud` service. */
  tcpPort: number;
  /** Wire protocol version the service speaks (1–255). */
  protocolVersion: number;
  /** SHA-256 fingerprint of the server certificate, 64 lower-case hex digits. */
  fingerprint: string;
  /** Human name of the server, at most {@link MAX_NAME_BYTES} UTF-8 bytes, printable. */
  name: string;
}

/** Sent by a server to the broadcast address(es) every few seconds. */
export interface AnnouncePacket extends ServerDescription {
  kind: "announce";
}

/** Sent by a client to the broadcast address(es) to ask servers to answer at once. */
export interface ProbePacket {
  kind: "probe";
  /** Random id of the probing client, 32 lower-case hex digits. */
  instanceId: string;
  /** Random value the reply echoes, 32 lower-case hex digits. */
  nonce: string;
}

/** Sent by a server, unicast, to the source of a probe. */
export interface ReplyPacket extends ServerDescription {
  kind: "reply";
  /** The nonce of the probe this answers. */
  nonce: string;
}

/** Any discovery packet. */
export type DiscoveryPacket = AnnouncePacket | ProbePacket | ReplyPacket;

/** The stable codes {@link decodePacket} reports. */
export type DiscoveryErrorCode = Extract<
  ErrorCode,
  | "E_FRAME_TOO_LARGE"
  | "E_BAD_FRAME"
  | "E_BAD_MAGIC"
  | "E_VERSION"
  | "E_UNKNOWN_TYPE"
  | "E_BAD_MESSAGE"
>;

/** The result of {@link decodePacket}: a packet, or why the datagram was refused. */
export type DecodeResult =
  | { ok: true; packet: DiscoveryPacket }
  | { ok: false; code: DiscoveryErrorCode; message: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const HEX_ID = /^[0-9a-f]{32}$/;
const HEX_FINGERPRINT = /^[0-9a-f]{64}$/;
/** Control, format (bidi overrides), line and paragraph separator characters. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** A new random 128-bit id (instance id or nonce) as 32 lower-case hex digits. */
export function newRandomId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(ID_BYTES)));
}

/**
 * Normalises a certificate fingerprint to 64 lower-case hex digits. Accepts an optional
 * `sha256:` prefix, either case and `:` separators (as `openssl x509 -fingerprint` prints).
 * Returns undefined when `value` is not a SHA-256 fingerprint.
 */
export function normalizeFingerprint(value: string): string | undefined {
  const hex = value.trim().replace(/^sha256:/i, "").replaceAll(":", "").toLowerCase();
  return HEX_FINGERPRINT.test(hex) ? hex : undefined;
}

/**
 * Makes any string usable as a server name: unprintable characters become `?` and the
 * result is cut, at a character boundary, to {@link MAX_NAME_BYTES} UTF-8 bytes.
 */
export function sanitizeServerName(name: string): string {
  let out = "";
  let bytes = 0;
  for (const ch of name.toWellFormed()) {
    const safe = UNPRINTABLE.test(ch) ? "?" : ch;
    const size = encoder.encode(safe).length;
    if (bytes + size > MAX_NAME_BYTES) break;
    out += safe;
    bytes += size;
  }
  return out;
}

/**
 * Encodes a packet. A probe is padded with zero bytes to {@link PROBE_BYTES}.
 * Throws TypeError for a malformed id, nonce, fingerprint or name and RangeError for a
 * port, version or name length out of range (programming errors, not wire errors).
 */
export function encodePacket(packet: DiscoveryPacket): Uint8Array {
  checkId("instance id", packet.instanceId);
  let body: Uint8Array[];
  switch (packet.kind) {
    case "probe":
      checkId("nonce", packet.nonce);
      body = [fromHex(packet.nonce)];
      break;
    case "announce":
      body = encodeDescription(packet);
      break;
    case "reply":
      checkId("nonce", packet.nonce);
      body = [fromHex(packet.nonce), ...encodeDescription(packet)];
      break;
    default:
      throw new TypeError(`Unknown discovery packet kind "${(packet as { kind: unknown }).kind}"`);
  }
  const length = HEADER_BYTES + body.reduce((n, part) => n + part.length, 0);
  const out = new Uint8Array(packet.kind === "probe" ? Math.max(length, PROBE_BYTES) : length);
  out.set(DISCOVERY_MAGIC, 0);
  out[4] = DISCOVERY_VERSION;
  out[5] = KIND_CODES[packet.kind];
  out.set(fromHex(packet.instanceId), 6);
  let offset = HEADER_BYTES;
  for (const part of body) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Decodes one datagram. Never throws: anything that is not a valid packet of this version
 * gives `{ ok: false, code, message }`, which receivers simply drop. The size cap is checked
 * before anything else is read.
 */
export function decodePacket(bytes: Uint8Array): DecodeResult {
  if (bytes.length > MAX_PACKET_BYTES) {
    return fail("E_FRAME_TOO_LARGE", `Datagram of ${bytes.length} bytes exceeds the cap`);
  }
  if (bytes.length < DISCOVERY_MAGIC.length + 1) {
    return fail("E_BAD_FRAME", `Datagram of ${bytes.length} bytes is truncated`);
  }
  if (!DISCOVERY_MAGIC.every((b, i) => bytes[i] === b)) {
    return fail("E_BAD_MAGIC", "Not a cloud discovery datagram (bad magic)");
  }
  if (bytes[4] !== DISCOVERY_VERSION) {
    return fail("E_VERSION", `Discovery version "${bytes[4]}" is not supported`);
  }
  if (bytes.length < HEADER_BYTES) {
    return fail("E_BAD_FRAME", `Datagram of ${bytes.length} bytes is truncated`);
  }
  const kindCode = bytes[5];
  const instanceId = toHex(bytes.subarray(6, HEADER_BYTES));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (kindCode) {
    case KIND_CODES.probe: {
      if (bytes.length < PROBE_BYTES) {
        return fail(
          "E_BAD_FRAME",
          `Probe of ${bytes.length} bytes is not padded to ${PROBE_BYTES}`,
        );
      }
      const nonce = toHex(bytes.subarray(HEADER_BYTES, HEADER_BYTES + ID_BYTES));
      return { ok: true, packet: { kind: "probe", instanceId, nonce } };
    }
    case KIND_CODES.announce: {
      const description = decodeDescription(bytes, view, HEADER_BYTES, instanceId);
      if (!description.ok) return description;
      return { ok: true, packet: { kind: "announce", ...description.value } };
    }
    case KIND_CODES.reply: {
      if (bytes.length < HEADER_BYTES + ID_BYTES) {
        return fail("E_BAD_FRAME", `Datagram of ${bytes.length} bytes is truncated`);
      }
      const nonce = toHex(bytes.subarray(HEADER_BYTES, HEADER_BYTES + ID_BYTES));
      const description = decodeDescription(bytes, view, HEADER_BYTES + ID_BYTES, instanceId);
      if (!description.ok) return description;
      return { ok: true, packet: { kind: "reply", nonce, ...description.value } };
    }
    default:
      return fail("E_UNKNOWN_TYPE", `Discovery packet kind "${kindCode}" is unknown`);
  }
}

function encodeDescription(d: ServerDescription): Uint8Array[] {
  if (!Number.isInteger(d.tcpPort) || d.tcpPort < 1 || d.tcpPort > 65535) {
    throw new RangeError(`TCP port "${d.tcpPort}" is out of range`);
  }
  if (!Number.isInteger(d.protocolVersion) || d.protocolVersion < 1 || d.protocolVersion > 255) {
    throw new RangeError(`Protocol version "${d.protocolVersion}" is out of range`);
  }
  const fingerprint = normalizeFingerprint(d.fingerprint);
  if (fingerprint === undefined) {
    throw new TypeError(`Fingerprint "${d.fingerprint}" is not a SHA-256 fingerprint`);
  }
  if (UNPRINTABLE.test(d.name) || !d.name.isWellFormed()) {
    throw new TypeError(`Server name "${d.name}" contains unprintable characters`);
  }
  const name = encoder.encode(d.name);
  if (name.length > MAX_NAME_BYTES) {
    throw new RangeError(`Server name of ${name.length} bytes exceeds ${MAX_NAME_BYTES}`);
  }
  const fixed = new Uint8Array(DESCRIPTION_FIXED_BYTES);
  const view = new DataView(fixed.buffer);
  view.setUint16(0, d.tcpPort);
  fixed[2] = d.protocolVersion;
  fixed.set(fromHex(fingerprint), 3);
  fixed[3 + FINGERPRINT_BYTES] = name.length;
  return [fixed, name];
}

type Described = { ok: true; value: ServerDescription } | {
  ok: false;
  code: DiscoveryErrorCode;
  message: string;
};

function decodeDescription(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  instanceId: string,
): Described {
  if (bytes.length < offset + DESCRIPTION_FIXED_BYTES) {
    return fail("E_BAD_FRAME", `Datagram of ${bytes.length} bytes is truncated`);
  }
  const tcpPort = view.getUint16(offset);
  const protocolVersion = bytes[offset + 2]!;
  const fingerprint = toHex(bytes.subarray(offset + 3, offset + 3 + FINGERPRINT_BYTES));
  const nameLength = bytes[offset + 3 + FINGERPRINT_BYTES]!;
  const nameStart = offset + DESCRIPTION_FIXED_BYTES;
  if (nameLength > MAX_NAME_BYTES) {
    return fail("E_BAD_MESSAGE", `Server name of ${nameLength} bytes exceeds ${MAX_NAME_BYTES}`);
  }
  if (bytes.length < nameStart + nameLength) {
    return fail("E_BAD_FRAME", `Datagram of ${bytes.length} bytes is truncated`);
  }
  if (bytes.length > nameStart + nameLength) {
    return fail("E_BAD_FRAME", `Datagram has ${bytes.length - nameStart - nameLength} extra bytes`);
  }
  if (tcpPort === 0) return fail("E_BAD_MESSAGE", `TCP port "0" is out of range`);
  if (protocolVersion === 0) return fail("E_BAD_MESSAGE", `Protocol version "0" is out of range`);
  let name: string;
  try {
    name = decoder.decode(bytes.subarray(nameStart, nameStart + nameLength));
  } catch {
    return fail("E_BAD_MESSAGE", "Server name is not valid UTF-8");
  }
  if (UNPRINTABLE.test(name)) {
    return fail("E_BAD_MESSAGE", `Server name ${JSON.stringify(name)} has unprintable characters`);
  }
  return { ok: true, value: { instanceId, tcpPort, protocolVersion, fingerprint, name } };
}

function fail(
  code: DiscoveryErrorCode,
  message: string,
): { ok: false; code: DiscoveryErrorCode; message: string } {
  return { ok: false, code, message };
}

function checkId(what: string, value: string): void {
  if (typeof value !== "string" || !HEX_ID.test(value)) {
    throw new TypeError(`Discovery ${what} "${value}" is not 32 lower-case hex digits`);
  }
}

function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// ---------------------------------------------------------------------------------------
// IPv4 helpers

/** The fields of `Deno.NetworkInterfaceInfo` the helpers below read. */
export interface InterfaceInfo {
  family: "IPv4" | "IPv6";
  name: string;
  address: string;
  netmask: string;
}

/** Parses a dotted-quad IPv4 address to an unsigned 32-bit number, or undefined. */
export function parseIPv4(address: string): number | undefined {
  const parts = address.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** Formats an unsigned 32-bit number as a dotted-quad IPv4 address. */
export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

/** True for 127.0.0.0/8. */
export function isLoopbackIPv4(address: string): boolean {
  const value = parseIPv4(address);
  return value !== undefined && value >>> 24 === 127;
}

/**
 * The subnet broadcast address of each IPv4 interface, without duplicates. Loopback
 * interfaces are left out unless `includeLoopback`; /31 and /32 subnets have no broadcast
 * address and are left out too.
 */
export function ipv4BroadcastAddresses(
  interfaces: readonly InterfaceInfo[],
  options: { includeLoopback?: boolean } = {},
): string[] {
  const out = new Set<string>();
  for (const info of interfaces) {
    if (info.family !== "IPv4") continue;
    if (!options.includeLoopback && isLoopbackIPv4(info.address)) continue;
    const address = parseIPv4(info.address);
    const mask = parseIPv4(info.netmask);
    if (address === undefined || mask === undefined) continue;
    if ((~mask >>> 0) < 3) continue; // /31 and /32
    out.add(formatIPv4(((address & mask) | ~mask) >>> 0));
  }
  return [...out];
}

/**
 * True when `address` (IPv4, or IPv4-mapped IPv6) lies in the subnet of one of the IPv4
 * interfaces, loopback included. Anything else (IPv6, garbage) is not local.
 */
export function isInLocalSubnet(address: string, interfaces: readonly InterfaceInfo[]): boolean {
  const value = parseIPv4(address.replace(/^::ffff:/i, ""));
  if (value === undefined) return false;
  return interfaces.some((info) => {
    if (info.family !== "IPv4") return false;
    const own = parseIPv4(info.address);
    const mask = parseIPv4(info.netmask);
    if (own === undefined || mask === undefined || mask === 0) return false;
    return ((own & mask) >>> 0) === ((value & mask) >>> 0);
  });
}

/** The default wire protocol version servers announce. */
export const ANNOUNCED_PROTOCOL_VERSION: number = PROTOCOL_VERSION;
