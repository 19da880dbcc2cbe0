/**
 * Helpers of the file-store end-to-end tests: local files of N random bytes, SHA-256 of a
 * file, a bounded poll, snapshots of a folder tree, the CLI against any server process
 * (a restarted one included), a spawned CLI that a test can kill, and a raw protocol
 * client for requests the CLI never sends.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { FrameReader, FrameWriter } from "../../protocol/frame.ts";
import { runCloud, type RunOptions, type RunResult, type ServerProcess } from "./_harness.ts";

const MAIN = join(resolve(import.meta.dirname!, "../.."), "main.ts");
const MIB = 1024 * 1024;
/** Largest buffer `crypto.getRandomValues` fills in one call. */
const RANDOM_CHUNK = 65536;

/** Fills `buffer` with cryptographically random bytes. */
export function fillRandom(buffer: Uint8Array): Uint8Array {
  for (let at = 0; at < buffer.length; at += RANDOM_CHUNK) {
    crypto.getRandomValues(buffer.subarray(at, Math.min(at + RANDOM_CHUNK, buffer.length)));
  }
  return buffer;
}

/** `n` random bytes. */
export function randomBytes(n: number): Uint8Array {
  return fillRandom(new Uint8Array(n));
}

/** SHA-256 of bytes, lower-case hex. */
export function sha256Of(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** SHA-256 of a local file, streamed, lower-case hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** A local file a test made: where it is, its size and its SHA-256. */
export interface MadeFile {
  path: string;
  size: number;
  sha256: string;
}

/**
 * Writes a file of `size` bytes at `path` (parent folders created) and returns its
 * SHA-256. Up to 16 MiB the bytes are all random; above, each 1 MiB chunk is one random
 * block stamped with its index and a random run id, which is as fast as the disk and still
 * makes every chunk (and every file) different.
 */
export async function makeFile(path: string, size: number): Promise<MadeFile> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  const hash = createHash("sha256");
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const fast = size > 16 * MIB;
  const block = randomBytes(Math.min(size, MIB));
  const view = new DataView(block.buffer);
  const run = crypto.getRandomValues(new Uint32Array(1))[0]!;
  let written = 0;
  for (let index = 0; written < size; index++) {
    const n = Math.min(MIB, size - written);
    if (fast && n >= 8) {
      view.setUint32(0, index);
      view.setUint32(4, run);
    } else if (!fast && index > 0) {
      fillRandom(block);
    }
    const chunk = block.subarray(0, n);
    hash.update(chunk);
    for (let done = 0; done < n;) done += await file.write(chunk.subarray(done));
    written += n;
  }
  return { path, size, sha256: hash.digest("hex") };
}

/** Writes `text` (or bytes) at `path`, parents created, and returns its MadeFile. */
export async function writeFile(path: string, content: string | Uint8Array): Promise<MadeFile> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  await Deno.writeFile(path, bytes);
  return { path, size: bytes.length, sha256: sha256Of(bytes) };
}

