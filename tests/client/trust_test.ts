import "reflect-metadata";
import assert from "node:assert/strict";
import { join } from "node:path";
import tls from "node:tls";
import * as x509 from "@peculiar/x509";
import { CloudError, type ErrorCode } from "../../protocol/errors.ts";
import {
  fingerprintOf,
  formatFingerprint,
  loadOrCreateCertificate,
  type ServerCertificate,
} from "../../server/tls.ts";
import { connectTrusted, type TrustDecision } from "../../client/connect.ts";
import {
  defaultConfigDir,
  hostKey,
  normaliseHost,
  probeCertificate,
  TrustStore,
} from "../../client/trust.ts";

// ---- fixtures -----------------------------------------------------------------------------

async function generated(): Promise<ServerCertificate> {
  const dir = await Deno.makeTempDir({ prefix: "cloud_trust_cert_" });
  try {
    return await loadOrCreateCertificate(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const CERT_A = await generated();
const CERT_B = await generated();

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

/** A certificate made here: self-signed with only `names`, or issued by a throwaway CA. */
async function customCertificate(
  names: x509.JsonGeneralName[],
  issuedByCa: boolean,
): Promise<{ certPem: string; keyPem: string; fingerprint: string }> {
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const common = {
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: ALG,
  };
  const leafExtensions = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension(names),
  ];
  let cert: x509.X509Certificate;
  if (issuedByCa) {
    const caKeys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      ...common,
      serialNumber: "01",
      name: "CN=Throwaway test CA",
      keys: caKeys,
      extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
    });
    cert = await x509.X509CertificateGenerator.create({
      ...common,
      serialNumber: "02",
      subject: "CN=test server",
      issuer: ca.subject,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      extensions: leafExtensions,
    });
  } else {
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      ...common,
      serialNumber: "03",
      name: "CN=test server",
      keys,
      extensions: leafExtensions,
    });
  }
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certPem: cert.toString("pem"),
    keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
    fingerprint: await fingerprintOf(cert.rawData),
  };
}

interface TestServer extends AsyncDisposable {
  port: number;
  /** Application bytes received over all connections. */
  received(): number;
  /** Connections accepted. */
  accepted(): number;
}

/** A TLS echo server on loopback, port 0 unless given. Counts what it receives. */
function echoServer(
  cert: { certPem: string; keyPem: string },
  options: { hostname?: string; port?: number; alpn?: string[] | null } = {},
): TestServer {
  const alpn = options.alpn === undefined ? ["cloud/1"] : options.alpn;
  const listener = Deno.listenTls({
    port: options.port ?? 0,
    hostname: options.hostname ?? "127.0.0.1",
    cert: cert.certPem,
    key: cert.keyPem,
    ...(alpn === null ? {} : { alpnProtocols: alpn }),
  });
  let received = 0;
  let accepted = 0;
  let closed = false;
  const tasks: Promise<void>[] = [];
  const serve = async (conn: Deno.TlsConn) => {
    try {
      await conn.handshake();
      const buffer = new Uint8Array(4096);
      for (let i = 0; i < 1000; i++) {
        const n = await conn.read(buffer);
        if (n === null) break;
        received += n;
        await conn.write(buffer.subarray(0, n));
      }
    } catch {
      // handshake refused or peer gone: that is what some tests provoke
    } finally {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  const loop = (async () => {
    for await (const conn of listener) {
      accepted++;
      tasks.push(serve(conn));
    }
  })();
  return {
    port: listener.addr.port,
    received: () => received,
    accepted: () => accepted,
    async [Symbol.asyncDispose]() {
      if (!closed) {
        closed = true;
        listener.close();
      }
      await loop.catch(() => {});
      await Promise.all(tasks);
    },
  };
}

/** A temporary CLOUD_CONFIG_DIR and a TrustStore in it, both undone on dispose. */
async function tempConfig(): Promise<{ dir: string; store: TrustStore } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "cloud_trust_config_" });
  const previous = Deno.env.get("CLOUD_CONFIG_DIR");
  Deno.env.set("CLOUD_CONFIG_DIR", dir);
  return {
    dir,
    store: new TrustStore(),
    async [Symbol.asyncDispose]() {
      if (previous === undefined) Deno.env.delete("CLOUD_CONFIG_DIR");
      else Deno.env.set("CLOUD_CONFIG_DIR", previous);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A loopback port with nothing listening on it. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: ErrorCode,
  check: (e: CloudError) => void = () => {},
): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof CloudError, `expected CloudError ${code}, got ${e}`);
    assert.equal(e.code, code, e.message);
    check(e);
    return true;
  });
}

