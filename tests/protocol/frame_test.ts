import assert from "node:assert/strict";
import { CloudError } from "../../protocol/errors.ts";
import {
  decodePreamble,
  encodeFrame,
  encodePreamble,
  FrameReader,
  FrameWriter,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
} from "../../protocol/frame.ts";
import { parseRequest } from "../../protocol/messages.ts";

/** A stream that yields `bytes` cut at the given offsets. */
function chunked(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const points = [0, ...cuts.filter((c) => c > 0 && c < bytes.length), bytes.length];
  const chunks = points.slice(1).map((end, i) => bytes.slice(points[i], end));
  return ReadableStream.from(chunks);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CloudError) return error.code;
    throw error;
  }
  return "no error";
}

Deno.test("preamble round-trips and refuses a wrong magic (E_BAD_MAGIC)", () => {
  assert.equal(decodePreamble(encodePreamble(7)), 7);
  const bad = encodePreamble();
  bad[0] = 0x47; // "G" as in "GET / HTTP/1.1"
  assert.throws(() => decodePreamble(bad), (e: CloudError) => e.code === "E_BAD_MAGIC");
});

Deno.test("frames and bodies decode the same whatever the chunk boundaries", async () => {
  const body = new Uint8Array(1000).map((_, i) => i % 251);
  const wire = concat(
    encodePreamble(),
    encodeFrame({ t: "put", n: 1 }),
    body,
    encodeFrame({ t: "ls", path: "ä/ö" }),
  );
  const splits = [[], [1], [3, 4, 5], [8, 9, 10, 11, 12], [wire.length - 1]];
  for (let i = 1; i < wire.length; i += 37) splits.push([i, i + 1, i + 2]);
  splits.push(Array.from({ length: wire.length }, (_, i) => i)); // one byte at a time
  for (const cuts of splits) {
    const reader = new FrameReader(chunked(wire, cuts));
    assert.equal(await reader.readPreamble(), PROTOCOL_VERSION);
    assert.deepEqual(await reader.readFrame(), { t: "put", n: 1 });
    const received = new Uint8Array(await new Response(reader.body(body.length)).arrayBuffer());
    assert.deepEqual(received, body);
    assert.deepEqual(await reader.readFrame(), { t: "ls", path: "ä/ö" });
    assert.equal(await reader.readFrame(), null);
  }
});

Deno.test("a frame over the cap is refused before its payload is read (E_FRAME_TOO_LARGE)", async () => {
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, MAX_FRAME_BYTES + 1);
  // No payload follows: the reader must refuse on the header alone.
  const reader = new FrameReader(ReadableStream.from([header]));
  assert.equal(await codeOf(reader.readFrame()), "E_FRAME_TOO_LARGE");
  assert.throws(
    () => encodeFrame({ t: "x", pad: "x".repeat(MAX_FRAME_BYTES) }),
    (e: CloudError) => e.code === "E_FRAME_TOO_LARGE",
  );
});

Deno.test("an empty frame, a truncated frame and a truncated body are E_BAD_FRAME", async () => {
  assert.equal(
    await codeOf(new FrameReader(ReadableStream.from([new Uint8Array(4)])).readFrame()),
    "E_BAD_FRAME",
  );
  const frame = encodeFrame({ t: "whoami" });
  assert.equal(
    await codeOf(new FrameReader(ReadableStream.from([frame.slice(0, 6)])).readFrame()),
    "E_BAD_FRAME",
  );
  assert.equal(
    await codeOf(new FrameReader(ReadableStream.from([frame.slice(0, 2)])).readFrame()),
    "E_BAD_FRAME",
  );
  const reader = new FrameReader(ReadableStream.from([new Uint8Array(10)]));
  assert.equal(await codeOf(new Response(reader.body(20)).arrayBuffer()), "E_BAD_FRAME");
});

Deno.test("a payload that is not UTF-8 JSON is E_BAD_JSON", async () => {
  for (const payload of [new TextEncoder().encode("{nope"), new Uint8Array([0xff, 0xfe, 0x7b])]) {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, payload.length);
    const reader = new FrameReader(ReadableStream.from([concat(header, payload)]));
    assert.equal(await codeOf(reader.readFrame()), "E_BAD_JSON");
  }
});

Deno.test("parseRequest() sorts unknown types, bad shapes and extra fields", () => {
  const code = (value: unknown) => {
    try {
      parseRequest(value);
      return "ok";
    } catch (error) {
      return (error as CloudError).code;
    }
  };
  assert.equal(code({ t: "whoami" }), "ok");
  assert.equal(code({ t: "rm -rf" }), "E_UNKNOWN_TYPE");
  assert.equal(code({ t: "__proto__" }), "E_UNKNOWN_TYPE");
  assert.equal(code([1, 2]), "E_BAD_MESSAGE");
  assert.equal(code("login"), "E_BAD_MESSAGE");
  assert.equal(code(null), "E_BAD_MESSAGE");
  assert.equal(code({ t: 5 }), "E_BAD_MESSAGE");
  assert.equal(code({ t: "login", email: "a@b.c" }), "E_BAD_MESSAGE");
  assert.equal(code({ t: "login", email: "a@b.c", password: 5 }), "E_BAD_MESSAGE");
  assert.equal(code({ t: "whoami", extra: 1 }), "E_BAD_MESSAGE");
  assert.equal(
    code({
      t: "put",
      path: "a",
      size: -1,
      sha256: "0".repeat(64),
      overwrite: false,
      mode: "inline",
    }),
    "E_BAD_MESSAGE",
  );
  assert.equal(
    code({ t: "put", path: "a", size: 1, sha256: "XYZ", overwrite: false, mode: "inline" }),
    "E_BAD_MESSAGE",
  );
  assert.equal(
    code({
      t: "put",
      path: "a",
      size: 1.5,
      sha256: "0".repeat(64),
      overwrite: false,
      mode: "inline",
    }),
    "E_BAD_MESSAGE",
  );
});

Deno.test("FrameWriter.writeBody() refuses a source that is shorter or longer than declared", async () => {
  const sink = new WritableStream<Uint8Array>();
  const writer = new FrameWriter(sink);
  assert.equal(
    await codeOf(writer.writeBody(ReadableStream.from([new Uint8Array(3)]), 5)),
    "E_INTEGRITY",
  );
  assert.equal(
    await codeOf(writer.writeBody(ReadableStream.from([new Uint8Array(8)]), 5)),
    "E_INTEGRITY",
  );
});
