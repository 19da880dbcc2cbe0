/**
 * Reference: raw TLS 1.3 throughput over loopback with OpenSSL. `openssl s_server` (output
 * counted by `wc -c`) receives a file that `openssl s_client` sends; the time runs from
 * the client's spawn until the server side has counted every byte and exited.
 *
 * @module
 */

import { join } from "node:path";
import { check, freePort, timed, waitListening } from "./_util.ts";

/** Makes a self-signed ECDSA P-256 certificate (like `cloud serve`'s) in `dir`. */
export async function makeCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "tls-cert.pem");
  const key = join(dir, "tls-key.pem");
  check(
    await timed("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
    ]),
    "openssl req",
  );
  return { cert, key };
}

/**
 * Sends `file` (of `size` bytes) once over TLS 1.3 on 127.0.0.1 and returns the wall time
 * in milliseconds until the receiver had it all.
 */
export async function rawTlsOnce(
  file: string,
  size: number,
  pem: { cert: string; key: string },
): Promise<number> {
  const port = freePort();
  // s_server reads its own stdin too and shuts down at its EOF: keep a pipe open for it.
  const server = new Deno.Command("sh", {
    args: [
      "-c",
      'openssl s_server -quiet -naccept 1 -tls1_3 -accept "127.0.0.1:$1" -cert "$2" -key "$3" | wc -c',
      "sh",
      String(port),
      pem.cert,
      pem.key,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const serverDone = server.output();
  let client: Deno.ChildProcess | undefined;
  let clientDone: Promise<Deno.CommandOutput> | undefined;
  try {
    await waitListening(port);
    const start = performance.now();
    // -nocommands: the data is random, a line starting with "R" would otherwise renegotiate.
    client = new Deno.Command("sh", {
      args: [
        "-c",
        'exec openssl s_client -quiet -nocommands -no_ign_eof -tls1_3 -connect "127.0.0.1:$1" < "$2"',
        "sh",
        String(port),
        file,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    clientDone = client.output();
    const out = await withTimeout(serverDone, 300_000, "openssl s_server");
    const ms = performance.now() - start;
    const clientOut = await withTimeout(clientDone, 10_000, "openssl s_client");
    const received = Number(new TextDecoder().decode(out.stdout).trim());
    if (received !== size) {
      throw new Error(
        `Raw TLS: the server received ${received} of ${size} bytes (client exit ${clientOut.code}: ` +
          `${new TextDecoder().decode(clientOut.stderr).trim().split("\n").at(-1)})`,
      );
    }
    return ms;
  } finally {
    // s_server shuts down at the end of its stdin; the client is `exec`ed, so its PID is
    // openssl's own.
    await server.stdin.close().catch(() => {});
    if (client) {
      try {
        client.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    await withTimeout(Promise.allSettled([serverDone, clientDone]), 10_000, "openssl cleanup")
      .catch(() => {});
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
