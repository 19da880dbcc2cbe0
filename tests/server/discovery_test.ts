import assert from "node:assert/strict";
import {
  decodePacket,
  encodePacket,
  MAX_PACKET_BYTES,
  newRandomId,
  type ReplyPacket,
} from "../../protocol/discovery.ts";
import { RateLimiter, startDiscovery } from "../../server/discovery.ts";

// All traffic here goes to loopback (127.0.0.0/8, ::1) only.

const FINGERPRINT = "5a".repeat(32);

Deno.test("RateLimiter allows a burst, then refills at the rate (injected clock)", () => {
  let now = 0;
  const limiter = new RateLimiter({ ratePerSecond: 5, now: () => now });
  for (let i = 0; i < 5; i++) assert.equal(limiter.take("10.0.0.1"), true);
  assert.equal(limiter.take("10.0.0.1"), false);
  assert.equal(limiter.take("10.0.0.2"), true); // another source has its own bucket
  now += 199;
  assert.equal(limiter.take("10.0.0.1"), false);
  now += 1;
  assert.equal(limiter.take("10.0.0.1"), true);
  assert.equal(limiter.take("10.0.0.1"), false);
  now += 60_000;
  for (let i = 0; i < 5; i++) assert.equal(limiter.take("10.0.0.1"), true); // capped at burst
  assert.equal(limiter.take("10.0.0.1"), false);
});

Deno.test("RateLimiter bounds the keys it tracks and refuses new ones when full", () => {
  let now = 0;
  const limiter = new RateLimiter({ ratePerSecond: 1, maxKeys: 3, now: () => now });
  for (const key of ["a", "b", "c"]) assert.equal(limiter.take(key), true);
  assert.equal(limiter.take("d"), false);
  assert.equal(limiter.size, 3);
  now += 1_000; // every bucket has refilled: room is made
  assert.equal(limiter.take("d"), true);
  assert.ok(limiter.size <= 3);
});

Deno.test("RateLimiter refuses a rate or burst that could never allow anything", () => {
  assert.throws(() => new RateLimiter({ ratePerSecond: 0 }), RangeError);
  assert.throws(() => new RateLimiter({ ratePerSecond: 1, burst: 0.5 }), RangeError);
});

Deno.test("startDiscovery() refuses an invalid fingerprint (TypeError)", async () => {
  await assert.rejects(
    startDiscovery({ port: 0, serverName: "x", tcpPort: 1, fingerprint: "nope", announce: [] }),
    TypeError,
  );
});

type Events = { event: string; fields: Record<string, unknown> }[];

function recorder() {
  const events: Events = [];
  const waiters: { match: (e: string) => boolean; resolve: () => void }[] = [];
  return {
    events,
    log(event: string, fields: Record<string, unknown>) {
      events.push({ event, fields });
      for (const w of waiters.filter((w) => w.match(event))) w.resolve();
    },
    /** Resolves when `event` has been logged (now or later). */
    until(event: string): Promise<void> {
      if (events.some((e) => e.event === event)) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push({ match: (e) => e === event, resolve });
      return promise;
    },
  };
}

function probe(): { bytes: Uint8Array; nonce: string } {
  const nonce = newRandomId();
  return { bytes: encodePacket({ kind: "probe", instanceId: newRandomId(), nonce }), nonce };
}

function client(): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
}

function to(port: number): Deno.NetAddr {
  return { transport: "udp", hostname: "127.0.0.1", port };
}

async function receiveReply(conn: Deno.DatagramConn): Promise<ReplyPacket> {
  const [data] = await conn.receive();
  const result = decodePacket(data);
  assert.ok(result.ok && result.packet.kind === "reply");
  return result.packet;
}