/** Size of a file, or null when it does not exist. */
export async function sizeOrNull(path: string): Promise<number | null> {
  try {
    return (await Deno.lstat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Whether anything exists at `path` (links not followed). */
export async function exists(path: string): Promise<boolean> {
  return (await sizeOrNull(path)) !== null;
}

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this long. Default 30 s. */
  timeoutMs?: number;
  /** Pause between probes. Default 20 ms. */
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns a value other than null, undefined or false, and returns
 * it. Bounded in time and in the number of probes; throws naming `what` when it gives up.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  const maxProbes = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < maxProbes && performance.now() <= deadline; i++) {
    const value = await probe();
    if (value !== null && value !== undefined && value !== false) return value as T;
    await new Promise((done) => setTimeout(done, intervalMs));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** One entry of a {@link tree} snapshot. */
export interface TreeEntry {
  /** Path relative to the snapshot's root, "/"-separated. */
  path: string;
  type: "file" | "dir" | "link" | "other";
  size: number;
}

/** Every entry under `root` (links not followed), sorted by path. */
export async function tree(root: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const entry of Deno.readDir(abs)) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      const info = await Deno.lstat(join(abs, entry.name));
      const type = info.isSymlink
        ? "link"
        : info.isDirectory
        ? "dir"
        : info.isFile
        ? "file"
        : "other";
      out.push({ path, type, size: type === "file" ? info.size : 0 });
      if (type === "dir") await walk(join(abs, entry.name), path);
    }
  };
  await walk(root, "");
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Files under `<data>/tmp/` (recursively) with their sizes. */
export async function tmpFiles(dataDir: string): Promise<TreeEntry[]> {
  const dir = join(dataDir, "tmp");
  if (!(await exists(dir))) return [];
  return (await tree(dir)).filter((e) => e.type === "file");
}

/** The largest resumable partial (`*.part`) the server holds in `<data>/tmp/`, in bytes. */
export async function largestPartial(dataDir: string): Promise<number> {
  let largest = 0;
  for (const file of await tmpFiles(dataDir)) {
    if (file.path.endsWith(".part")) largest = Math.max(largest, file.size);
  }
  return largest;
}

/** Runs `cloud connect` against `server` (the fixture's or a restarted one). */
export function cloudAt(
  server: ServerProcess,
  configDir: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return runCloud(connectArgs(server, args), {
    ...options,
    env: { CLOUD_CONFIG_DIR: configDir, ...options.env },
  });
}

/** Runs `cloud connect --email EMAIL` with CLOUD_PASSWORD against `server`. */
export function asAt(
  server: ServerProcess,
  configDir: string,
  email: string,
  password: string,
  args: string[],
): Promise<RunResult> {
  return cloudAt(server, configDir, ["--email", email, ...args], {
    env: { CLOUD_PASSWORD: password },
  });
}

function connectArgs(server: ServerProcess, args: string[]): string[] {
  return [
    "connect",
    "--host",
    server.address,
    "--fingerprint",
    `sha256:${server.fingerprint}`,
    ...args,
  ];
}

/**
 * Starts `cloud connect --email EMAIL ARGS...` against `server` as a child process and
 * returns it without waiting, so that a test can kill it mid-transfer. Its output is
 * piped: read it with `child.output()`.
 */
export function spawnCloud(
  server: ServerProcess,
  configDir: string,
  email: string,
  password: string,
  args: string[],
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--unstable-net",
      MAIN,
      ...connectArgs(server, ["--email", email, ...args]),
    ],
    env: {
      NO_COLOR: "1",
      RUST_BACKTRACE: "0",
      CLOUD_CONFIG_DIR: configDir,
      CLOUD_PASSWORD: password,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Kills a child process hard (by its own handle) and returns its exit status and output. */
export async function killHard(child: Deno.ChildProcess): Promise<Deno.CommandOutput> {
  try {
    child.kill("SIGKILL");
  } catch {
    // It already ended.
  }
  return await child.output();
}

/** An entry as `ls --json` prints it. */
export interface LsEntry {
  name: string;
  type: "file" | "dir";
  size: number;
  sha256: string | null;
  modified: number;
}

/** Parses `ls --json` output, asserting the CLI succeeded. */
export function parseLs(result: RunResult): LsEntry[] {
  assert.equal(result.code, 0, `ls failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as LsEntry[];
}

/** Entry names of an `ls --json`, sorted. */
export function namesOf(entries: LsEntry[]): string[] {
  return entries.map((e) => e.name).sort();
}

/** A frame as the server sends it. */
export type Frame = Record<string, unknown> & { t: string };

/**
 * A raw protocol connection (preamble, hello, frames, raw bodies) for requests the CLI
 * never sends: bad names, wrong hashes, uploads cut short.
 */
export class RawClient {
  readonly conn: Deno.TlsConn;
  readonly reader: FrameReader;
  readonly writer: FrameWriter;

  private constructor(conn: Deno.TlsConn) {
    this.conn = conn;
    this.reader = new FrameReader(conn.readable);
    this.writer = new FrameWriter(conn.writable);
  }

  /** Connects, exchanges preambles and reads the hello. */
  static async open(server: ServerProcess): Promise<RawClient> {
    const client = new RawClient(await server.rawConnect());
    await client.writer.writePreamble();
    assert.equal(await client.reader.readPreamble(), 1);
    const hello = await client.next();
    assert.equal(hello.t, "hello");
    return client;
  }

  /** Connects and logs in; asserts the login succeeded. */
  static async login(server: ServerProcess, email: string, password: string): Promise<RawClient> {
    const client = await RawClient.open(server);
    const ok = await client.request({ t: "login", email, password });
    assert.equal(ok.t, "ok", JSON.stringify(ok));
    return client;
  }

  /** Reads the next frame; fails the test on end of stream. */
  async next(): Promise<Frame> {
    const frame = await this.reader.readFrame();
    assert.ok(frame !== null, "the server closed the connection");
    return frame as Frame;
  }

  /** Sends a frame, and `body` right after it when given. */
  async send(frame: Record<string, unknown>, body?: Uint8Array): Promise<void> {
    await this.writer.writeFrame(frame);
    if (body !== undefined && body.length > 0) await this.writer.writeBytes(body);
  }

  /** Sends a frame (and body) and reads the answer. */
  async request(frame: Record<string, unknown>, body?: Uint8Array): Promise<Frame> {
    await this.send(frame, body);
    return await this.next();
  }

  /** Sends a request and asserts an `error` answer with `code`. */
  async expectError(frame: Record<string, unknown>, code: string, body?: Uint8Array) {
    const answer = await this.request(frame, body);
    assert.equal(answer.t, "error", `${JSON.stringify(frame)} got ${JSON.stringify(answer)}`);
    assert.equal(answer.code, code, `${JSON.stringify(frame)}: ${String(answer.message)}`);
    return answer;
  }

  /** Uploads `bytes` to `path` inline; returns the answer. */
  putInline(
    path: string,
    bytes: Uint8Array,
    options: { sha256?: string; overwrite?: boolean } = {},
  ) {
    return this.request({
      t: "put",
      path,
      size: bytes.length,
      sha256: options.sha256 ?? sha256Of(bytes),
      overwrite: options.overwrite ?? false,
      mode: "inline",
    }, bytes);
  }

  /**
   * Uploads `bytes` to `path` resumably: sends the request, expects `ready`, sends the
   * bytes from its offset (only `sendBytes` of them when given, then stops) and returns
   * the final answer (or the `ready` frame when the body was cut short).
   */
  async putResumable(
    path: string,
    bytes: Uint8Array,
    options: { sha256?: string; overwrite?: boolean; sendBytes?: number } = {},
  ): Promise<Frame> {
    const ready = await this.request({
      t: "put",
      path,
      size: bytes.length,
      sha256: options.sha256 ?? sha256Of(bytes),
      overwrite: options.overwrite ?? false,
      mode: "resumable",
    });
    if (ready.t !== "ready") return ready;
    const offset = ready.offset as number;
    const end = options.sendBytes === undefined ? bytes.length : offset + options.sendBytes;
    await this.writer.writeBytes(bytes.subarray(offset, end));
    if (end < bytes.length) return ready;
    return await this.next();
  }

  /** Downloads a whole file; returns its bytes and the data frame. */
  async get(path: string): Promise<{ data: Frame; bytes: Uint8Array }> {
    const data = await this.request({ t: "get", path, offset: 0 });
    assert.equal(data.t, "data", JSON.stringify(data));
    const bytes = await this.reader.readExact(data.length as number);
    return { data, bytes: bytes ?? new Uint8Array(0) };
  }

  /**
   * Closes the connection (no goodbye, as a crash would). The pending read is cancelled
   * first: while a read is in flight, closing the resource alone does not close the socket.
   */
  async close(): Promise<void> {
    await this.reader.cancel();
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}
