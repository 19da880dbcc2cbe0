import assert from "node:assert/strict";
import {
  encodeFrame,
  encodePreamble,
  FrameReader,
  FrameWriter,
  MAX_FRAME_BYTES,
} from "../../protocol/frame.ts";
import { e2eTest, type Fixture, GOOD_PASSWORD } from "./_harness.ts";

interface Raw {
  reader: FrameReader;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  conn: Deno.TlsConn;
}

async function raw(f: Fixture): Promise<Raw> {
  const conn = await f.server.rawConnect();
  return { conn, reader: new FrameReader(conn.readable), writer: conn.writable.getWriter() };
}

async function hello(r: Raw) {
  await r.writer.write(encodePreamble());
  assert.equal(await r.reader.readPreamble(), 1);
  const h = await r.reader.readFrame() as { t: string; version: number };
  assert.equal(h.t, "hello");
  assert.equal(h.version, 1);
}

async function expectError(r: Raw, code: string) {
  const frame = await r.reader.readFrame() as { t: string; code: string; message: string };
  assert.equal(frame?.t, "error", JSON.stringify(frame));
  assert.equal(frame.code, code, frame.message);
  assert.ok(frame.message.length > 0);
}

async function expectClosed(r: Raw) {
  assert.equal(await r.reader.readFrame(), null);
  try {
    r.conn.close();
  } catch {
    // the end of the readable side already closed it
  }
}

/** The server still serves a normal client. */
async function stillServing(f: Fixture) {
  const who = await f.as("ok@example.com", GOOD_PASSWORD, ["login"]);
  assert.equal(who.code, 0, who.stderr);
}

e2eTest("bad input gets a clear error code and the server keeps serving", async (f) => {
  assert.equal((await f.register("ok@example.com", GOOD_PASSWORD)).code, 0);

  // Wrong magic (an HTTP request, say): E_BAD_MAGIC, then closed.
  let r = await raw(f);
  await r.writer.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
  await r.reader.readExact(8); // the server's preamble
  await expectError(r, "E_BAD_MAGIC");
  await expectClosed(r);

  // A frame before the hello preamble is garbage too.
  r = await raw(f);
  await r.writer.write(encodeFrame({ t: "login", email: "a@b.c", password: "x" }));
  await r.reader.readExact(8);
  await expectError(r, "E_BAD_MAGIC");
  await expectClosed(r);

  // A future protocol version: E_VERSION (distinct from garbage), then closed.
  r = await raw(f);
  await r.writer.write(encodePreamble(2));
  assert.equal(await r.reader.readPreamble(), 1);
  await expectError(r, "E_VERSION");
  await expectClosed(r);

  // Oversized frame: refused on the header, then closed.
  r = await raw(f);
  await hello(r);
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, MAX_FRAME_BYTES + 1);
  await r.writer.write(header);
  await expectError(r, "E_FRAME_TOO_LARGE");
  await expectClosed(r);

  // Zero-length frame: E_BAD_FRAME, closed.
  r = await raw(f);
  await hello(r);
  await r.writer.write(new Uint8Array(4));
  await expectError(r, "E_BAD_FRAME");
  await expectClosed(r);

  // Recoverable errors keep the connection: invalid JSON, unknown type, bad schema,
  // file operations before login.
  r = await raw(f);
  await hello(r);
  const junk = new TextEncoder().encode("{not json");
  const junkHeader = new Uint8Array(4);
  new DataView(junkHeader.buffer).setUint32(0, junk.length);
  await r.writer.write(junkHeader);
  await r.writer.write(junk);
  await expectError(r, "E_BAD_JSON");
  await r.writer.write(encodeFrame({ t: "format-disk" }));
  await expectError(r, "E_UNKNOWN_TYPE");
  await r.writer.write(encodeFrame({ t: "login", email: 42 }));
  await expectError(r, "E_BAD_MESSAGE");
  await r.writer.write(encodeFrame(["login"]));
  await expectError(r, "E_BAD_MESSAGE");
  for (
    const op of [
      { t: "ls", path: "" },
      { t: "whoami" },
      { t: "get", path: "x", offset: 0 },
      { t: "rm", path: "x", recursive: false },
      { t: "mv", from: "a", to: "b", overwrite: false },
      { t: "mkdir", path: "x", parents: false },
      { t: "df" },
    ]
  ) {
    await r.writer.write(encodeFrame(op));
    await expectError(r, "E_NOT_LOGGED_IN");
  }
  // Same connection still works: log in properly.
  await r.writer.write(
    encodeFrame({ t: "login", email: "ok@example.com", password: GOOD_PASSWORD }),
  );
  const ok = await r.reader.readFrame() as { t: string; email: string };
  assert.equal(ok.t, "ok");
  assert.equal(ok.email, "ok@example.com");
  await r.writer.write(encodeFrame({ t: "bye" }));
  assert.equal((await r.reader.readFrame() as { t: string }).t, "ok");
  await expectClosed(r);

  // An inline upload before login is refused and ends the connection: skipping a
  // stranger's body would let anyone hold a connection open with an endless one.
  r = await raw(f);
  await hello(r);
  await r.writer.write(encodeFrame({
    t: "put",
    path: "x",
    size: 1e12,
    sha256: "0".repeat(64),
    overwrite: false,
    mode: "inline",
  }));
  await r.writer.write(new Uint8Array(1000));
  await expectError(r, "E_NOT_LOGGED_IN");
  await expectClosed(r);

  // A peer that vanishes mid-frame does not hurt the server.
  r = await raw(f);
  await hello(r);
  await r.writer.write(encodeFrame({ t: "whoami" }).slice(0, 3));
  r.conn.close();

  await stillServing(f);
  assert.ok(!f.server.lines.some((l) => /internal_error/.test(l)), f.server.lines.join("\n"));
});