Deno.test("the announcer answers a probe at once with a reply no larger than the probe", async () => {
  const server = await startDiscovery({
    port: 0,
    serverName: "srv",
    tcpPort: 9000,
    fingerprint: FINGERPRINT,
    announce: [],
  });
  const conn = client();
  try {
    const { bytes, nonce } = probe();
    await conn.send(bytes, to(server.port));
    const [data] = await conn.receive();
    assert.ok(data.length <= bytes.length);
    const result = decodePacket(data);
    assert.deepEqual(result, {
      ok: true,
      packet: {
        kind: "reply",
        nonce,
        instanceId: server.instanceId,
        tcpPort: 9000,
        protocolVersion: 1,
        fingerprint: FINGERPRINT,
        name: "srv",
      },
    });
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test("the announcer survives garbage and still answers the next probe", async () => {
  const server = await startDiscovery({
    port: 0,
    serverName: "srv",
    tcpPort: 9000,
    fingerprint: FINGERPRINT,
    announce: [],
  });
  const conn = client();
  try {
    const valid = probe();
    const wrongVersion = probe().bytes;
    wrongVersion[4] = 9;
    const garbage = [
      new Uint8Array(0),
      new Uint8Array(2_000).fill(0x43),
      new TextEncoder().encode("CLDP"),
      valid.bytes.subarray(0, 40), // an unpadded probe
      wrongVersion,
      crypto.getRandomValues(new Uint8Array(MAX_PACKET_BYTES)),
    ];
    for (const bytes of garbage) await conn.send(bytes, to(server.port));
    await conn.send(valid.bytes, to(server.port));
    assert.equal((await receiveReply(conn)).nonce, valid.nonce);
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test("the announcer rate-limits answers per source address", async () => {
  const events = recorder();
  const server = await startDiscovery({
    port: 0,
    serverName: "srv",
    tcpPort: 9000,
    fingerprint: FINGERPRINT,
    announce: [],
    repliesPerSecond: 1,
    log: events.log,
  });
  const flooder = client();
  const other = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.2", port: 0 });
  try {
    const probes = Array.from({ length: 10 }, probe);
    for (const p of probes) await flooder.send(p.bytes, to(server.port));
    await events.until("discovery.probe_refused");
    // Another source has its own bucket and is still answered.
    const sentinel = probe();
    await other.send(sentinel.bytes, to(server.port));
    assert.equal((await receiveReply(other)).nonce, sentinel.nonce);
    // Exactly one of the flood was answered: the first.
    assert.equal((await receiveReply(flooder)).nonce, probes[0]!.nonce);
    const refused = events.events.filter((e) => e.event === "discovery.probe_refused");
    assert.deepEqual(refused.map((e) => e.fields), [{ reason: "rate", source: "127.0.0.1" }]);
  } finally {
    flooder.close();
    other.close();
    await server.close();
  }
});

Deno.test("the announcer ignores probes from outside its own subnets", async () => {
  const events = recorder();
  const server = await startDiscovery({
    port: 0,
    serverName: "srv",
    tcpPort: 9000,
    fingerprint: FINGERPRINT,
    announce: [],
    log: events.log,
    // The server believes it sits only on 192.168.77.0/24, so 127.0.0.1 is foreign.
    networkInterfaces: () => [
      { family: "IPv4", name: "eth0", address: "192.168.77.1", netmask: "255.255.255.0" },
    ],
  });
  const conn = client();
  try {
    await conn.send(probe().bytes, to(server.port));
    await events.until("discovery.probe_refused");
    assert.deepEqual(events.events.find((e) => e.event === "discovery.probe_refused")?.fields, {
      reason: "subnet",
      source: "127.0.0.1",
    });
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test("the announcer keeps announcing on other addresses when one send fails", async () => {
  const events = recorder();
  const server = await startDiscovery({
    port: 0,
    serverName: "srv",
    tcpPort: 9000,
    fingerprint: FINGERPRINT,
    // ::1 cannot be reached from an IPv4 socket: that send fails at once, locally.
    announce: ["::1", "127.255.255.255"],
    intervalMs: 20,
    log: events.log,
  });
  const listener = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.255.255.255",
    port: server.port,
    reuseAddress: true,
  });
  try {
    const [data] = await listener.receive();
    const result = decodePacket(data);
    assert.ok(result.ok && result.packet.kind === "announce");
    assert.equal(result.packet.instanceId, server.instanceId);
    await events.until("discovery.send_failed");
    const failed = events.events.filter((e) => e.event === "discovery.send_failed");
    assert.deepEqual(failed.map((e) => e.fields.address), ["::1"]); // logged once, not per tick
  } finally {
    listener.close();
    await server.close();
  }
});

Deno.test("close() stops the announcer and frees the port", async () => {
  const server = await startDiscovery({
    port: 0,
    serverName: "srv",
    tcpPort: 9000,
    fingerprint: FINGERPRINT,
    announce: ["127.255.255.255"],
    intervalMs: 10,
  });
  await server.close();
  await server.close(); // idempotent
  const again = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: server.port });
  again.close();
});
