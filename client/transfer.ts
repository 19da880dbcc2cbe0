/**
 * Verified, resumable uploads and downloads over a {@link CloudClient}. Files stream with
 * Web Streams (no whole-file buffers); small files are pipelined; large ones resume from
 * the offset the other side holds.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { CloudError } from "../protocol/errors.ts";
import { coalesce } from "../protocol/frame.ts";
import type { Entry, ResponseOf } from "../protocol/messages.ts";
import type { CloudClient } from "./client.ts";

/** Files up to this size are sent inline (no `ready` round trip) and pipelined. */
export const INLINE_LIMIT = 1024 * 1024;
/** Size of the reused buffer for reading local files. */
const READ_BUFFER_BYTES = 256 * 1024;
/** How many inline uploads may be in flight before their answers are read. */
const PIPELINE_DEPTH = 32;

/** Progress of one transfer. */
export interface ProgressSink {
  /** The transfer starts; `done` bytes are already there (resume). */
  start(label: string, total: number, done: number): void;
  /** More bytes moved. */
  advance(bytes: number): void;
  /** The transfer ended (ok or not). */
  stop(): void;
}

/** A sink that shows nothing. */
export const noProgress: ProgressSink = { start() {}, advance() {}, stop() {} };

/** SHA-256 of a local file, streamed. */
export async function hashFile(path: string, offset = 0, length?: number): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
  // One reused buffer: reading through `file.readable` allocates a chunk per read (2x slower).
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  let left = length ?? Infinity;
  while (left > 0) {
    const n = await file.read(buffer.subarray(0, Math.min(buffer.length, left)));
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    left -= n;
  }
  return hash.digest("hex");
}

/** Sends a local file's bytes from `offset` as a body of `length` bytes, through one buffer. */
async function sendFile(
  client: CloudClient,
  path: string,
  offset: number,
  length: number,
  progress: ProgressSink,
): Promise<void> {
  using file = await Deno.open(path, { read: true });
  if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
  const buffer = new Uint8Array(Math.min(READ_BUFFER_BYTES, Math.max(length, 1)));
  let left = length;
  while (left > 0) {
    const n = await file.read(buffer.subarray(0, Math.min(buffer.length, left)));
    if (n === null) {
      throw new CloudError("E_INTEGRITY", `"${path}" shrank while it was being sent`);
    }
    // The write resolves once the bytes are handed to TLS, so the buffer can be reused.
    await client.writer.writeBytes(buffer.subarray(0, n));
    progress.advance(n);
    left -= n;
  }
}

/** One file to upload. */
export interface UploadItem {
  local: string;
  remote: string;
}

/** Outcome of one upload or download. */
export type TransferResult =
  | { item: string; ok: true; entry?: Entry; resumedAt?: number }
  | { item: string; ok: false; error: CloudError };

/** Options of {@link uploadFiles}. */
export interface UploadOptions {
  overwrite: boolean;
  progress?: ProgressSink;
  /** Called once per file as it finishes. */
  onResult?: (result: TransferResult) => void;
}

interface Prepared extends UploadItem {
  size: number;
  sha256: string;
  mtime: number;
}

async function prepare(item: UploadItem): Promise<Prepared> {
  const info = await Deno.stat(item.local);
  if (!info.isFile) throw new CloudError("E_NOT_FOUND", `"${item.local}" is not a regular file`);
  return {
    ...item,
    size: info.size,
    sha256: await hashFile(item.local),
    mtime: info.mtime?.getTime() ?? Date.now(),
  };
}

function asCloudError(error: unknown): CloudError {
  if (error instanceof CloudError) return error;
  if (error instanceof Deno.errors.NotFound) {
    return new CloudError("E_NOT_FOUND", (error as Error).message);
  }
  throw error;
}

/**
 * Uploads files in order. Small files are pipelined (up to 32 in flight); large ones are
 * resumable: the server answers with the offset it already holds. Per-file failures
 * (exists, quota, integrity) are reported and the rest continue; a broken connection
 * throws.
 */