/** Sends `text` on a trusted connection and reads the echo back. */
async function echo(conn: Deno.TlsConn, text: string): Promise<string> {
  const bytes = new TextEncoder().encode(text);
  await conn.write(bytes);
  const got = new Uint8Array(bytes.length);
  let filled = 0;
  while (filled < got.length) {
    const n = await conn.read(got.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return new TextDecoder().decode(got.subarray(0, filled));
}

// ---- configuration directory and store ----------------------------------------------------

Deno.test("defaultConfigDir() prefers CLOUD_CONFIG_DIR, then XDG_CONFIG_HOME/cloud, then ~/.config/cloud", () => {
  const saved = ["CLOUD_CONFIG_DIR", "XDG_CONFIG_HOME", "HOME"].map((k) => [k, Deno.env.get(k)]);
  try {
    Deno.env.set("HOME", "/home/ada");
    Deno.env.set("XDG_CONFIG_HOME", "/xdg");
    Deno.env.set("CLOUD_CONFIG_DIR", "/own");
    assert.equal(defaultConfigDir(), "/own");
    Deno.env.delete("CLOUD_CONFIG_DIR");
    assert.equal(defaultConfigDir(), "/xdg/cloud");
    Deno.env.set("XDG_CONFIG_HOME", "relative/ignored");
    assert.equal(defaultConfigDir(), "/home/ada/.config/cloud");
    Deno.env.delete("XDG_CONFIG_HOME");
    assert.equal(defaultConfigDir(), "/home/ada/.config/cloud");
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) Deno.env.delete(k!);
      else Deno.env.set(k!, v);
    }
  }
});

Deno.test("hostKey() lower-cases names and brackets canonical IPv6", () => {
  assert.equal(hostKey("Files.Example.LAN.", 7070), "files.example.lan:7070");
  assert.equal(hostKey("127.0.0.1", 1), "127.0.0.1:1");
  assert.equal(hostKey("::1", 7070), "[::1]:7070");
  assert.equal(hostKey("[0:0:0:0:0:0:0:1]", 7070), "[::1]:7070");
  assert.equal(hostKey("FD00::0:7", 65535), "[fd00::7]:65535");
  assert.equal(normaliseHost("[FE80::1]"), "fe80::1");
  assert.throws(() => hostKey("a", 0), RangeError);
  assert.throws(() => hostKey("a", 65536), RangeError);
  assert.throws(() => hostKey("a", 1.5), RangeError);
  assert.throws(() => hostKey(" ", 1), TypeError);
});

