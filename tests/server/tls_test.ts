import "reflect-metadata";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import {
  fingerprintOf,
  formatFingerprint,
  loadCertificate,
  loadOrCreateCertificate,
  parseFingerprint,
  PINNED_SERVER_NAME,
  type ServerCertificate,
} from "../../server/tls.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cloud_tls_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A TLS listener on 127.0.0.1:0 that completes handshakes and closes; stops on dispose. */
function handshakeServer(cert: ServerCertificate) {
  const listener = Deno.listenTls({
    port: 0,
    hostname: "127.0.0.1",
    cert: cert.certPem,
    key: cert.keyPem,
    alpnProtocols: ["cloud/1"],
  });
  const handshakes: Promise<void>[] = [];
  const loop = (async () => {
    for await (const conn of listener) {
      handshakes.push(
        conn.handshake().then(() => {}, () => {}).finally(() => {
          try {
            conn.close();
          } catch {
            // closed by the peer already
          }
        }),
      );
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop.catch(() => {});
      await Promise.all(handshakes);
    },
  };
}

/** openssl is on every machine of ours (a dependency of ca-certificates); skip loudly if not. */
const HAS_OPENSSL = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    console.warn("openssl not found: skipping the tests that compare with openssl");
    return false;
  }
})();

async function run(cmd: string, args: string[]): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test("loadOrCreateCertificate() generates once and re-reads the same certificate later", async () => {
  await withTempDir(async (dir) => {
    const first = await loadOrCreateCertificate(dir);
    assert.equal(first.selfSigned, true);
    assert.match(first.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(await Deno.readTextFile(join(dir, "tls", "cert.pem")), first.certPem);
    assert.equal(await Deno.readTextFile(join(dir, "tls", "key.pem")), first.keyPem);

    const second = await loadOrCreateCertificate(dir, { hostnames: ["other.example"] });
    assert.deepEqual(second, first);
    // Only the two files, no temporary leftovers.
    const names = [];
    for await (const entry of Deno.readDir(join(dir, "tls"))) names.push(entry.name);
    assert.deepEqual(names.sort(), ["cert.pem", "key.pem"]);
  });
});

Deno.test("loadOrCreateCertificate() keeps the key at mode 0600 in a 0700 directory", async () => {
  await withTempDir(async (dir) => {
    await loadOrCreateCertificate(dir);
    assert.equal((await Deno.stat(join(dir, "tls", "key.pem"))).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(join(dir, "tls"))).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(dir, "tls", "cert.pem"))).mode! & 0o077, 0o044 & 0o077);
  });
});

Deno.test("the generated certificate is a v3 ECDSA P-256 end-entity certificate for the pinned name and loopback", async () => {
  await withTempDir(async (dir) => {
    const { certPem, keyPem } = await loadOrCreateCertificate(dir, {
      hostnames: ["Files.Example.Lan", "[fd00::7]"],
    });
    const cert = new x509.X509Certificate(certPem);

    const basic = cert.getExtension(x509.BasicConstraintsExtension);
    assert.ok(basic);
    assert.equal(basic.ca, false);
    assert.equal(basic.critical, true);
    const usage = cert.getExtension(x509.KeyUsagesExtension);
    assert.ok(usage);
    assert.equal(usage.usages, x509.KeyUsageFlags.digitalSignature);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
    assert.deepEqual([...(eku?.usages ?? [])], [x509.ExtendedKeyUsage.serverAuth]);

    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    assert.ok(san);
    const names = san.names.items.map((n) => `${n.type}:${n.value}`);
    for (
      const expected of [
        `dns:${PINNED_SERVER_NAME}`,
        "dns:localhost",
        "dns:files.example.lan",
        "ip:127.0.0.1",
        "ip:::1",
        "ip:fd00::7",
      ]
    ) {
      assert.ok(names.includes(expected), `SAN ${names.join(", ")} lacks ${expected}`);
    }
    assert.equal(names[0], `dns:${PINNED_SERVER_NAME}`);

    assert.equal(cert.publicKey.algorithm.name, "ECDSA");
    assert.equal((cert.publicKey.algorithm as EcKeyAlgorithm).namedCurve, "P-256");
    assert.equal(cert.subject, cert.issuer);
    assert.ok(cert.notAfter.getTime() - Date.now() > 9 * 365 * 24 * 3600 * 1000);
    assert.ok(cert.notBefore.getTime() <= Date.now());
    assert.match(cert.serialNumber, /^[0-9a-f]{32}$/);
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);

    if (HAS_OPENSSL) {
      // openssl agrees on the version and extensions.
      const certFile = join(dir, "tls", "cert.pem");
      const text = await run("openssl", ["x509", "-in", certFile, "-noout", "-text"]);
      assert.equal(text.code, 0);
      assert.match(text.text, /Version: 3 \(0x2\)/);
      assert.match(text.text, /Basic Constraints: critical\s+CA:FALSE/);
      assert.match(text.text, /TLS Web Server Authentication/);
    }
  });
});