export async function uploadFiles(
  client: CloudClient,
  items: UploadItem[],
  options: UploadOptions,
): Promise<TransferResult[]> {
  const progress = options.progress ?? noProgress;
  const results: TransferResult[] = [];
  const report = (result: TransferResult) => {
    results.push(result);
    options.onResult?.(result);
  };
  const inFlight: Prepared[] = [];
  const settleOne = async () => {
    const item = inFlight.shift()!;
    try {
      const ok = await client.expectOk<"put">();
      report({ item: item.local, ok: true, entry: ok.entry });
    } catch (error) {
      report({ item: item.local, ok: false, error: asCloudError(error) });
    }
  };

  for (const item of items) {
    let prepared: Prepared;
    try {
      prepared = await prepare(item);
    } catch (error) {
      report({ item: item.local, ok: false, error: asCloudError(error) });
      continue;
    }
    const request = {
      t: "put" as const,
      path: prepared.remote,
      size: prepared.size,
      sha256: prepared.sha256,
      overwrite: options.overwrite,
      mtime: prepared.mtime,
    };
    if (prepared.size <= INLINE_LIMIT) {
      await client.writer.writeFrame({ ...request, mode: "inline" });
      progress.start(prepared.remote, prepared.size, 0);
      try {
        await sendFile(client, prepared.local, 0, prepared.size, progress);
      } finally {
        progress.stop();
      }
      inFlight.push(prepared);
      if (inFlight.length >= PIPELINE_DEPTH) await settleOne();
      continue;
    }
    while (inFlight.length > 0) await settleOne();
    await client.writer.writeFrame({ ...request, mode: "resumable" });
    let ready: ResponseOf<"ready">;
    try {
      const response = await client.readResponse();
      if (response.t !== "ready") {
        throw new CloudError("E_BAD_MESSAGE", `Expected ready, server sent "${response.t}"`);
      }
      ready = response;
    } catch (error) {
      report({ item: item.local, ok: false, error: asCloudError(error) });
      continue;
    }
    progress.start(prepared.remote, prepared.size, ready.offset);
    try {
      await sendFile(client, prepared.local, ready.offset, prepared.size - ready.offset, progress);
    } finally {
      progress.stop();
    }
    try {
      const ok = await client.expectOk<"put">();
      report({
        item: item.local,
        ok: true,
        entry: ok.entry,
        ...(ready.offset > 0 ? { resumedAt: ready.offset } : {}),
      });
    } catch (error) {
      report({ item: item.local, ok: false, error: asCloudError(error) });
    }
  }
  while (inFlight.length > 0) await settleOne();
  return results;
}

/** Where a download keeps its bytes until they are verified. */
export function partialPathFor(target: string): string {
  const name = basename(target);
  const hidden = `.${name}.cloud-part`;
  // Most file systems cap a name at 255 bytes, and the meta file adds ".json": a long name
  // keeps a prefix and a hash of the whole name instead.
  if (new TextEncoder().encode(hidden).length <= 250) return join(dirname(target), hidden);
  let prefix = "";
  let bytes = 0;
  for (const ch of name) {
    bytes += new TextEncoder().encode(ch).length;
    if (bytes > 180) break;
    prefix += ch;
  }
  const digest = createHash("sha256").update(name).digest("hex").slice(0, 16);
  return join(dirname(target), `.${prefix}~${digest}.cloud-part`);
}

interface PartialMeta {
  remote: string;
  sha256: string;
  size: number;
}

async function readMeta(path: string): Promise<PartialMeta | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as PartialMeta;
  } catch {
    return null;
  }
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return null;
  }
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  overwrite: boolean;
  progress?: ProgressSink;
  /** Aborts the transfer; with `keepPartial: false` nothing is left on disk. */
  signal?: AbortSignal;
  /** Keep the partial file after a failure so a later run resumes (default true). */
  keepPartial?: boolean;
}

/** A download whose local side is checked and whose resume offset is known. */
interface PreparedDownload {
  remote: string;
  target: string;
  partial: string;
  metaPath: string;
  meta: PartialMeta | null;
  offset: number;
}