Deno.test("TrustStore pins, lists and removes entries in known_hosts.json with mode 0600", async () => {
  await using config = await tempConfig();
  const { store, dir } = config;
  assert.equal(store.path, join(dir, "known_hosts.json"));
  assert.equal(await store.get("127.0.0.1", 7070), undefined);
  assert.deepEqual(await store.list(), []);

  const pinned = await store.pin(
    "LOCALHOST",
    7070,
    formatFingerprint(CERT_A.fingerprint),
    CERT_A.certPem,
  );
  assert.equal(pinned.fingerprint, CERT_A.fingerprint);
  await store.pin("[::1]", 7071, CERT_B.fingerprint.toUpperCase(), CERT_B.certPem);
  assert.equal(((await Deno.stat(store.path)).mode ?? 0) & 0o777, 0o600);

  // Another instance (another process) reads the same pins; keys are normalised.
  const again = new TrustStore(dir);
  assert.deepEqual(await again.get("localhost", 7070), pinned);
  assert.equal((await again.get("0::1", 7071))?.fingerprint, CERT_B.fingerprint);
  assert.equal(await again.get("localhost", 7071), undefined);
  assert.deepEqual(
    (await again.list()).map((e) => [e.key, e.host, e.port, e.fingerprint]),
    [
      ["[::1]:7071", "::1", 7071, CERT_B.fingerprint],
      ["localhost:7070", "localhost", 7070, CERT_A.fingerprint],
    ],
  );
  const json = JSON.parse(await Deno.readTextFile(store.path));
  assert.equal(json.version, 1);
  assert.deepEqual(Object.keys(json.hosts).sort(), ["[::1]:7071", "localhost:7070"]);
  assert.match(json.hosts["localhost:7070"].addedAt, /^\d{4}-\d\d-\d\dT/);

  assert.equal(await again.remove("localhost", 7070), true);
  assert.equal(await again.remove("localhost", 7070), false);
  assert.equal(await store.get("localhost", 7070), undefined);
  // Atomic writes leave no temporary files behind.
  const names = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  assert.deepEqual(names, ["known_hosts.json"]);
});

Deno.test("TrustStore keeps concurrent pins from one process", async () => {
  await using config = await tempConfig();
  await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) => config.store.pin("127.0.0.1", 8000 + i, CERT_A.fingerprint, CERT_A.certPem),
    ),
  );
  assert.equal((await config.store.list()).length, 10);
});

Deno.test("TrustStore refuses a malformed known_hosts.json (SyntaxError) and a bad fingerprint (TypeError)", async () => {
  await using config = await tempConfig();
  await assert.rejects(
    config.store.pin("127.0.0.1", 7070, "sha256:1234", CERT_A.certPem),
    TypeError,
  );
  await Deno.writeTextFile(config.store.path, "{ not json");
  await assert.rejects(config.store.get("127.0.0.1", 7070), SyntaxError);
  await Deno.writeTextFile(
    config.store.path,
    JSON.stringify({ version: 1, hosts: { "a:1": { fingerprint: "xyz" } } }),
  );
  await assert.rejects(config.store.list(), SyntaxError);
});

// ---- probe ---------------------------------------------------------------------------------

Deno.test("probeCertificate() returns the server's certificate over TLS 1.3 and sends no data", async () => {
  await using server = echoServer(CERT_A);
  const probe = await probeCertificate("127.0.0.1", server.port, { timeoutMs: 5000 });
  assert.equal(probe.fingerprint, CERT_A.fingerprint);
  assert.equal(probe.selfSigned, true);
  assert.equal(probe.alpnProtocol, "cloud/1");
  assert.equal(probe.tlsVersion, "TLSv1.3");
  assert.equal(
    await fingerprintOf(x509.PemConverter.decodeFirst(probe.certPem)),
    CERT_A.fingerprint,
  );
  await server[Symbol.asyncDispose]();
  assert.equal(server.accepted(), 1);
  assert.equal(server.received(), 0);
});

Deno.test("probeCertificate() reports a closed port as E_UNREACHABLE", async () => {
  const port = closedPort();
  await rejectsWith(probeCertificate("127.0.0.1", port), "E_UNREACHABLE", (e) => {
    assert.equal(e.message, `Cannot reach 127.0.0.1:${port}: connection refused`);
  });
});

// ---- connectTrusted ------------------------------------------------------------------------