Deno.test({
  name: "the fingerprint is the SHA-256 that openssl x509 -fingerprint prints",
  ignore: !HAS_OPENSSL,
}, async () => {
  await withTempDir(async (dir) => {
    const cert = await loadOrCreateCertificate(dir);
    const out = await run("openssl", [
      "x509",
      "-in",
      join(dir, "tls", "cert.pem"),
      "-noout",
      "-fingerprint",
      "-sha256",
    ]);
    assert.equal(out.code, 0);
    const printed = out.text.trim().split("=")[1]!; // "sha256 Fingerprint=AB:CD:…"
    assert.equal(parseFingerprint(printed), cert.fingerprint);
  });
});

Deno.test({
  name: "Deno.listenTls serves the generated certificate with TLS 1.3 and ALPN cloud/1",
  ignore: !HAS_OPENSSL,
}, async () => {
  await withTempDir(async (dir) => {
    const cert = await loadOrCreateCertificate(dir);
    await using server = handshakeServer(cert);

    // Deno's own client, trusting only the pinned certificate under the fixed name.
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const conn = await Deno.startTls(tcp, {
      hostname: PINNED_SERVER_NAME,
      caCerts: [cert.certPem],
      alpnProtocols: ["cloud/1"],
    });
    try {
      assert.deepEqual({ ...(await conn.handshake()) }, { alpnProtocol: "cloud/1" });
    } finally {
      conn.close();
    }

    const tls13 = await run("openssl", [
      "s_client",
      "-tls1_3",
      "-alpn",
      "cloud/1",
      "-connect",
      `127.0.0.1:${server.port}`,
    ]);
    assert.match(tls13.text, /New, TLSv1\.3, Cipher is TLS_/);
    assert.match(tls13.text, /ALPN protocol: cloud\/1/);
  });
});

Deno.test({
  name: "Deno.listenTls also accepts a TLS 1.2-only client (Deno offers no minimum version)",
  ignore: !HAS_OPENSSL,
}, async () => {
  // A documented limitation, asserted so that a Deno upgrade that changes it is noticed:
  // Deno.listenTls has no option to refuse TLS 1.2. It negotiates 1.3 with every client
  // that offers it, and the cloud client refuses anything but 1.3 (see trust_test.ts).
  await withTempDir(async (dir) => {
    const cert = await loadOrCreateCertificate(dir);
    await using server = handshakeServer(cert);
    const tls12 = await run("openssl", [
      "s_client",
      "-brief",
      "-tls1_2",
      "-connect",
      `127.0.0.1:${server.port}`,
    ]);
    assert.match(tls12.text, /Protocol version: TLSv1\.2/);
  });
});

Deno.test("loadCertificate() reads a generated pair back with the same fingerprint", async () => {
  await withTempDir(async (dir) => {
    const generated = await loadOrCreateCertificate(dir);
    const loaded = await loadCertificate(join(dir, "tls", "cert.pem"), join(dir, "tls", "key.pem"));
    assert.deepEqual(loaded, generated);
  });
});