e2eTest("an unauthenticated connection that stays silent is closed (E_IDLE)", async (f) => {
  const r = await raw(f);
  await hello(r);
  const started = performance.now();
  await expectError(r, "E_IDLE");
  await expectClosed(r);
  const waited = performance.now() - started;
  assert.ok(waited >= 900, `closed after ${waited} ms`);
}, ["--idle-timeout", "1s"]);

e2eTest(
  "FrameWriter over a real connection: many pipelined requests are answered in order",
  async (f) => {
    assert.equal((await f.register("ok@example.com", GOOD_PASSWORD)).code, 0);
    const conn = await f.server.rawConnect();
    const reader = new FrameReader(conn.readable);
    const writer = new FrameWriter(conn.writable);
    await writer.writePreamble();
    await reader.readPreamble();
    await reader.readFrame();
    await writer.writeFrame({ t: "login", email: "ok@example.com", password: GOOD_PASSWORD });
    for (let i = 0; i < 50; i++) await writer.writeFrame({ t: "whoami" });
    assert.equal((await reader.readFrame() as { t: string }).t, "ok");
    for (let i = 0; i < 50; i++) {
      const frame = await reader.readFrame() as { t: string; email: string };
      assert.equal(frame.email, "ok@example.com");
    }
    conn.close();
  },
);

async function openssl(args: string[]): Promise<{ code: number; out: string }> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await child.stdin.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, out: text };
}

e2eTest("the server speaks TLS 1.3 only, with ALPN cloud/1", async (f) => {
  const connect = `${f.server.host}:${f.server.port}`;
  const old = await openssl(["s_client", "-tls1_2", "-connect", connect, "-alpn", "cloud/1"]);
  assert.notEqual(old.code, 0, old.out);
  assert.match(old.out, /alert protocol version/);
  const modern = await openssl(["s_client", "-tls1_3", "-connect", connect, "-alpn", "cloud/1"]);
  assert.match(modern.out, /TLSv1\.3/);
  assert.match(modern.out, /ALPN protocol: cloud\/1/);
});