Deno.test("connectTrusted() with --trust pins on first contact, persists, and the connection works", async () => {
  await using config = await tempConfig();
  await using server = echoServer(CERT_A);
  const first = await connectTrusted({
    host: "127.0.0.1",
    port: server.port,
    trust: { trustOnFirstUse: true },
    store: config.store,
  });
  try {
    assert.equal(first.pinnedNow, true);
    assert.equal(first.fingerprint, CERT_A.fingerprint);
    assert.equal(first.selfSigned, true);
    assert.equal(await echo(first.conn, "hello"), "hello");
  } finally {
    first.conn.close();
  }
  const pin = await new TrustStore(config.dir).get("127.0.0.1", server.port);
  assert.equal(pin?.fingerprint, CERT_A.fingerprint);
  assert.equal(pin?.certPem.trim(), CERT_A.certPem.trim());
});

Deno.test("connectTrusted() reconnects to a pinned server without asking", async () => {
  await using config = await tempConfig();
  await using server = echoServer(CERT_A);
  await config.store.pin("127.0.0.1", server.port, CERT_A.fingerprint, CERT_A.certPem);
  let asked = 0;
  const again = await connectTrusted({
    host: "127.0.0.1",
    port: server.port,
    trust: { ask: () => Promise.resolve(++asked > 0) },
    store: config.store,
  });
  try {
    assert.equal(again.pinnedNow, false);
    assert.equal(again.fingerprint, CERT_A.fingerprint);
    assert.equal(await echo(again.conn, "again"), "again");
  } finally {
    again.conn.close();
  }
  assert.equal(asked, 0);
});

