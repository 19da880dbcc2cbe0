/**
 * The local-disk {@link Storage}: each user's files under `<data>/users/<id>/`, every
 * temporary and partial upload under `<data>/tmp/<id>/` (never under `users/`), so nothing
 * half-written is ever visible.
 *
 * - Uploads stream through a hashing, counting TransformStream into a temporary file with
 *   constant memory; the file is checked against the declared size and SHA-256, fsynced,
 *   then renamed into place atomically (or hard-linked, when not overwriting, so that an
 *   existing name is never replaced by a race) and the folder fsynced. A failed upload
 *   leaves the previous version intact.
 * - Resumable uploads keep `<key>.part` and a small `<key>.json` (path, size, sha256,
 *   created), the key being a hash of path, size and SHA-256. Resuming re-hashes the bytes
 *   held (streaming) and appends. On a full disk a partial keeps what was written: it
 *   counts toward the user's quota until it completes or expires, so it can resume once
 *   space is freed. A partial expires 24 h after its last progress (see `cleanup`).
 * - Two uploads never share a temporary file: a plain upload gets a fresh random one; a
 *   second upload of the same resumable content takes the first one over (see
 *   {@link Storage.openUpload}). Renames are atomic, so concurrent uploads of one name end
 *   with one complete version.
 * - Symbolic links are never followed: each existing component under the user's root is
 *   checked with lstat and a link is refused (E_BAD_NAME); a file opened for reading is
 *   compared (device, inode) with what lstat saw; listings skip links, devices, FIFOs and
 *   sockets. Users cannot make links through the protocol, so links only appear when
 *   someone puts them there on the host.
 * - One server process per data directory: `cleanup` removes every plain temporary that
 *   this process is not writing.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { resolve } from "node:path";
import { CloudError } from "../protocol/errors.ts";
import { baseName, isWithin, joinPath, parentOf, quoteName, validatePath } from "./names.ts";
import type { Storage, StoredObject, Upload, UploadSpec, WalkedFile } from "./storage.ts";

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const USER_DIR = /^[1-9][0-9]{0,15}$/;

type Found = { kind: "file" | "dir"; info: Deno.FileInfo; abs: string };
type Probe = Found | { kind: "missing" } | { kind: "blocked"; at: string };

/** The `code` of a Deno or Node error ("ENOSPC"), or null. */
function errorCode(error: unknown): unknown {
  return typeof error === "object" && error !== null ? (error as { code?: unknown }).code : null;
}

/** Disk full (or a disk quota) becomes E_NO_SPACE; anything else is returned as is. */
function mapFsError(error: unknown): unknown {
  const code = errorCode(error);
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new CloudError("E_NO_SPACE", "The server has no space left for this file");
  }
  return error;
}

async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw mapFsError(error);
  }
}

function checkUserId(userId: number): number {
  if (!Number.isSafeInteger(userId) || userId <= 0) {
    throw new RangeError(`User id must be a positive integer, got ${String(userId)}`);
  }
  return userId;
}

/** lstat, with null for a missing entry (or a path through a file). */
async function lstatOrNull(abs: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(abs);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw error;
  }
}

