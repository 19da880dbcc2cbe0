import assert from "node:assert/strict";
import {
  type AnnouncePacket,
  decodePacket,
  type DecodeResult,
  DISCOVERY_VERSION,
  type DiscoveryPacket,
  encodePacket,
  type InterfaceInfo,
  ipv4BroadcastAddresses,
  isInLocalSubnet,
  MAX_NAME_BYTES,
  MAX_PACKET_BYTES,
  MAX_REPLY_BYTES,
  newRandomId,
  normalizeFingerprint,
  parseIPv4,
  PROBE_BYTES,
  type ReplyPacket,
  sanitizeServerName,
} from "../../protocol/discovery.ts";

const FINGERPRINT = "0123456789abcdef".repeat(4);
const ID = "00112233445566778899aabbccddeeff";
const NONCE = "ffeeddccbbaa99887766554433221100";

const announce: AnnouncePacket = {
  kind: "announce",
  instanceId: ID,
  tcpPort: 7070,
  protocolVersion: 1,
  fingerprint: FINGERPRINT,
  name: "nas — Wohnzimmer",
};
const reply: ReplyPacket = { ...announce, kind: "reply", nonce: NONCE };
const probe: DiscoveryPacket = { kind: "probe", instanceId: ID, nonce: NONCE };

function errorCode(result: DecodeResult): string {
  assert.equal(result.ok, false);
  return result.ok ? "" : result.code;
}

Deno.test("encodePacket()/decodePacket() round-trip every kind", () => {
  for (const packet of [announce, reply, probe]) {
    const result = decodePacket(encodePacket(packet));
    assert.deepEqual(result, { ok: true, packet });
  }
});

Deno.test("encodePacket() lays out an announce as DISCOVERY.md describes", () => {
  const bytes = encodePacket({ ...announce, name: "ab" });
  assert.deepEqual([...bytes.subarray(0, 6)], [0x43, 0x4c, 0x44, 0x50, 1, 1]);
  assert.equal(bytes.length, 4 + 1 + 1 + 16 + 2 + 1 + 32 + 1 + 2);
  assert.deepEqual([...bytes.subarray(22, 25)], [0x1b, 0x9e, 1]); // port 7070, version 1
  assert.deepEqual([...bytes.subarray(bytes.length - 3)], [2, 0x61, 0x62]);
});

Deno.test("decodePacket() accepts the largest reply and a name of exactly MAX_NAME_BYTES", () => {
  const name = "é".repeat(MAX_NAME_BYTES / 2);
  const bytes = encodePacket({ ...reply, name });
  assert.equal(bytes.length, MAX_REPLY_BYTES);
  const result = decodePacket(bytes);
  assert.equal(result.ok && result.packet.kind === "reply" && result.packet.name, name);
});

Deno.test("decodePacket() refuses every truncation of each kind (E_BAD_FRAME)", () => {
  for (const packet of [announce, reply, probe]) {
    const bytes = encodePacket(packet);
    for (let length = 0; length < bytes.length; length++) {
      const code = errorCode(decodePacket(bytes.subarray(0, length)));
      assert.equal(code, "E_BAD_FRAME", `${packet.kind} cut at ${length}`);
    }
  }
});

Deno.test("decodePacket() refuses an announce with extra bytes (E_BAD_FRAME)", () => {
  const bytes = encodePacket(announce);
  const longer = new Uint8Array(bytes.length + 1);
  longer.set(bytes);
  assert.equal(errorCode(decodePacket(longer)), "E_BAD_FRAME");
});

Deno.test("decodePacket() refuses a datagram over the cap before parsing (E_FRAME_TOO_LARGE)", () => {
  const big = new Uint8Array(MAX_PACKET_BYTES + 1);
  big.set(encodePacket(probe));
  assert.equal(errorCode(decodePacket(big)), "E_FRAME_TOO_LARGE");
  // Garbage of the same size is refused for its size, not its content.
  assert.equal(errorCode(decodePacket(new Uint8Array(100_000))), "E_FRAME_TOO_LARGE");
  // A probe padded up to the cap is still fine.
  const atCap = new Uint8Array(MAX_PACKET_BYTES);
  atCap.set(encodePacket(probe));
  assert.equal(decodePacket(atCap).ok, true);
});

