/**
 * The server's TLS certificate: generated once (self-signed ECDSA P-256) and kept in
 * `<data>/tls/`, or loaded from files an administrator gives (`--tls-cert/--tls-key`).
 *
 * Also the SHA-256 fingerprint helpers that server and client share, and the fixed name
 * ({@linkcode PINNED_SERVER_NAME}) every generated certificate carries so that a client can
 * check a pinned certificate's name whatever address it used to reach the server.
 *
 * @module
 */

import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { isIP } from "node:net";
import { join } from "node:path";

/**
 * The DNS name every generated certificate carries in its SAN, and the name a client
 * checks when it connects with a pinned self-signed certificate as its only trusted root.
 *
 * `.invalid` is reserved (RFC 2606), so no public CA can issue a certificate for it: Deno
 * adds `caCerts` to the public roots instead of replacing them, and this name makes sure
 * only the pinned certificate can pass the check.
 */
export const PINNED_SERVER_NAME = "cloud.invalid";

/** The ALPN protocol of version 1 of the wire protocol. */
export const ALPN_PROTOCOL = "cloud/1";

/** A certificate and key ready for `Deno.listenTls`. */
export interface ServerCertificate {
  /** The certificate (the leaf first, then any chain) as PEM. */
  certPem: string;
  /** The private key as PEM. */
  keyPem: string;
  /** SHA-256 over the leaf certificate's DER, 64 lower-case hex digits. */
  fingerprint: string;
  /** True when the leaf certificate is self-signed (a client pins it on first use). */
  selfSigned: boolean;
}

/** Options of {@linkcode loadOrCreateCertificate}. */
export interface CertificateOptions {
  /**
   * Extra DNS names or IP addresses to put in the SAN of a newly generated certificate,
   * besides {@linkcode PINNED_SERVER_NAME}, `localhost`, the machine's host name, the
   * loopback addresses and the addresses of the machine's interfaces. Ignored when the
   * certificate already exists.
   */
  hostnames?: string[];
  /** Validity of a newly generated certificate in days. Default 3650 (ten years). */
  validityDays?: number;
}

const CERT_FILE = "cert.pem";
const KEY_FILE = "key.pem";
const DEFAULT_VALIDITY_DAYS = 3650;
const ALGORITHM: EcKeyGenParams & EcdsaParams = {
  name: "ECDSA",
  namedCurve: "P-256",
  hash: "SHA-256",
};
const DNS_NAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Formats a fingerprint for people and logs.
 *
 * @example
 * ```ts
 * formatFingerprint("ab".repeat(32)); // "sha256:abab…"
 * ```
 */
export function formatFingerprint(hex: string): string {
  return `sha256:${parseFingerprint(hex)}`;
}

/**
 * Parses a SHA-256 fingerprint given as `sha256:HEX`, bare `HEX` or colon-separated
 * `AB:CD:…` (as `openssl x509 -fingerprint` prints it), in any case.
 *
 * @returns 64 lower-case hex digits
 * @throws {TypeError} when the text is not a SHA-256 fingerprint
 */
export function parseFingerprint(text: string): string {
  let hex = text.trim();
  if (/^sha-?256:/i.test(hex)) hex = hex.slice(hex.indexOf(":") + 1);
  if (/^[0-9a-f]{2}(:[0-9a-f]{2}){31}$/i.test(hex)) hex = hex.replaceAll(":", "");
  if (!/^[0-9a-f]{64}$/i.test(hex)) {
    throw new TypeError(`Invalid SHA-256 fingerprint "${text}"`);
  }
  return hex.toLowerCase();
}

/** SHA-256 over DER bytes, as 64 lower-case hex digits. */
export async function fingerprintOf(der: BufferSource): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Loads the server certificate kept in `<dataDir>/tls/`, generating a self-signed one on
 * first start. The key file is written with mode 0600 in a directory with mode 0700; an
 * existing certificate is re-read, never regenerated, so its fingerprint stays the same.
 *
 * @example
 * ```ts
 * const tls = await loadOrCreateCertificate("./cloud-data");
 * const listener = Deno.listenTls({ port: 7070, cert: tls.certPem, key: tls.keyPem });
 * ```
 */
export async function loadOrCreateCertificate(
  dataDir: string,
  options: CertificateOptions = {},
): Promise<ServerCertificate> {
  const dir = join(dataDir, "tls");
  const certFile = join(dir, CERT_FILE);
  const keyFile = join(dir, KEY_FILE);
  if (await exists(certFile)) {
    if (!(await exists(keyFile))) {
      throw new Deno.errors.NotFound(
        `TLS certificate "${certFile}" has no key file "${keyFile}"; restore the key or remove the certificate to generate a new one`,
      );
    }
    return await loadCertificate(certFile, keyFile);
  }

  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(dir, 0o700);
  const generated = await generateCertificate(serverNames(options.hostnames ?? []), {
    validityDays: options.validityDays ?? DEFAULT_VALIDITY_DAYS,
  });
  // Key first: a crash between the two renames leaves a key without a certificate, which
  // the next start simply replaces; a certificate is never left without its key.
  await writeAtomic(keyFile, generated.keyPem, 0o600);
  await writeAtomic(certFile, generated.certPem, 0o644);
  return generated;
}