Deno.test("connectTrusted() refuses a changed certificate on the same host:port (E_TRUST, both fingerprints)", async () => {
  await using config = await tempConfig();
  let port: number;
  {
    await using original = echoServer(CERT_A);
    port = original.port;
    const first = await connectTrusted({
      host: "127.0.0.1",
      port,
      trust: { trustOnFirstUse: true },
      store: config.store,
    });
    first.conn.close();
  }
  await using impostor = echoServer(CERT_B, { port });
  for (const trust of [{}, { trustOnFirstUse: true }, { fingerprint: CERT_B.fingerprint }]) {
    await rejectsWith(
      connectTrusted({ host: "127.0.0.1", port, trust, store: config.store }),
      "E_TRUST",
      (e) => {
        assert.match(e.message, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
        assert.ok(e.message.includes(`pinned:   ${formatFingerprint(CERT_A.fingerprint)}`));
        assert.ok(e.message.includes(`received: ${formatFingerprint(CERT_B.fingerprint)}`));
        assert.ok(e.message.includes(config.store.path));
        assert.equal(e.exitCode, 9);
      },
    );
  }
  // The pin is unchanged and the impostor never received a byte.
  assert.equal((await config.store.get("127.0.0.1", port))?.fingerprint, CERT_A.fingerprint);
  await impostor[Symbol.asyncDispose]();
  assert.equal(impostor.received(), 0);
});

Deno.test("connectTrusted() refuses a certificate that differs from --fingerprint and pins nothing", async () => {
  await using config = await tempConfig();
  await using server = echoServer(CERT_A);
  await rejectsWith(
    connectTrusted({
      host: "127.0.0.1",
      port: server.port,
      trust: { fingerprint: formatFingerprint(CERT_B.fingerprint), trustOnFirstUse: true },
      store: config.store,
    }),
    "E_TRUST",
    (e) => {
      assert.ok(e.message.includes(`expected: ${formatFingerprint(CERT_B.fingerprint)}`));
      assert.ok(e.message.includes(`received: ${formatFingerprint(CERT_A.fingerprint)}`));
    },
  );
  assert.deepEqual(await config.store.list(), []);
  await rejectsWith(
    connectTrusted({
      host: "127.0.0.1",
      port: server.port,
      trust: { fingerprint: "sha256:nothex" },
      store: config.store,
    }),
    "E_INVALID",
  );
});

Deno.test("connectTrusted() accepts and pins a matching --fingerprint in openssl's colon form", async () => {
  await using config = await tempConfig();
  await using server = echoServer(CERT_A);
  const colons = CERT_A.fingerprint.toUpperCase().match(/../g)!.join(":");
  const result = await connectTrusted({
    host: "127.0.0.1",
    port: server.port,
    trust: { fingerprint: colons },
    store: config.store,
  });
  result.conn.close();
  assert.equal(result.pinnedNow, true);
  assert.equal((await config.store.get("127.0.0.1", server.port))?.fingerprint, CERT_A.fingerprint);
});

Deno.test("connectTrusted() asks on first contact: no refuses (E_TRUST, nothing pinned), yes pins", async () => {
  await using config = await tempConfig();
  await using server = echoServer(CERT_A);
  const questions: { host: string; port: number; fingerprint: string; selfSigned: boolean }[] = [];
  const ask = (answer: boolean): TrustDecision["ask"] => (info) => {
    questions.push({
      host: info.host,
      port: info.port,
      fingerprint: info.fingerprint,
      selfSigned: info.selfSigned,
    });
    return Promise.resolve(answer);
  };
  await rejectsWith(
    connectTrusted({
      host: "127.0.0.1",
      port: server.port,
      trust: { ask: ask(false) },
      store: config.store,
    }),
    "E_TRUST",
    (e) => assert.ok(e.message.includes(formatFingerprint(CERT_A.fingerprint)), e.message),
  );
  assert.deepEqual(questions, [
    { host: "127.0.0.1", port: server.port, fingerprint: CERT_A.fingerprint, selfSigned: true },
  ]);
  assert.deepEqual(await config.store.list(), []);

  // No way to decide at all: refused too.
  await rejectsWith(
    connectTrusted({ host: "127.0.0.1", port: server.port, trust: {}, store: config.store }),
    "E_TRUST",
    (e) => assert.match(e.message, /not trusted/),
  );

  const yes = await connectTrusted({
    host: "127.0.0.1",
    port: server.port,
    trust: { ask: ask(true) },
    store: config.store,
  });
  yes.conn.close();
  assert.equal(yes.pinnedNow, true);
  assert.equal(questions.length, 2);
  assert.equal((await config.store.get("127.0.0.1", server.port))?.fingerprint, CERT_A.fingerprint);
  await server[Symbol.asyncDispose]();
  assert.equal(server.received(), 0);
});

Deno.test("connectTrusted() works over IPv6 loopback and keys the pin as [::1]:port", async () => {
  await using config = await tempConfig();
  await using server = echoServer(CERT_A, { hostname: "::1" });
  const result = await connectTrusted({
    host: "[::1]",
    port: server.port,
    trust: { trustOnFirstUse: true },
    store: config.store,
  });
  try {
    assert.equal(await echo(result.conn, "six"), "six");
  } finally {
    result.conn.close();
  }
  assert.deepEqual((await config.store.list()).map((e) => e.key), [`[::1]:${server.port}`]);
});

Deno.test("connectTrusted() reports a port with nothing listening as E_UNREACHABLE at once", async () => {
  await using config = await tempConfig();
  const port = closedPort();
  const started = performance.now();
  await rejectsWith(
    connectTrusted({
      host: "127.0.0.1",
      port,
      trust: { trustOnFirstUse: true },
      store: config.store,
      timeoutMs: 5000,
    }),
    "E_UNREACHABLE",
    (e) => assert.match(e.message, /^Cannot reach 127\.0\.0\.1:\d+: connection refused$/),
  );
  assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
});

/** Asserts that a first contact with `port` fails E_UNREACHABLE on its timeout, pinning nothing. */
async function assertTimesOut(store: TrustStore, port: number, timeoutMs: number, maxMs: number) {
  const started = performance.now();
  await rejectsWith(
    connectTrusted({
      host: "127.0.0.1",
      port,
      trust: { trustOnFirstUse: true },
      store,
      timeoutMs,
    }),
    "E_UNREACHABLE",
    (e) => assert.match(e.message, new RegExp(`timed out after ${timeoutMs} ms`)),
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= timeoutMs - 10 && elapsed < maxMs, `took ${elapsed} ms`);
  assert.deepEqual(await store.list(), []);
}

Deno.test("connectTrusted() gives up on a TCP server that never speaks TLS within the timeout", async () => {
  await using config = await tempConfig();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const loop = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    await assertTimesOut(config.store, listener.addr.port, 300, 1500);
  } finally {
    listener.close();
    await loop.catch(() => {});
    for (const conn of held) conn.close();
  }
});

