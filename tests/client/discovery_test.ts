import assert from "node:assert/strict";
import {
  annotatePins,
  discover,
  type DiscoveredServer,
  DiscoveryCollector,
  findConflicts,
  formatServers,
} from "../../client/discovery.ts";
import {
  type AnnouncePacket,
  MAX_REPLY_BYTES,
  type ReplyPacket,
} from "../../protocol/discovery.ts";
import { startDiscovery } from "../../server/discovery.ts";

const FP_A = "a".repeat(64);
const FP_B = "b".repeat(64);
const ID_1 = "1".repeat(32);
const ID_2 = "2".repeat(32);
const NONCE = "c".repeat(32);

function announce(overrides: Partial<AnnouncePacket> = {}): AnnouncePacket {
  return {
    kind: "announce",
    instanceId: ID_1,
    tcpPort: 7070,
    protocolVersion: 1,
    fingerprint: FP_A,
    name: "nas",
    ...overrides,
  };
}

function reply(overrides: Partial<ReplyPacket> = {}): ReplyPacket {
  return { ...announce(), kind: "reply", nonce: NONCE, ...overrides };
}

// ---------------------------------------------------------------------------------------
// DiscoveryCollector (pure)

Deno.test("DiscoveryCollector lists a server once however often it is heard", () => {
  const collector = new DiscoveryCollector();
  collector.expectNonce(NONCE);
  const first = collector.accept(announce(), "10.0.0.5");
  assert.deepEqual(first, {
    address: "10.0.0.5",
    port: 7070,
    name: "nas",
    fingerprint: FP_A,
    instanceId: ID_1,
    via: "announce",
    protocolVersion: 1,
  });
  assert.equal(collector.accept(announce(), "10.0.0.5"), undefined);
  assert.equal(collector.accept(reply(), "10.0.0.5"), undefined);
  // The same instance heard on a second address of the server is the same server.
  assert.equal(collector.accept(announce(), "192.168.1.5"), undefined);
  const servers = collector.servers();
  assert.equal(servers.length, 1);
  assert.equal(servers[0]!.via, "reply");
  assert.equal(servers[0]!.address, "10.0.0.5");
});

Deno.test("DiscoveryCollector keeps several servers in the order found", () => {
  const collector = new DiscoveryCollector();
  collector.accept(announce({ name: "one" }), "10.0.0.5");
  collector.accept(announce({ name: "two", instanceId: ID_2, fingerprint: FP_B }), "10.0.0.6");
  collector.accept(
    announce({ name: "three", instanceId: "3".repeat(32), tcpPort: 7080 }),
    "10.0.0.5",
  );
  assert.deepEqual(collector.servers().map((s) => [s.name, s.address, s.port]), [
    ["one", "10.0.0.5", 7070],
    ["two", "10.0.0.6", 7070],
    ["three", "10.0.0.5", 7080],
  ]);
  assert.equal(collector.size, 3);
});

Deno.test("DiscoveryCollector merges a restarted server with the same certificate", () => {
  const collector = new DiscoveryCollector();
  collector.accept(announce({ name: "old" }), "10.0.0.5");
  assert.equal(
    collector.accept(announce({ instanceId: ID_2, name: "new" }), "10.0.0.5"),
    undefined,
  );
  assert.deepEqual(collector.servers().map((s) => [s.instanceId, s.name]), [[ID_2, "new"]]);
});

Deno.test("DiscoveryCollector never merges a different fingerprint into a known address", () => {
  const collector = new DiscoveryCollector();
  collector.accept(announce(), "10.0.0.5");
  // A spoofer copying the instance id, or a new certificate: listed separately.
  const spoof = collector.accept(announce({ fingerprint: FP_B }), "10.0.0.5");
  assert.equal(spoof?.fingerprint, FP_B);
  const servers = collector.servers();
  assert.deepEqual(servers.map((s) => s.fingerprint), [FP_A, FP_B]);
  assert.deepEqual([...findConflicts(servers)], ["10.0.0.5:7070"]);
});

Deno.test("DiscoveryCollector ignores probes and replies to nonces it did not send", () => {
  const collector = new DiscoveryCollector();
  assert.equal(
    collector.accept({ kind: "probe", instanceId: ID_1, nonce: NONCE }, "10.0.0.5"),
    undefined,
  );
  assert.equal(collector.accept(reply(), "10.0.0.5"), undefined);
  assert.equal(collector.size, 0);
  collector.expectNonce(NONCE);
  assert.equal(collector.accept(reply(), "10.0.0.5")?.via, "reply");
});