/**
 * Loads a certificate (CA-issued or other) and its private key from PEM files. The first
 * certificate in `certFile` is the leaf; any that follow are its chain.
 *
 * @throws {Error} when a file cannot be read, with the file name in the message
 * @throws {SyntaxError} when a file holds no PEM certificate or private key
 */
export async function loadCertificate(
  certFile: string,
  keyFile: string,
): Promise<ServerCertificate> {
  const certPem = await readPem(certFile, "certificate");
  const keyPem = await readPem(keyFile, "key");
  let leaf: x509.X509Certificate;
  try {
    const blocks = x509.PemConverter.decodeWithHeaders(certPem)
      .filter((b) => b.type === "CERTIFICATE");
    const first = blocks[0];
    if (first === undefined) throw new Error("no CERTIFICATE block");
    leaf = new x509.X509Certificate(first.rawData);
  } catch (e) {
    throw new SyntaxError(
      `TLS certificate "${certFile}" is not a PEM X.509 certificate: ${messageOf(e)}`,
      { cause: e },
    );
  }
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(keyPem)) {
    throw new SyntaxError(`TLS key "${keyFile}" is not a PEM private key`);
  }
  return {
    certPem,
    keyPem,
    fingerprint: await fingerprintOf(leaf.rawData),
    selfSigned: await isSelfSigned(leaf),
  };
}

/** Returns true when the certificate's issuer is its subject and it verifies with its own key. */
export async function isSelfSigned(cert: x509.X509Certificate): Promise<boolean> {
  try {
    return await cert.isSelfSigned();
  } catch {
    return false; // an algorithm WebCrypto cannot verify: not something we generated
  }
}

/** Generates a self-signed ECDSA P-256 server certificate for `names` (DNS names or IPs). */
async function generateCertificate(
  names: string[],
  { validityDays }: { validityDays: number },
): Promise<ServerCertificate> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: "CN=cloud server",
    notBefore: new Date(now - 60 * 60 * 1000), // tolerate clients whose clock is behind
    notAfter: new Date(now + validityDays * 24 * 60 * 60 * 1000),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((value): x509.JsonGeneralName => ({ type: isIP(value) ? "ip" : "dns", value })),
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certPem: cert.toString("pem") + "\n",
    keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") + "\n",
    fingerprint: await fingerprintOf(cert.rawData),
    selfSigned: true,
  };
}

/** The SAN entries of a generated certificate, deduplicated, the pinned name first. */
function serverNames(extra: string[]): string[] {
  const names = new Set<string>([PINNED_SERVER_NAME, "localhost", "127.0.0.1", "::1"]);
  for (const name of extra) {
    const value = normaliseName(name);
    if (value === undefined) throw new TypeError(`Invalid host name or address "${name}"`);
    names.add(value);
  }
  try {
    const host = normaliseName(Deno.hostname());
    if (host !== undefined) names.add(host);
  } catch {
    // no permission to read the host name: the fixed name is what clients check anyway
  }
  try {
    for (const iface of Deno.networkInterfaces()) {
      const address = normaliseName(iface.address);
      if (address !== undefined) names.add(address);
    }
  } catch {
    // as above
  }
  return [...names];
}

/** A DNS name lower-cased, or an IP address without brackets or zone; undefined if neither. */
function normaliseName(name: string): string | undefined {
  let value = name.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  value = value.replace(/%.*$/, ""); // IPv6 zone id
  if (isIP(value)) return value;
  return DNS_NAME.test(value) ? value : undefined;
}

/** 16 random bytes as a positive, minimally encoded DER INTEGER (hex). */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readPem(file: string, what: "certificate" | "key"): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    throw new Error(`Cannot read TLS ${what} "${file}": ${messageOf(e)}`, { cause: e });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await Deno.lstat(file);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Writes `text` to a temporary file beside `file`, fsyncs it and renames it into place. */
async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${crypto.randomUUID()}.tmp`;
  try {
    using handle = await Deno.open(tmp, { write: true, createNew: true, mode });
    const bytes = new TextEncoder().encode(text);
    for (let done = 0; done < bytes.length;) done += await handle.write(bytes.subarray(done));
    await handle.sync();
    await Deno.chmod(tmp, mode);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await Deno.rename(tmp, file);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