Deno.test("decodePacket() refuses a wrong magic (E_BAD_MAGIC)", () => {
  const bytes = encodePacket(announce);
  bytes[0] = 0x58;
  assert.equal(errorCode(decodePacket(bytes)), "E_BAD_MAGIC");
  const ssdp = new TextEncoder().encode("M-SEARCH * HTTP/1.1\r\n");
  assert.equal(errorCode(decodePacket(ssdp)), "E_BAD_MAGIC");
});

Deno.test("decodePacket() refuses another version (E_VERSION)", () => {
  for (const version of [0, DISCOVERY_VERSION + 1, 255]) {
    const bytes = encodePacket(announce);
    bytes[4] = version;
    assert.equal(errorCode(decodePacket(bytes)), "E_VERSION");
  }
});

Deno.test("decodePacket() refuses an unknown kind (E_UNKNOWN_TYPE)", () => {
  for (const kind of [0, 4, 255]) {
    const bytes = encodePacket(probe);
    bytes[5] = kind;
    assert.equal(errorCode(decodePacket(bytes)), "E_UNKNOWN_TYPE");
  }
});

Deno.test("decodePacket() refuses a declared name over MAX_NAME_BYTES (E_BAD_MESSAGE)", () => {
  const bytes = encodePacket({ ...announce, name: "" });
  const nameLengthAt = bytes.length - 1;
  const longer = new Uint8Array(bytes.length + MAX_NAME_BYTES + 1);
  longer.set(bytes);
  longer[nameLengthAt] = MAX_NAME_BYTES + 1;
  longer.fill(0x61, bytes.length);
  assert.equal(errorCode(decodePacket(longer)), "E_BAD_MESSAGE");
});

Deno.test("decodePacket() refuses names with invalid UTF-8 or control characters (E_BAD_MESSAGE)", () => {
  for (const nameBytes of [[0xff, 0xfe], [0x61, 0x1b, 0x5b], [0xe2, 0x80, 0xae]]) {
    const bytes = encodePacket({ ...announce, name: "x".repeat(nameBytes.length) });
    bytes.set(nameBytes, bytes.length - nameBytes.length);
    assert.equal(errorCode(decodePacket(bytes)), "E_BAD_MESSAGE", String(nameBytes));
  }
});

Deno.test("decodePacket() refuses TCP port 0 and protocol version 0 (E_BAD_MESSAGE)", () => {
  const port0 = encodePacket(announce);
  port0.set([0, 0], 22);
  assert.equal(errorCode(decodePacket(port0)), "E_BAD_MESSAGE");
  const version0 = encodePacket(announce);
  version0[24] = 0;
  assert.equal(errorCode(decodePacket(version0)), "E_BAD_MESSAGE");
});

Deno.test("decodePacket() never throws on random bytes", () => {
  const bytes = new Uint8Array(MAX_PACKET_BYTES);
  for (let i = 0; i < 2000; i++) {
    const length = i % (MAX_PACKET_BYTES + 1);
    crypto.getRandomValues(bytes.subarray(0, length));
    if (i % 2 === 0) bytes.set([0x43, 0x4c, 0x44, 0x50, 1, 1 + (i % 3)]);
    const result = decodePacket(bytes.subarray(0, length));
    assert.equal(typeof result.ok, "boolean");
  }
});

Deno.test("encodePacket() pads a probe to at least the size of the largest reply", () => {
  const bytes = encodePacket(probe);
  assert.equal(bytes.length, PROBE_BYTES);
  assert.ok(PROBE_BYTES >= MAX_REPLY_BYTES);
  assert.ok(PROBE_BYTES <= MAX_PACKET_BYTES);
  assert.ok(bytes.subarray(38).every((b) => b === 0));
  const longestName = "n".repeat(MAX_NAME_BYTES);
  assert.ok(encodePacket({ ...reply, name: longestName }).length <= bytes.length);
});

Deno.test("decodePacket() refuses a probe that is not padded (E_BAD_FRAME)", () => {
  const bytes = encodePacket(probe);
  assert.equal(errorCode(decodePacket(bytes.subarray(0, 38))), "E_BAD_FRAME");
  assert.equal(errorCode(decodePacket(bytes.subarray(0, PROBE_BYTES - 1))), "E_BAD_FRAME");
});