Deno.test("DiscoveryCollector forgets servers not heard within maxAgeMs (injected clock)", () => {
  let now = 1_000;
  const collector = new DiscoveryCollector({ now: () => now, maxAgeMs: 5_000 });
  collector.accept(announce(), "10.0.0.5");
  collector.accept(announce({ instanceId: ID_2, fingerprint: FP_B }), "10.0.0.6");
  now += 4_000;
  collector.accept(announce(), "10.0.0.5"); // refreshed
  now += 2_000;
  assert.deepEqual(collector.servers().map((s) => s.address), ["10.0.0.5"]);
  now += 5_001;
  assert.equal(collector.size, 0);
  // Heard again after expiry: new again.
  assert.equal(collector.accept(announce(), "10.0.0.5")?.address, "10.0.0.5");
});

// ---------------------------------------------------------------------------------------
// annotatePins / formatServers (pure)

const found: DiscoveredServer[] = [
  {
    address: "10.0.0.5",
    port: 7070,
    name: "nas",
    fingerprint: FP_A,
    instanceId: ID_1,
    via: "reply",
    protocolVersion: 1,
  },
  {
    address: "10.0.0.6",
    port: 7070,
    name: "attic",
    fingerprint: FP_B,
    instanceId: ID_2,
    via: "announce",
    protocolVersion: 1,
  },
  {
    address: "10.0.0.7",
    port: 7000,
    name: "",
    fingerprint: FP_A,
    instanceId: "3".repeat(32),
    via: "announce",
    protocolVersion: 1,
  },
];

const pins = new Map([
  ["10.0.0.5:7070", `sha256:${FP_A.toUpperCase()}`],
  ["10.0.0.6:7070", `sha256:${FP_A}`],
]);
const lookup = (host: string, port: number) => pins.get(`${host}:${port}`);

Deno.test("annotatePins() marks yes, no and MISMATCH against the trust store", () => {
  const annotated = annotatePins(found, lookup);
  assert.deepEqual(annotated.map((s) => s.pinned), ["yes", "MISMATCH", "no"]);
  assert.equal(annotated[1]!.pinnedFingerprint, FP_A);
  assert.equal(annotated[2]!.pinnedFingerprint, undefined);
});

Deno.test("annotatePins() treats an unreadable pin as MISMATCH, never as trusted", () => {
  const annotated = annotatePins(found.slice(0, 1), () => "garbage");
  assert.equal(annotated[0]!.pinned, "MISMATCH");
});

Deno.test("formatServers() prints a table and a loud warning for a MISMATCH", () => {
  const text = formatServers(annotatePins(found, lookup), { json: false });
  const lines = text.split("\n");
  assert.match(lines[0]!, /^ADDRESS +PORT +NAME +PINNED +FINGERPRINT$/);
  assert.match(lines[1]!, new RegExp(`^10\\.0\\.0\\.5 +7070 +nas +yes +sha256:${FP_A}$`));
  assert.match(lines[2]!, new RegExp(`^10\\.0\\.0\\.6 +7070 +attic +MISMATCH +sha256:${FP_B}$`));
  assert.match(lines[3]!, new RegExp(`^10\\.0\\.0\\.7 +7000 +- +no +sha256:${FP_A}$`));
  assert.equal(lines.length, 5);
  assert.match(
    lines[4]!,
    /^WARNING: 10\.0\.0\.6:7070 "attic" presents fingerprint sha256:b+ but sha256:a+ is pinned/,
  );
});

Deno.test("formatServers() warns when one address is announced with two fingerprints", () => {
  const spoofed = [found[0]!, { ...found[1]!, address: "10.0.0.5" }];
  const text = formatServers(spoofed, { json: false });
  assert.match(text, /^WARNING: 10\.0\.0\.5:7070 is announced with different fingerprints/m);
  const json = JSON.parse(formatServers(spoofed, { json: true }));
  assert.deepEqual(json.map((s: { conflict: boolean }) => s.conflict), [true, true]);
});