Deno.test("connectTrusted() times out when the probe succeeds but the real handshake stalls", async () => {
  // A TCP front that relays the first connection (the probe) to a real TLS server and
  // holds the second one (the real connection) silent.
  await using config = await tempConfig();
  await using backend = echoServer(CERT_A);
  const front = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const relays: Promise<unknown>[] = [];
  const loop = (async () => {
    let n = 0;
    for await (const conn of front) {
      conns.push(conn);
      if (n++ > 0) continue;
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: backend.port });
      conns.push(upstream);
      relays.push(
        conn.readable.pipeTo(upstream.writable).catch(() => {}),
        upstream.readable.pipeTo(conn.writable).catch(() => {}),
      );
    }
  })();
  try {
    await assertTimesOut(config.store, front.addr.port, 400, 2000);
  } finally {
    front.close();
    await loop.catch(() => {});
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // closed by the relay already
      }
    }
    await Promise.all(relays);
  }
});

Deno.test("connectTrusted() refuses a TLS server with another ALPN protocol or none (E_UNREACHABLE)", async () => {
  await using config = await tempConfig();
  for (const alpn of [["http/1.1"], null]) {
    await using server = echoServer(CERT_A, { alpn });
    await rejectsWith(
      connectTrusted({
        host: "127.0.0.1",
        port: server.port,
        trust: { trustOnFirstUse: true },
        store: config.store,
      }),
      "E_UNREACHABLE",
      (e) => assert.match(e.message, /not a cloud server/),
    );
  }
  assert.deepEqual(await config.store.list(), []);
});

Deno.test("connectTrusted() refuses a server that offers only TLS 1.2", async () => {
  await using config = await tempConfig();
  const server = tls.createServer({
    cert: CERT_A.certPem,
    key: CERT_A.keyPem,
    maxVersion: "TLSv1.2",
    ALPNProtocols: ["cloud/1"],
  }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const port = (server.address() as { port: number }).port;
    await rejectsWith(
      connectTrusted({
        host: "127.0.0.1",
        port,
        trust: { trustOnFirstUse: true },
        store: config.store,
      }),
      "E_UNREACHABLE",
      (e) => assert.match(e.message, /TLSv1\.2/),
    );
    assert.deepEqual(await config.store.list(), []);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

Deno.test("connectTrusted() checks a self-signed certificate without the pinned name against the host", async () => {
  await using config = await tempConfig();
  const cert = await customCertificate([{ type: "ip", value: "127.0.0.1" }], false);
  await using server = echoServer(cert);
  const result = await connectTrusted({
    host: "127.0.0.1",
    port: server.port,
    trust: { trustOnFirstUse: true },
    store: config.store,
  });
  result.conn.close();
  assert.equal(result.fingerprint, cert.fingerprint);

  // Reached under a name it does not carry, it is refused before anything is pinned.
  await rejectsWith(
    connectTrusted({
      host: "localhost",
      port: server.port,
      trust: { trustOnFirstUse: true },
      store: config.store,
    }),
    "E_TRUST",
  );
  assert.equal(await config.store.get("localhost", server.port), undefined);
});

Deno.test("connectTrusted() refuses a CA-issued certificate whose CA the system does not trust", async () => {
  await using config = await tempConfig();
  const cert = await customCertificate([{ type: "ip", value: "127.0.0.1" }], true);
  await using server = echoServer(cert);
  await rejectsWith(
    connectTrusted({
      host: "127.0.0.1",
      port: server.port,
      trust: { trustOnFirstUse: true },
      store: config.store,
    }),
    "E_TRUST",
    (e) => assert.match(e.message, /refused/),
  );
  assert.deepEqual(await config.store.list(), []);
});