/** Local checks before asking for bytes: the target, and a partial file to resume. */
async function prepareDownload(
  remote: string,
  target: string,
  overwrite: boolean,
): Promise<PreparedDownload> {
  if (!overwrite && (await sizeOf(target)) !== null) {
    throw new CloudError("E_EXISTS", `"${target}" exists; use --overwrite to replace it`);
  }
  const partial = partialPathFor(target);
  const metaPath = `${partial}.json`;
  const meta = await readMeta(metaPath);
  let offset = meta?.remote === remote ? (await sizeOf(partial)) ?? 0 : 0;
  if (meta && offset > meta.size) offset = 0;
  return { remote, target, partial, metaPath, meta, offset };
}

function sendGet(client: CloudClient, path: string, offset: number): Promise<void> {
  return client.writer.writeFrame({ t: "get", path, offset });
}

async function readData(client: CloudClient): Promise<ResponseOf<"data">> {
  const response = await client.readResponse();
  if (response.t !== "data") {
    throw new CloudError("E_BAD_MESSAGE", `Expected data, server sent "${response.t}"`);
  }
  return response;
}

/** The outcome of receiving one body. */
type Received =
  | { ok: true; size: number; sha256: string; resumedAt: number }
  | { ok: false; restart: true };

/**
 * Receives the body announced by `data` into the partial file, verifies it and renames it
 * into place. When a resumed partial belongs to an older version of the remote file, the
 * body is skipped and `restart` asks the caller to fetch it again from offset 0.
 */
async function receiveDownload(
  client: CloudClient,
  prepared: PreparedDownload,
  data: ResponseOf<"data">,
  options: DownloadOptions,
): Promise<Received> {
  const { remote, target, partial, metaPath, meta, offset } = prepared;
  if (offset > 0 && meta && data.sha256 !== meta.sha256) {
    await client.reader.skip(data.length);
    await Deno.remove(metaPath).catch(() => {});
    return { ok: false, restart: true };
  }
  const progress = options.progress ?? noProgress;
  if (data.size > INLINE_LIMIT) {
    // Only big downloads are worth resuming: remember what the partial file belongs to.
    await Deno.writeTextFile(
      metaPath,
      JSON.stringify({ remote, sha256: data.sha256, size: data.size } satisfies PartialMeta),
    );
  }
  const cleanup = async () => {
    await Deno.remove(partial).catch(() => {});
    await Deno.remove(metaPath).catch(() => {});
  };
  // Hash on the fly: the kept prefix of a resumed download first, then each new chunk.
  const hash = createHash("sha256");
  if (offset > 0) {
    using kept = await Deno.open(partial, { read: true });
    for await (const chunk of kept.readable) hash.update(chunk);
  }
  const file = await Deno.open(partial, {
    write: true,
    create: true,
    append: offset > 0,
    truncate: offset === 0,
  });
  progress.start(remote, data.size, offset);
  let completed = false;
  try {
    const counted = client.reader.body(data.length).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          hash.update(chunk);
          progress.advance(chunk.length);
          controller.enqueue(chunk);
        },
      }),
    ).pipeThrough(coalesce());
    await counted.pipeTo(
      new WritableStream<Uint8Array>({
        async write(chunk) {
          let done = 0;
          while (done < chunk.length) done += await file.write(chunk.subarray(done));
        },
      }),
      options.signal ? { signal: options.signal } : {},
    );
    completed = true;
  } finally {
    progress.stop();
    file.close();
    if (!completed && options.keepPartial === false) await cleanup();
    // A local failure (disk full, say) leaves body bytes on the wire: drop them so the
    // connection can go on. (An abort closes the connection instead.)
    if (!completed && !options.signal?.aborted) await client.reader.discardBody();
  }
  const actual = hash.digest("hex");
  if (actual !== data.sha256 || offset + data.length !== data.size) {
    await cleanup();
    throw new CloudError(
      "E_INTEGRITY",
      `Downloaded "${remote}" does not match the server's SHA-256 (got ${actual.slice(0, 16)}…)`,
    );
  }
  if (!options.overwrite && (await sizeOf(target)) !== null) {
    throw new CloudError(
      "E_EXISTS",
      `"${target}" appeared meanwhile; kept the download as "${partial}"`,
    );
  }
  await Deno.rename(partial, target);
  if (data.size > INLINE_LIMIT) await Deno.remove(metaPath).catch(() => {});
  const modified = new Date(data.modified);
  await Deno.utime(target, modified, modified).catch(() => {});
  return { ok: true, size: data.size, sha256: data.sha256, resumedAt: offset };
}