async function removeQuietly(abs: string): Promise<void> {
  try {
    await Deno.remove(abs);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function dirOf(abs: string): string {
  return abs.slice(0, abs.lastIndexOf("/"));
}

/** fsyncs a folder so a rename in it survives a crash; not possible everywhere. */
async function syncDir(abs: string): Promise<void> {
  try {
    using dir = await Deno.open(abs, { read: true });
    await dir.sync();
  } catch {
    // Some platforms cannot open or fsync a folder; the rename itself is still atomic.
  }
}

function notPlain(userPath: string, prefix: string): CloudError {
  return new CloudError(
    "E_BAD_NAME",
    prefix === userPath
      ? `Path ${quoteName(userPath)} is not a plain file or folder (links are never followed)`
      : `Path ${quoteName(userPath)} passes through ${
        quoteName(prefix)
      }, which is not a plain folder (links are never followed)`,
  );
}

function notFound(userPath: string): CloudError {
  return new CloudError("E_NOT_FOUND", `No such file or folder ${quoteName(userPath)}`);
}

function notAFolder(userPath: string): CloudError {
  return new CloudError("E_CONFLICT", `${quoteName(userPath)} is a file, not a folder`);
}

function isAFolder(userPath: string): CloudError {
  return new CloudError("E_CONFLICT", `${quoteName(userPath)} is a folder, not a file`);
}

/**
 * Looks a validated path up under `root`, lstat-ing every component: a link or special
 * file anywhere is refused; "blocked" means a file stands where a folder is needed.
 */
async function probe(root: string, path: string): Promise<Probe> {
  const segments = path.split("/");
  let abs = root;
  for (let i = 0; i < segments.length; i++) {
    abs += `/${segments[i]}`;
    const info = await lstatOrNull(abs);
    if (info === null) return { kind: "missing" };
    const last = i === segments.length - 1;
    const prefix = segments.slice(0, i + 1).join("/");
    if (info.isSymlink) throw notPlain(path, prefix);
    if (info.isDirectory) {
      if (last) return { kind: "dir", info, abs };
    } else if (info.isFile) {
      return last ? { kind: "file", info, abs } : { kind: "blocked", at: prefix };
    } else {
      throw notPlain(path, prefix);
    }
  }
  throw new RangeError("Empty path");
}

/** Creates the folders `segments` under `root` as needed (`mkdir -p`, never via links). */
async function ensureDirs(root: string, segments: string[], userPath: string): Promise<void> {
  let abs = root;
  for (let i = 0; i < segments.length; i++) {
    abs += `/${segments[i]}`;
    let info = await lstatOrNull(abs);
    if (info === null) {
      try {
        await Deno.mkdir(abs, { mode: DIR_MODE });
        continue;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        info = await Deno.lstat(abs);
      }
    }
    const prefix = segments.slice(0, i + 1).join("/");
    if (info.isSymlink || !(info.isDirectory || info.isFile)) throw notPlain(userPath, prefix);
    if (!info.isDirectory) throw notAFolder(prefix);
  }
}

/**
 * Moves a file to `dst` unless `dst` exists, atomically: a hard link fails on an existing
 * name, then the source name is removed. Falls back to check-then-rename where hard links
 * are not supported.
 */
async function placeNoClobber(src: string, dst: string, userPath: string): Promise<void> {
  try {
    await Deno.link(src, dst);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new CloudError("E_EXISTS", `${quoteName(userPath)} already exists`);
    }
    const code = errorCode(error);
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "EMLINK") {
      throw error;
    }
    if ((await lstatOrNull(dst)) !== null) {
      throw new CloudError("E_EXISTS", `${quoteName(userPath)} already exists`);
    }
    await Deno.rename(src, dst);
    return;
  }
  await Deno.remove(src);
}

function toObject(path: string, info: Deno.FileInfo): StoredObject {
  const type = info.isDirectory ? "dir" : "file";
  return {
    path,
    name: baseName(path),
    type,
    size: type === "file" ? info.size : 0,
    modified: info.mtime ?? new Date(0),
  };
}

function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  if (a.ino === null || b.ino === null) return true;
  return a.ino === b.ino && a.dev === b.dev;
}

/** A WritableStream onto an open file that leaves closing (and fsync) to the caller. */
function fileSink(file: Deno.FsFile): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      let done = 0;
      while (done < chunk.byteLength) done += await file.write(chunk.subarray(done));
    },
  });
}

async function readDirSorted(abs: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(abs)) entries.push(entry);
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Removes a folder tree without following links; counts the files and folders removed. */
async function removeTree(abs: string): Promise<number> {
  let count = 0;
  for (const entry of await readDirSorted(abs)) {
    const child = `${abs}/${entry.name}`;
    if (entry.isDirectory && !entry.isSymlink) {
      count += await removeTree(child);
    } else {
      await Deno.remove(child);
      if (entry.isFile) count++;
    }
  }
  await Deno.remove(abs);
  return count + 1;
}