Deno.test("formatServers() gives JSON with sha256: fingerprints and pin state", () => {
  const json = JSON.parse(formatServers(annotatePins(found, lookup), { json: true }));
  assert.deepEqual(json[1], {
    address: "10.0.0.6",
    port: 7070,
    name: "attic",
    fingerprint: `sha256:${FP_B}`,
    instanceId: ID_2,
    via: "announce",
    protocolVersion: 1,
    pinned: "MISMATCH",
    pinnedFingerprint: `sha256:${FP_A}`,
    conflict: false,
  });
  assert.equal(formatServers([], { json: true }), "[]");
  assert.equal(formatServers([], { json: false }), "No servers found");
});

// ---------------------------------------------------------------------------------------
// Server and client over loopback only (127.0.0.0/8): never the real interfaces.

const FINGERPRINT = "0f".repeat(32);

Deno.test("discover() finds a server on 127.0.0.1 by probe and reply", async () => {
  const server = await startDiscovery({
    port: 0,
    serverName: "loop",
    tcpPort: 7443,
    fingerprint: `sha256:${FINGERPRINT}`,
    announce: [],
  });
  try {
    const seen: DiscoveredServer[] = [];
    const started = performance.now();
    const servers = await discover({
      port: server.port,
      broadcastAddresses: ["127.0.0.1"],
      timeoutMs: 5_000,
      stopAfterFirst: true,
      onServer: (s) => seen.push(s),
    });
    assert.ok(performance.now() - started < 4_000);
    assert.deepEqual(servers, [{
      address: "127.0.0.1",
      port: 7443,
      name: "loop",
      fingerprint: FINGERPRINT,
      instanceId: server.instanceId,
      via: "reply",
      protocolVersion: 1,
    }]);
    assert.deepEqual(seen, servers);
  } finally {
    await server.close();
  }
});

Deno.test("discover() hears announcements on the loopback broadcast address", async () => {
  const server = await startDiscovery({
    port: 0,
    serverName: "announcer",
    tcpPort: 7444,
    fingerprint: FINGERPRINT,
    announce: ["127.255.255.255"],
    intervalMs: 20,
  });
  try {
    const servers = await discover({
      port: server.port,
      broadcastAddresses: ["127.255.255.255"],
      probeScheduleMs: [], // listen only
      timeoutMs: 5_000,
      stopAfterFirst: true,
    });
    assert.deepEqual(servers.map((s) => [s.address, s.port, s.via, s.instanceId]), [
      ["127.0.0.1", 7444, "announce", server.instanceId],
    ]);
  } finally {
    await server.close();
  }
});

Deno.test("discover() lists two servers on one loopback port once each", async () => {
  const a = await startDiscovery({
    port: 0,
    serverName: "a",
    tcpPort: 7001,
    fingerprint: FP_A,
    announce: ["127.255.255.255"],
    intervalMs: 20,
  });
  const b = await startDiscovery({
    port: a.port,
    serverName: "b",
    tcpPort: 7002,
    fingerprint: FP_B,
    announce: ["127.255.255.255"],
    intervalMs: 20,
  });
  try {
    const controller = new AbortController();
    const names = new Set<string>();
    const servers = await discover({
      port: a.port,
      broadcastAddresses: ["127.255.255.255"],
      timeoutMs: 5_000,
      signal: controller.signal,
      onServer: (s) => {
        names.add(s.name);
        if (names.size === 2) controller.abort();
      },
    });
    assert.deepEqual(servers.map((s) => s.name).sort(), ["a", "b"]);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("discover() resolves with nothing at once when there is nowhere to probe", async () => {
  const servers = await discover({ broadcastAddresses: [], timeoutMs: 60_000 });
  assert.deepEqual(servers, []);
});

Deno.test("discover() ends early with what it has when the signal aborts", async () => {
  const probe = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port; // a silent "server": nobody answers
  try {
    const controller = new AbortController();
    const pending = discover({
      port,
      broadcastAddresses: ["127.0.0.1"],
      timeoutMs: 60_000,
      signal: controller.signal,
    });
    await probe.receive(); // the first probe arrived: discovery is running
    controller.abort();
    assert.deepEqual(await pending, []);
  } finally {
    probe.close();
  }
});

Deno.test("discover() probes with padded datagrams a server never has to out-size", async () => {
  const listener = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const controller = new AbortController();
    const pending = discover({
      port,
      broadcastAddresses: ["127.0.0.1"],
      signal: controller.signal,
    });
    const [data] = await listener.receive();
    controller.abort();
    await pending;
    assert.ok(data.length >= MAX_REPLY_BYTES);
  } finally {
    listener.close();
  }
});