Deno.test("encodePacket() refuses bad fields with TypeError or RangeError", () => {
  assert.throws(
    () => encodePacket({ ...announce, name: "n".repeat(MAX_NAME_BYTES + 1) }),
    RangeError,
  );
  assert.throws(() => encodePacket({ ...announce, name: "a\nb" }), TypeError);
  assert.throws(() => encodePacket({ ...announce, tcpPort: 0 }), RangeError);
  assert.throws(() => encodePacket({ ...announce, tcpPort: 65536 }), RangeError);
  assert.throws(() => encodePacket({ ...announce, protocolVersion: 256 }), RangeError);
  assert.throws(() => encodePacket({ ...announce, fingerprint: "abc" }), TypeError);
  assert.throws(() => encodePacket({ ...announce, instanceId: "xyz" }), TypeError);
  assert.throws(
    () => encodePacket({ ...probe, nonce: ID.toUpperCase() } as DiscoveryPacket),
    TypeError,
  );
});

Deno.test("encodePacket() accepts sha256: and colon-separated fingerprints", () => {
  const colons = FINGERPRINT.toUpperCase().match(/../g)!.join(":");
  for (const fingerprint of [`sha256:${FINGERPRINT}`, colons]) {
    const result = decodePacket(encodePacket({ ...announce, fingerprint }));
    assert.equal(
      result.ok && result.packet.kind === "announce" && result.packet.fingerprint,
      FINGERPRINT,
    );
  }
  assert.equal(normalizeFingerprint("sha256:zz"), undefined);
});

Deno.test("sanitizeServerName() replaces unprintables and cuts at a character boundary", () => {
  assert.equal(sanitizeServerName("a\u001b[31mb\u202ec"), "a?[31mb?c");
  const cut = sanitizeServerName("€".repeat(100)); // 3 bytes each
  assert.equal(cut, "€".repeat(42));
  assert.equal(new TextEncoder().encode(cut).length, 126);
});

Deno.test("newRandomId() gives 32 hex digits, different each time", () => {
  const a = newRandomId();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(a, newRandomId());
});

const interfaces: InterfaceInfo[] = [
  { family: "IPv4", name: "lo", address: "127.0.0.1", netmask: "255.0.0.0" },
  { family: "IPv4", name: "eth0", address: "192.168.1.20", netmask: "255.255.255.0" },
  { family: "IPv4", name: "wg0", address: "10.9.0.2", netmask: "255.255.255.255" },
  { family: "IPv4", name: "eth1", address: "10.250.3.7", netmask: "255.255.252.0" },
  { family: "IPv6", name: "eth0", address: "fe80::1", netmask: "ffff:ffff:ffff:ffff::" },
];

Deno.test("ipv4BroadcastAddresses() lists subnet broadcasts, without loopback and /32", () => {
  assert.deepEqual(ipv4BroadcastAddresses(interfaces), ["192.168.1.255", "10.250.3.255"]);
  assert.deepEqual(ipv4BroadcastAddresses(interfaces, { includeLoopback: true }), [
    "127.255.255.255",
    "192.168.1.255",
    "10.250.3.255",
  ]);
});

Deno.test("isInLocalSubnet() accepts only addresses in an IPv4 interface's subnet", () => {
  assert.equal(isInLocalSubnet("192.168.1.77", interfaces), true);
  assert.equal(isInLocalSubnet("::ffff:192.168.1.77", interfaces), true);
  assert.equal(isInLocalSubnet("127.0.0.5", interfaces), true);
  assert.equal(isInLocalSubnet("10.250.1.1", interfaces), true);
  assert.equal(isInLocalSubnet("10.250.4.1", interfaces), false);
  assert.equal(isInLocalSubnet("192.168.2.1", interfaces), false);
  assert.equal(isInLocalSubnet("8.8.8.8", interfaces), false);
  assert.equal(isInLocalSubnet("fe80::2", interfaces), false);
  assert.equal(isInLocalSubnet("not an address", interfaces), false);
});

Deno.test("parseIPv4() refuses malformed addresses", () => {
  assert.equal(parseIPv4("10.0.0.1"), 0x0a000001);
  for (const bad of ["10.0.0", "10.0.0.256", "10.0.0.01", "10.0.0.-1", "a.b.c.d", ""]) {
    assert.equal(parseIPv4(bad), undefined, bad);
  }
});