async function* walkTree(
  userId: number,
  abs: string,
  rel: string,
): AsyncGenerator<WalkedFile> {
  for (const entry of await readDirSorted(abs)) {
    if (entry.isSymlink) continue;
    const child = `${abs}/${entry.name}`;
    const path = joinPath(rel, entry.name);
    if (entry.isDirectory) {
      yield* walkTree(userId, child, path);
    } else if (entry.isFile) {
      const info = await lstatOrNull(child);
      if (info === null || !info.isFile) continue;
      yield { ...toObject(path, info), type: "file", userId };
    }
  }
}

/** What a partial upload's `<key>.json` holds. */
interface PartialMeta {
  path: string;
  size: number;
  sha256: string;
  created: string;
}

function parseMeta(text: string): PartialMeta | null {
  try {
    const value = JSON.parse(text) as Partial<PartialMeta>;
    if (
      typeof value.path === "string" && typeof value.size === "number" &&
      typeof value.sha256 === "string" && typeof value.created === "string"
    ) {
      return value as PartialMeta;
    }
  } catch {
    // A meta file cut short by a crash: the partial starts over.
  }
  return null;
}

/** What a {@link LocalUpload} needs from its storage. */
interface UploadContext {
  root: string;
  path: string;
  spec: Required<Omit<UploadSpec, "modified">> & { modified: Date | null };
  temp: string;
  meta: string | null;
  release(upload: LocalUpload): void;
}

/** One upload into a {@link LocalStorage}. */
class LocalUpload implements Upload {
  readonly path: string;
  #ctx: UploadContext;
  #offset = 0;
  #hash: Hash = createHash("sha256");
  #state: "open" | "written" | "closed" = "open";
  #busy: Promise<unknown> | null = null;
  #takenOver = false;
  #abort = new AbortController();

  constructor(ctx: UploadContext) {
    this.#ctx = ctx;
    this.path = ctx.path;
  }

  get offset(): number {
    return this.#offset;
  }

