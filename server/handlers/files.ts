/**
 * File requests (SPEC section 6): ls, put, get, rm, mv, mkdir, df. Every name is checked
 * by server/names.ts before anything else; bytes go through the Storage interface and
 * their records through the Store.
 *
 * @module
 */

import { CloudError } from "../../protocol/errors.ts";
import { coalesce } from "../../protocol/frame.ts";
import type { Entry, RequestOf } from "../../protocol/messages.ts";
import {
  Deferred,
  type HandlerTable,
  type ServerContext,
  type Session,
  type SessionIo,
} from "../context.ts";
import { isWithin, joinPath, validatePath } from "../names.ts";
import type { StoredObject } from "../storage.ts";
import { KeyedMutex } from "../mutex.ts";

/** Bytes of entries in one `ls` page (a frame holds 64 KiB). */
const LS_PAGE_BYTES = 48 * 1024;
const encoder = new TextEncoder();

/** Serialises commit-and-record per (user, path) so disk and database agree. */
const pathLocks = new KeyedMutex();
const lockKey = (userId: number, path: string) => `${userId}\0${path}`;

function toEntry(object: StoredObject, sha256: string | null): Entry {
  return {
    name: object.name,
    type: object.type,
    size: object.type === "dir" ? 0 : object.size,
    sha256: object.type === "dir" ? null : sha256,
    modified: object.modified.getTime(),
  };
}

async function quotaOf(ctx: ServerContext, userId: number): Promise<number | null> {
  const user = await ctx.store.findUserById(userId);
  return user?.quotaBytes ?? ctx.limits.defaultQuota;
}

/** Bytes the user holds: recorded files plus partial uploads. */
async function usedBytes(ctx: ServerContext, userId: number): Promise<number> {
  const [usage, partial] = await Promise.all([
    ctx.store.usage(userId),
    ctx.storage.partialBytes(userId),
  ]);
  return usage.bytes + partial;
}

/** Checks size limits before any byte is accepted. */
async function checkLimits(
  ctx: ServerContext,
  session: Session,
  path: string,
  size: number,
  alreadyHeld: number,
): Promise<void> {
  const userId = session.userId!;
  const max = ctx.limits.maxFileSize;
  if (max !== null && size > max) {
    throw new CloudError("E_TOO_LARGE", `File of ${size} bytes exceeds the maximum of ${max}`);
  }
  const quota = await quotaOf(ctx, userId);
  if (quota === null) return;
  const existing = await ctx.store.getFile(userId, path);
  const used = (await usedBytes(ctx, userId)) + session.pendingBytes;
  const after = used - alreadyHeld - (existing?.size ?? 0) + size;
  if (after > quota) {
    throw new CloudError(
      "E_QUOTA",
      `Quota exceeded: ${size} more bytes would make ${after} of ${quota}`,
    );
  }
}

type PutRequest = RequestOf<"put">;