Deno.test("loadCertificate() reports a CA-issued leaf as not self-signed and fingerprints the leaf of a chain", async () => {
  await withTempDir(async (dir) => {
    const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const caKeys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01",
      name: "CN=Test CA",
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      signingAlgorithm: alg,
      keys: caKeys,
      extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
    });
    const leafKeys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: "02",
      subject: "CN=files.example.lan",
      issuer: ca.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      signingAlgorithm: alg,
      publicKey: leafKeys.publicKey,
      signingKey: caKeys.privateKey,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "files.example.lan" }]),
      ],
    });
    const certFile = join(dir, "chain.pem");
    const keyFile = join(dir, "leaf.key");
    await Deno.writeTextFile(certFile, `${leaf.toString("pem")}\n${ca.toString("pem")}\n`);
    const pkcs8 = await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey);
    await Deno.writeTextFile(keyFile, x509.PemConverter.encode(pkcs8, "PRIVATE KEY"));

    const loaded = await loadCertificate(certFile, keyFile);
    assert.equal(loaded.selfSigned, false);
    assert.equal(loaded.fingerprint, await fingerprintOf(leaf.rawData));
    assert.equal(loaded.certPem, await Deno.readTextFile(certFile));
  });
});

Deno.test("loadCertificate() names the file that is missing or not PEM", async () => {
  await withTempDir(async (dir) => {
    const generated = await loadOrCreateCertificate(dir);
    const keyFile = join(dir, "tls", "key.pem");
    const missing = join(dir, "nope.pem");
    await assert.rejects(loadCertificate(missing, keyFile), (e: Error) => {
      assert.ok(e.message.includes(`"${missing}"`), e.message);
      assert.ok(e.cause instanceof Deno.errors.NotFound);
      return true;
    });

    const garbage = join(dir, "garbage.pem");
    await Deno.writeTextFile(garbage, "hello, not a certificate\n");
    await assert.rejects(loadCertificate(garbage, keyFile), (e: Error) => {
      assert.ok(e instanceof SyntaxError);
      assert.ok(e.message.includes(`"${garbage}"`), e.message);
      return true;
    });
    // A certificate given as the key is refused too.
    const certFile = join(dir, "tls", "cert.pem");
    await assert.rejects(loadCertificate(certFile, certFile), (e: Error) => {
      assert.ok(e instanceof SyntaxError);
      assert.ok(e.message.includes("key"), e.message);
      return true;
    });
    assert.ok(generated.selfSigned);
  });
});

Deno.test("loadOrCreateCertificate() refuses a certificate whose key file is gone instead of replacing it", async () => {
  await withTempDir(async (dir) => {
    const generated = await loadOrCreateCertificate(dir);
    await Deno.remove(join(dir, "tls", "key.pem"));
    await assert.rejects(loadOrCreateCertificate(dir), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(join(dir, "tls", "cert.pem")), generated.certPem);
  });
});

Deno.test("parseFingerprint() accepts sha256:HEX, bare and colon-separated hex in any case", () => {
  const hex = "0123456789abcdef".repeat(4);
  assert.equal(parseFingerprint(hex), hex);
  assert.equal(parseFingerprint(`sha256:${hex.toUpperCase()}`), hex);
  assert.equal(parseFingerprint(`SHA256:${hex}`), hex);
  assert.equal(parseFingerprint(` ${hex.match(/../g)!.join(":").toUpperCase()} `), hex);
  assert.equal(formatFingerprint(hex.toUpperCase()), `sha256:${hex}`);
});

Deno.test("parseFingerprint() refuses wrong lengths, other digests and stray characters (TypeError)", () => {
  const hex = "ab".repeat(32);
  for (
    const bad of [
      "",
      hex.slice(2),
      hex + "ab",
      `sha1:${hex}`,
      `${hex.slice(2)}zz`,
      hex.match(/../g)!.join("-"),
      "ab:cd",
    ]
  ) {
    assert.throws(() => parseFingerprint(bad), TypeError, bad);
  }
});