  /** Re-hashes the bytes a resumable partial holds, so writing can continue after them. */
  resume(): Promise<unknown> {
    return this.#run(null, async () => {
      const { meta, temp, spec } = this.#ctx;
      if (meta === null) return;
      let current: PartialMeta | null = null;
      try {
        current = parseMeta(await Deno.readTextFile(meta));
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      if (
        current !== null && current.path === spec.path && current.size === spec.size &&
        current.sha256 === spec.sha256
      ) {
        let held = 0;
        try {
          using file = await Deno.open(temp, { read: true });
          const reader = file.readable.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            held += value.byteLength;
            this.#hash.update(value);
          }
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
        if (held <= spec.size) {
          this.#offset = held;
          return;
        }
        this.#hash = createHash("sha256");
      }
      await removeQuietly(temp);
      const fresh: PartialMeta = {
        path: spec.path,
        size: spec.size,
        sha256: spec.sha256,
        created: new Date().toISOString(),
      };
      await Deno.writeTextFile(meta, JSON.stringify(fresh), { mode: FILE_MODE });
    });
  }

  write(source: ReadableStream<Uint8Array>): Promise<void> {
    return this.#run("open", async () => {
      const { spec, temp, meta } = this.#ctx;
      const expected = spec.size - this.#offset;
      const hash = this.#hash;
      let received = 0;
      let keep = meta !== null;
      let file: Deno.FsFile | null = null;
      try {
        file = await Deno.open(
          temp,
          meta !== null
            ? { write: true, append: true, create: true, mode: FILE_MODE }
            : { write: true, createNew: true, mode: FILE_MODE },
        );
        const counter = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            if (received + chunk.byteLength > expected) {
              keep = false;
              throw new CloudError(
                "E_INTEGRITY",
                `Received more than the ${spec.size} bytes declared for ${quoteName(spec.path)}`,
              );
            }
            received += chunk.byteLength;
            hash.update(chunk);
            controller.enqueue(chunk);
          },
        });
        await source.pipeThrough(counter).pipeTo(fileSink(file), { signal: this.#abort.signal });
        if (received < expected) {
          throw new CloudError(
            "E_INTEGRITY",
            `Received ${this.#offset + received} of the ${spec.size} bytes declared for ${
              quoteName(spec.path)
            }`,
          );
        }
        if (hash.digest("hex") !== spec.sha256) {
          keep = false;
          throw new CloudError(
            "E_INTEGRITY",
            `SHA-256 of the bytes received does not match the one declared for ${
              quoteName(spec.path)
            }`,
          );
        }
        await file.sync();
        file.close();
        file = null;
        this.#state = "written";
      } catch (error) {
        try {
          file?.close();
        } catch {
          // Already closed.
        }
        this.#state = "closed";
        if (!keep) await this.#discard();
        this.#ctx.release(this);
        throw mapFsError(error);
      }
    });
  }

  commit(): Promise<StoredObject> {
    return this.#run("written", async () => {
      const { root, path, spec, temp, meta } = this.#ctx;
      try {
        if (spec.modified !== null) await Deno.utime(temp, spec.modified, spec.modified);
        const info = await Deno.lstat(temp);
        await ensureDirs(root, path.split("/").slice(0, -1), path);
        const target = `${root}/${path}`;
        const existing = await lstatOrNull(target);
        if (existing !== null) {
          if (existing.isSymlink || !(existing.isFile || existing.isDirectory)) {
            throw notPlain(path, path);
          }
          if (existing.isDirectory) throw isAFolder(path);
          if (!spec.overwrite) {
            throw new CloudError("E_EXISTS", `${quoteName(path)} already exists`);
          }
        }
        if (spec.overwrite) {
          try {
            await Deno.rename(temp, target);
          } catch (error) {
            if (error instanceof Deno.errors.IsADirectory) throw isAFolder(path);
            throw error;
          }
        } else {
          await placeNoClobber(temp, target, path);
        }
        await syncDir(dirOf(target));
        this.#committed = true;
        this.#state = "closed";
        if (meta !== null) await removeQuietly(meta);
        this.#ctx.release(this);
        return toObject(path, info);
      } catch (error) {
        if (this.#state !== "closed") {
          this.#state = "closed";
          if (meta === null) await this.#discard();
          this.#ctx.release(this);
        }
        throw mapFsError(error);
      }
    });
  }

  /** Set once the file is in place: nothing is left to clean up. */
  #committed = false;

  async abort(): Promise<void> {
    await this.#stop(new DOMException("The upload was aborted", "AbortError"));
    await this.#discard();
  }

  async close(): Promise<void> {
    await this.#stop(new DOMException("The upload was closed", "AbortError"));
    if (this.#ctx.meta === null && !this.#committed) await this.#discard();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Ends this upload because a newer one of the same content is starting; keeps the partial. */
  async takeOver(): Promise<void> {
    this.#takenOver = true;
    await this.#stop(
      new CloudError(
        "E_CONFLICT",
        `The upload of ${quoteName(this.path)} was taken over by a newer one`,
      ),
    );
  }

  /** True when a newer upload took this one over before it was returned. */
  get takenOver(): boolean {
    return this.#takenOver;
  }

  async #stop(reason: unknown): Promise<void> {
    this.#abort.abort(reason);
    while (this.#busy !== null) await this.#busy.catch(() => {});
    if (this.#state !== "closed") {
      this.#state = "closed";
      this.#ctx.release(this);
    }
  }

  async #discard(): Promise<void> {
    await guard(async () => {
      await removeQuietly(this.#ctx.temp);
      if (this.#ctx.meta !== null) await removeQuietly(this.#ctx.meta);
    });
  }

  async #run<T>(need: "open" | "written" | null, work: () => Promise<T>): Promise<T> {
    if (this.#busy !== null) throw new Error("The upload is busy with another operation");
    if (need !== null && this.#state !== need) {
      if (this.#takenOver) {
        throw new CloudError(
          "E_CONFLICT",
          `The upload of ${quoteName(this.path)} was taken over by a newer one`,
        );
      }
      throw new Error(
        this.#state === "closed"
          ? "The upload is closed"
          : `The upload is ${this.#state}, not ${need}`,
      );
    }
    const running = work();
    this.#busy = running;
    try {
      return await running;
    } finally {
      this.#busy = null;
    }
  }
}

/**
 * {@link Storage} on the local disk under a data directory.
 *
 * @example
 * ```ts
 * const storage = new LocalStorage("./cloud-data");
 * await storage.cleanup(24 * 60 * 60 * 1000);
 * const entries = await storage.list(userId, "");
 * ```
 */
export class LocalStorage implements Storage {
  /** The data directory, absolute. */
  readonly dataDir: string;
  #users: string;
  #tmp: string;
  #ready: Promise<void> | null = null;
  /** Resumable uploads in progress, by `<user id>/<key>`. */
  #resumable = new Map<string, LocalUpload>();
  /** Plain temporaries being written by this process. */
  #temps = new Set<string>();
  /** User roots and temporary folders already checked to be plain folders. */
  #checkedRoots = new Set<string>();

  /** Uses `dataDir` (created with `users/` and `tmp/` on first use, mode 0700). */
  constructor(dataDir: string) {
    this.dataDir = resolve(dataDir);
    this.#users = `${this.dataDir}/users`;
    this.#tmp = `${this.dataDir}/tmp`;
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      await Deno.mkdir(this.dataDir, { recursive: true, mode: DIR_MODE });
      for (const dir of [this.#users, this.#tmp]) {
        try {
          await Deno.mkdir(dir, { mode: DIR_MODE });
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        }
        const info = await Deno.lstat(dir);
        if (info.isSymlink || !info.isDirectory) {
          throw new Error(`Storage folder "${dir}" must be a plain folder`);
        }
      }
    })().catch((error) => {
      this.#ready = null;
      throw mapFsError(error);
    });
    return this.#ready;
  }

  /** The user's root folder (created when asked), checked not to be a link. */
  async #root(userId: number, create: boolean): Promise<string> {
    checkUserId(userId);
    await this.#init();
    const root = `${this.#users}/${userId}`;
    // Checked once per process: nothing but an administrator can replace it meanwhile.
    if (this.#checkedRoots.has(root)) return root;
    let info = await lstatOrNull(root);
    if (info === null && create) {
      try {
        await Deno.mkdir(root, { mode: DIR_MODE });
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
      info = await Deno.lstat(root);
    }
    if (info !== null && (info.isSymlink || !info.isDirectory)) {
      throw new CloudError("E_INTERNAL", `The folder of user ${userId} is not a plain folder`);
    }
    if (info !== null) this.#checkedRoots.add(root);
    return root;
  }

  openUpload(userId: number, spec: UploadSpec): Promise<Upload> {
    return guard(async () => {
      const path = validatePath(spec.path);
      if (!Number.isSafeInteger(spec.size) || spec.size < 0) {
        throw new RangeError(`Upload size must be a non-negative integer, got ${spec.size}`);
      }
      if (!SHA256_HEX.test(spec.sha256)) {
        throw new RangeError("Upload SHA-256 must be 64 lower-case hex digits");
      }
      if (spec.modified !== undefined && Number.isNaN(spec.modified.getTime())) {
        throw new RangeError("Upload modification time is not a valid date");
      }
      const overwrite = spec.overwrite ?? false;
      const resumable = spec.resumable ?? false;
      const root = await this.#root(userId, true);
      const existing = await probe(root, path);
      if (existing.kind === "dir") throw isAFolder(path);
      if (existing.kind === "blocked") throw notAFolder(existing.at);
      if (existing.kind === "file" && !overwrite) {
        throw new CloudError("E_EXISTS", `${quoteName(path)} already exists`);
      }
      const tmpDir = `${this.#tmp}/${userId}`;
      if (!this.#checkedRoots.has(tmpDir)) {
        try {
          await Deno.mkdir(tmpDir, { mode: DIR_MODE });
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        }
        const tmpInfo = await Deno.lstat(tmpDir);
        if (tmpInfo.isSymlink || !tmpInfo.isDirectory) {
          throw new CloudError(
            "E_INTERNAL",
            `The temporary folder of user ${userId} is not a plain folder`,
          );
        }
        this.#checkedRoots.add(tmpDir);
      }
      const full = {
        path,
        size: spec.size,
        sha256: spec.sha256,
        overwrite,
        resumable,
        modified: spec.modified ?? null,
      };
      if (!resumable) {
        const temp = `${tmpDir}/${crypto.randomUUID()}.tmp`;
        this.#temps.add(temp);
        return new LocalUpload({
          root,
          path,
          spec: full,
          temp,
          meta: null,
          release: () => this.#temps.delete(temp),
        });
      }
      const key = createHash("sha256")
        .update(JSON.stringify([path, spec.size, spec.sha256]))
        .digest("hex");
      const lockKey = `${userId}/${key}`;
      const upload = new LocalUpload({
        root,
        path,
        spec: full,
        temp: `${tmpDir}/${key}.part`,
        meta: `${tmpDir}/${key}.json`,
        release: (done) => {
          if (this.#resumable.get(lockKey) === done) this.#resumable.delete(lockKey);
        },
      });
      for (let holder = this.#resumable.get(lockKey); holder !== undefined;) {
        await holder.takeOver();
        holder = this.#resumable.get(lockKey);
      }
      this.#resumable.set(lockKey, upload);
      try {
        await upload.resume();
      } catch (error) {
        await upload.close();
        throw error;
      }
      if (upload.takenOver) {
        throw new CloudError(
          "E_CONFLICT",
          `The upload of ${quoteName(path)} was taken over by a newer one`,
        );
      }
      return upload;
    });
  }

  read(
    userId: number,
    rawPath: string,
    offset = 0,
  ): Promise<{ stream: ReadableStream<Uint8Array>; size: number; modified: Date }> {
    return guard(async () => {
      const path = validatePath(rawPath);
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new RangeError(`Read offset must be a non-negative integer, got ${offset}`);
      }
      const root = await this.#root(userId, false);
      const found = await probe(root, path);
      if (found.kind === "missing" || found.kind === "blocked") throw notFound(path);
      if (found.kind === "dir") throw isAFolder(path);
      const file = await Deno.open(found.abs, { read: true });
      try {
        const info = await file.stat();
        if (!info.isFile || !sameFile(info, found.info)) throw notPlain(path, path);
        if (offset > info.size) {
          throw new CloudError(
            "E_OFFSET",
            `Offset ${offset} is past the end of ${quoteName(path)} (${info.size} bytes)`,
            { offset: info.size },
          );
        }
        if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
        return { stream: file.readable, size: info.size, modified: info.mtime ?? new Date(0) };
      } catch (error) {
        file.close();
        throw error;
      }
    });
  }

  stat(userId: number, rawPath: string): Promise<StoredObject | null> {
    return guard(async () => {
      const path = validatePath(rawPath, { allowRoot: true });
      const root = await this.#root(userId, false);
      if (path === "") {
        const info = await lstatOrNull(root);
        return { path, name: "", type: "dir", size: 0, modified: info?.mtime ?? new Date(0) };
      }
      const found = await probe(root, path);
      return found.kind === "file" || found.kind === "dir" ? toObject(path, found.info) : null;
    });
  }

  list(userId: number, rawDir: string): Promise<StoredObject[]> {
    return guard(async () => {
      const dir = validatePath(rawDir, { allowRoot: true });
      let abs = await this.#root(userId, false);
      if (dir === "") {
        if ((await lstatOrNull(abs)) === null) return [];
      } else {
        const found = await probe(abs, dir);
        if (found.kind === "missing" || found.kind === "blocked") throw notFound(dir);
        if (found.kind === "file") throw notAFolder(dir);
        abs = found.abs;
      }
      const result: StoredObject[] = [];
      for (const entry of await readDirSorted(abs)) {
        if (entry.isSymlink) continue;
        const info = await lstatOrNull(`${abs}/${entry.name}`);
        if (info === null || !(info.isFile || info.isDirectory)) continue;
        result.push(toObject(joinPath(dir, entry.name), info));
      }
      return result;
    });
  }

  remove(userId: number, rawPath: string, recursive: boolean): Promise<number> {
    return guard(async () => {
      const path = validatePath(rawPath);
      const root = await this.#root(userId, false);
      const found = await probe(root, path);
      if (found.kind === "missing" || found.kind === "blocked") throw notFound(path);
      let removed = 1;
      if (found.kind === "file") {
        await Deno.remove(found.abs);
      } else if (recursive) {
        removed = await removeTree(found.abs);
      } else {
        try {
          await Deno.remove(found.abs);
        } catch (error) {
          if (errorCode(error) === "ENOTEMPTY" || errorCode(error) === "EEXIST") {
            throw new CloudError("E_CONFLICT", `Folder ${quoteName(path)} is not empty`);
          }
          throw error;
        }
      }
      await syncDir(dirOf(found.abs));
      return removed;
    });
  }

  rename(userId: number, rawFrom: string, rawTo: string, overwrite: boolean): Promise<void> {
    return guard(async () => {
      const from = validatePath(rawFrom);
      const to = validatePath(rawTo);
      const root = await this.#root(userId, false);
      const source = await probe(root, from);
      if (source.kind === "missing" || source.kind === "blocked") throw notFound(from);
      if (from === to) return;
      if (isWithin(to, from)) {
        throw new CloudError(
          "E_BAD_NAME",
          `Cannot move ${quoteName(from)} into itself (${quoteName(to)})`,
        );
      }
      const parent = parentOf(to);
      if (parent !== "") {
        const folder = await probe(root, parent);
        if (folder.kind === "missing") {
          throw new CloudError("E_NOT_FOUND", `No such folder ${quoteName(parent)}`);
        }
        if (folder.kind === "blocked") throw notAFolder(folder.at);
        if (folder.kind === "file") throw notAFolder(parent);
      }
      const target = await probe(root, to);
      const targetAbs = `${root}/${to}`;
      if (target.kind === "file" || target.kind === "dir") {
        if (!overwrite) throw new CloudError("E_EXISTS", `${quoteName(to)} already exists`);
        if (target.kind !== source.kind) {
          throw source.kind === "file" ? isAFolder(to) : notAFolder(to);
        }
        try {
          await Deno.rename(source.abs, targetAbs);
        } catch (error) {
          if (errorCode(error) === "ENOTEMPTY" || errorCode(error) === "EEXIST") {
            throw new CloudError("E_CONFLICT", `Folder ${quoteName(to)} is not empty`);
          }
          throw error;
        }
      } else if (source.kind === "file") {
        await placeNoClobber(source.abs, targetAbs, to);
      } else {
        await Deno.rename(source.abs, targetAbs);
      }
      await syncDir(dirOf(source.abs));
      if (dirOf(source.abs) !== dirOf(targetAbs)) await syncDir(dirOf(targetAbs));
    });
  }

  mkdir(userId: number, rawPath: string, parents: boolean): Promise<StoredObject> {
    return guard(async () => {
      const path = validatePath(rawPath);
      const root = await this.#root(userId, true);
      const parent = parentOf(path);
      if (parents) {
        await ensureDirs(root, parent === "" ? [] : parent.split("/"), path);
      } else if (parent !== "") {
        const folder = await probe(root, parent);
        if (folder.kind === "missing") {
          throw new CloudError("E_NOT_FOUND", `No such folder ${quoteName(parent)}`);
        }
        if (folder.kind === "blocked") throw notAFolder(folder.at);
        if (folder.kind === "file") throw notAFolder(parent);
      }
      const abs = `${root}/${path}`;
      try {
        await Deno.mkdir(abs, { mode: DIR_MODE });
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        const info = await Deno.lstat(abs);
        if (info.isSymlink || !(info.isFile || info.isDirectory)) throw notPlain(path, path);
        if (!parents || !info.isDirectory) {
          throw new CloudError("E_EXISTS", `${quoteName(path)} already exists`);
        }
      }
      return toObject(path, await Deno.lstat(abs));
    });
  }

  async *walk(userId?: number): AsyncIterable<WalkedFile> {
    await this.#init();
    let ids: number[];
    if (userId !== undefined) {
      ids = [checkUserId(userId)];
    } else {
      ids = [];
      for (const entry of await readDirSorted(this.#users)) {
        if (entry.isDirectory && !entry.isSymlink && USER_DIR.test(entry.name)) {
          ids.push(Number(entry.name));
        }
      }
      ids.sort((a, b) => a - b);
    }
    for (const id of ids) {
      const root = `${this.#users}/${id}`;
      const info = await lstatOrNull(root);
      if (info === null || info.isSymlink || !info.isDirectory) continue;
      yield* walkTree(id, root, "");
    }
  }

  partialBytes(userId: number): Promise<number> {
    return guard(async () => {
      checkUserId(userId);
      await this.#init();
      const dir = `${this.#tmp}/${userId}`;
      if ((await lstatOrNull(dir)) === null) return 0;
      let bytes = 0;
      for (const entry of await readDirSorted(dir)) {
        if (!entry.isFile || !entry.name.endsWith(".part")) continue;
        bytes += (await lstatOrNull(`${dir}/${entry.name}`))?.size ?? 0;
      }
      return bytes;
    });
  }

  quarantine(userId: number, path: string): Promise<string> {
    return guard(async () => {
      const valid = validatePath(path);
      const root = await this.#root(userId, false);
      const found = await probe(root, valid);
      if (found.kind !== "file") {
        throw new CloudError("E_NOT_FOUND", `No such file ${quoteName(valid)}`);
      }
      const stamp = new Date().toISOString().replaceAll(":", "-");
      const target = `${this.dataDir}/quarantine/${userId}/${stamp}/${valid}`;
      await Deno.mkdir(dirOf(target), { recursive: true, mode: DIR_MODE });
      await Deno.rename(found.abs, target);
      return target;
    });
  }

  removeUser(userId: number): Promise<void> {
    return guard(async () => {
      checkUserId(userId);
      await this.#init();
      for (const dir of [`${this.#users}/${userId}`, `${this.#tmp}/${userId}`]) {
        this.#checkedRoots.delete(dir);
        try {
          await Deno.remove(dir, { recursive: true });
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
      }
    });
  }

  cleanup(maxAgeMs: number): Promise<number> {
    return guard(async () => {
      await this.#init();
      const now = Date.now();
      const old = (info: Deno.FileInfo | null) =>
        info !== null && now - (info.mtime?.getTime() ?? 0) > maxAgeMs;
      let removed = 0;
      for (const top of await readDirSorted(this.#tmp)) {
        const abs = `${this.#tmp}/${top.name}`;
        if (top.isDirectory && USER_DIR.test(top.name)) {
          removed += await this.#cleanupUser(Number(top.name), abs, old);
        } else if (old(await lstatOrNull(abs))) {
          await Deno.remove(abs, { recursive: true });
          removed++;
        }
      }
      return removed;
    });
  }

  async #cleanupUser(
    userId: number,
    dir: string,
    old: (info: Deno.FileInfo | null) => boolean,
  ): Promise<number> {
    let removed = 0;
    const seen = new Set<string>();
    for (const entry of await readDirSorted(dir)) {
      const abs = `${dir}/${entry.name}`;
      const match = /^([0-9a-f]{64})\.(part|json)$/.exec(entry.name);
      if (entry.isFile && entry.name.endsWith(".tmp")) {
        if (this.#temps.has(abs)) continue;
        await removeQuietly(abs);
        removed++;
      } else if (entry.isFile && match !== null) {
        const key = match[1]!;
        if (seen.has(key) || this.#resumable.has(`${userId}/${key}`)) continue;
        seen.add(key);
        const part = await lstatOrNull(`${dir}/${key}.part`);
        const meta = await lstatOrNull(`${dir}/${key}.json`);
        // A part without its meta can never be resumed; otherwise age by the last progress.
        if ((part !== null && meta === null) || old(part ?? meta)) {
          await removeQuietly(`${dir}/${key}.part`);
          await removeQuietly(`${dir}/${key}.json`);
          removed++;
        }
      } else if (old(await lstatOrNull(abs))) {
        await Deno.remove(abs, { recursive: true });
        removed++;
      }
    }
    return removed;
  }
}