/** Reads exactly `length` body bytes into memory (inline uploads are at most 1 MiB). */
async function readBody(io: SessionIo, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let at = 0;
  for await (const chunk of io.reader.body(length)) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** Stores an upload whose bytes are at hand, then records it. */
async function store(
  ctx: ServerContext,
  session: Session,
  userId: number,
  path: string,
  request: PutRequest,
  resumable: boolean,
  /** Called once the storage knows the offset it holds; returns the bytes from there. */
  source: (offset: number) => Promise<ReadableStream<Uint8Array>>,
) {
  const upload = await ctx.storage.openUpload(userId, {
    path,
    size: request.size,
    sha256: request.sha256,
    overwrite: request.overwrite,
    resumable,
    ...(request.mtime !== undefined ? { modified: new Date(request.mtime) } : {}),
  });
  try {
    if (upload.offset > 0) {
      // The partial already counts toward the quota; check the rest fits.
      await checkLimits(ctx, session, path, request.size, upload.offset);
    }
    await upload.write(await source(upload.offset));
    const object = await pathLocks.run(lockKey(userId, path), async () => {
      const committed = await upload.commit();
      await ctx.store.putFile({
        userId,
        path,
        size: request.size,
        sha256: request.sha256,
        modified: committed.modified,
      });
      return committed;
    });
    ctx.log.event("put", { user: session.email, path, size: request.size });
    return { entry: toEntry(object, request.sha256) };
  } catch (error) {
    // A full disk is a broken upload, not an interrupted one: keeping the partial would
    // keep the disk full (the database too, when it lives in the data folder) for 24 h.
    if (error instanceof CloudError && error.code === "E_NO_SPACE") await upload.abort();
    throw error;
  } finally {
    await upload.close();
  }
}

/**
 * An inline upload: checks, then reads its body (always, so the framing holds), then
 * stores it in the background while the session reads the next request.
 */
async function putInline(
  ctx: ServerContext,
  session: Session,
  request: PutRequest,
  io: SessionIo,
): Promise<Deferred> {
  const userId = session.userId!;
  let path: string;
  try {
    if (request.size > ctx.limits.maxInlineBytes) {
      throw new CloudError("E_BAD_MESSAGE", "Inline uploads are limited to 1 MiB; use resumable");
    }
    path = validatePath(request.path);
    await checkLimits(ctx, session, path, request.size, 0);
  } catch (error) {
    await io.reader.skip(request.size);
    throw error;
  }
  const bytes = await readBody(io, request.size);
  session.pendingBytes += bytes.length;
  const result = store(
    ctx,
    session,
    userId,
    path,
    request,
    false,
    () => Promise.resolve(ReadableStream.from([bytes])),
  ).finally(() => {
    session.pendingBytes -= bytes.length;
  });
  return new Deferred(result);
}

/** A resumable upload: `ready` with the offset held, then the rest of the bytes. */
async function putResumable(
  ctx: ServerContext,
  session: Session,
  request: PutRequest,
  io: SessionIo,
) {
  const path = validatePath(request.path);
  await checkLimits(ctx, session, path, request.size, 0);
  let bodyStarted = false;
  try {
    return await store(ctx, session, session.userId!, path, request, true, async (offset) => {
      await io.writer.writeFrame({ t: "ready", offset });
      bodyStarted = true;
      return io.reader.body(request.size - offset).pipeThrough(coalesce());
    });
  } catch (error) {
    if (error instanceof CloudError && error.code === "E_BAD_FRAME") throw error;
    // Keep the framing: discard what is left of a started body.
    if (bodyStarted) await io.reader.discardBody();
    throw error;
  }
}

async function shaOf(ctx: ServerContext, userId: number, path: string): Promise<string> {
  const record = await ctx.store.getFile(userId, path);
  if (!record) {
    throw new CloudError("E_INTEGRITY", `No checksum recorded for "${path}"; run cloud admin fsck`);
  }
  return record.sha256;
}

/** Handlers of the file requests. */
export const fileHandlers: HandlerTable = {
  ls: async (ctx, session, request) => {
    const userId = session.userId!;
    const dir = validatePath(request.path, { allowRoot: true });
    const after = request.after;
    const objects = (await ctx.storage.list(userId, dir))
      .filter((o) => after === undefined || o.name > after)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const records = new Map(
      (await ctx.store.listFiles(userId, dir)).map((r) => [r.path, r.sha256]),
    );
    // One page must fit a control frame: stop well below the 64 KiB cap.
    const entries: Entry[] = [];
    let bytes = 0;
    for (const object of objects) {
      const entry = toEntry(object, records.get(joinPath(dir, object.name)) ?? null);
      bytes += encoder.encode(JSON.stringify(entry)).length + 1;
      if (bytes > LS_PAGE_BYTES && entries.length > 0) break;
      entries.push(entry);
    }
    const next = entries.length < objects.length ? entries[entries.length - 1]!.name : null;
    return { path: dir, entries, next };
  },

  put: (ctx, session, request, io) =>
    request.mode === "inline"
      ? putInline(ctx, session, request, io)
      : putResumable(ctx, session, request, io),

  get: async (ctx, session, request, io) => {
    const userId = session.userId!;
    const path = validatePath(request.path);
    const opened = await pathLocks.run(lockKey(userId, path), async () => {
      const reading = await ctx.storage.read(userId, path, 0);
      if (request.offset > reading.size) {
        await reading.stream.cancel();
        throw new CloudError(
          "E_OFFSET",
          `Offset ${request.offset} is past the end of "${path}" (${reading.size} bytes)`,
          { offset: reading.size },
        );
      }
      const sha256 = await shaOf(ctx, userId, path).catch(async (error) => {
        await reading.stream.cancel();
        throw error;
      });
      if (request.offset === 0) return { ...reading, sha256 };
      await reading.stream.cancel();
      return { ...(await ctx.storage.read(userId, path, request.offset)), sha256 };
    });
    const length = opened.size - request.offset;
    await io.writer.writeFrame({
      t: "data",
      size: opened.size,
      sha256: opened.sha256,
      offset: request.offset,
      length,
      modified: opened.modified.getTime(),
    });
    await io.writer.writeBody(opened.stream, length);
    ctx.log.event("get", { user: session.email, path, offset: request.offset, length });
    return null;
  },

  rm: async (ctx, session, request) => {
    const userId = session.userId!;
    const path = validatePath(request.path);
    return await pathLocks.run(lockKey(userId, path), async () => {
      const removed = await ctx.storage.remove(userId, path, request.recursive);
      await ctx.store.deleteTree(userId, path);
      ctx.log.event("rm", { user: session.email, path, removed });
      return { removed };
    });
  },

  mv: async (ctx, session, request) => {
    const userId = session.userId!;
    const from = validatePath(request.from);
    const to = validatePath(request.to);
    if (from === to) throw new CloudError("E_EXISTS", `"${to}" is the same name`);
    if (isWithin(to, from)) {
      throw new CloudError("E_BAD_NAME", `Cannot move "${from}" into itself`);
    }
    return await pathLocks.run(lockKey(userId, to), async () => {
      await ctx.storage.rename(userId, from, to, request.overwrite);
      if (request.overwrite) await ctx.store.deleteTree(userId, to);
      await ctx.store.renamePath(userId, from, to);
      const object = await ctx.storage.stat(userId, to);
      if (!object) throw new CloudError("E_NOT_FOUND", `"${to}" vanished`);
      const record = await ctx.store.getFile(userId, to);
      ctx.log.event("mv", { user: session.email, from, to });
      return { entry: toEntry(object, record?.sha256 ?? null) };
    });
  },

  mkdir: async (ctx, session, request) => {
    const path = validatePath(request.path);
    const object = await ctx.storage.mkdir(session.userId!, path, request.parents);
    return { entry: toEntry(object, null) };
  },

  df: async (ctx, session) => {
    const userId = session.userId!;
    const usage = await ctx.store.usage(userId);
    const partial = await ctx.storage.partialBytes(userId);
    return {
      used: usage.bytes + partial,
      quota: await quotaOf(ctx, userId),
      files: usage.files,
      maxFileSize: ctx.limits.maxFileSize,
    };
  },
};