/**
 * Downloads `remote` to the local file `target`: bytes go to a hidden partial file next
 * to it, are verified against the server's SHA-256, then renamed into place. An existing
 * partial of the same content resumes from its size. Never overwrites `target` unless
 * `overwrite`.
 */
export async function downloadFile(
  client: CloudClient,
  remote: string,
  target: string,
  options: DownloadOptions,
): Promise<{ size: number; sha256: string; resumedAt: number }> {
  let prepared = await prepareDownload(remote, target, options.overwrite);
  for (let attempt = 0; attempt < 2; attempt++) {
    await sendGet(client, remote, prepared.offset);
    const received = await receiveDownload(client, prepared, await readData(client), options);
    if (received.ok) return received;
    // The remote file changed since the partial was written: start over.
    prepared = { ...prepared, meta: null, offset: 0 };
  }
  throw new CloudError("E_INTEGRITY", `"${remote}" keeps changing while it is downloaded`);
}

/** One file to download. */
export interface DownloadItem {
  remote: string;
  target: string;
}

/** How many `get` requests may be in flight before their answers are read. */
const GET_PIPELINE_DEPTH = 16;

/**
 * Downloads files in order, pipelining the requests (up to 16 ahead) so that many small
 * files do not each wait a round trip. Per-file failures are reported and the rest go on;
 * a broken connection throws.
 */
export async function downloadFiles(
  client: CloudClient,
  items: DownloadItem[],
  options: DownloadOptions & { onResult?: (result: TransferResult) => void },
): Promise<TransferResult[]> {
  const results: TransferResult[] = [];
  const report = (result: TransferResult) => {
    results.push(result);
    options.onResult?.(result);
  };
  const asked: PreparedDownload[] = [];
  const restarts: PreparedDownload[] = [];
  let next = 0;
  const askMore = async () => {
    while (next < items.length && asked.length < GET_PIPELINE_DEPTH) {
      const item = items[next++]!;
      try {
        const prepared = await prepareDownload(item.remote, item.target, options.overwrite);
        await sendGet(client, prepared.remote, prepared.offset);
        asked.push(prepared);
      } catch (error) {
        if (!(error instanceof CloudError)) throw error;
        report({ item: item.remote, ok: false, error });
      }
    }
  };
  await askMore();
  while (asked.length > 0) {
    const prepared = asked.shift()!;
    try {
      const received = await receiveDownload(client, prepared, await readData(client), options);
      if (received.ok) {
        report({
          item: prepared.remote,
          ok: true,
          ...(received.resumedAt > 0 ? { resumedAt: received.resumedAt } : {}),
        });
      } else {
        restarts.push({ ...prepared, meta: null, offset: 0 });
      }
    } catch (error) {
      if (!(error instanceof CloudError) || error.code === "E_BAD_FRAME") throw error;
      report({ item: prepared.remote, ok: false, error });
    }
    await askMore();
  }
  for (const prepared of restarts) {
    try {
      await sendGet(client, prepared.remote, 0);
      const received = await receiveDownload(client, prepared, await readData(client), options);
      if (received.ok) report({ item: prepared.remote, ok: true });
      else throw new CloudError("E_INTEGRITY", `"${prepared.remote}" keeps changing`);
    } catch (error) {
      if (!(error instanceof CloudError) || error.code === "E_BAD_FRAME") throw error;
      report({ item: prepared.remote, ok: false, error });
    }
  }
  return results;
}
