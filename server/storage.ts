/**
 * Where file bytes live (SPEC.md section 7): a small interface the server, `cloud admin`
 * and fsck use, with the local disk (server/storage_local.ts) as its first implementation.
 * It is shaped so that an S3-compatible object store can be a second one:
 *
 * | operation | local disk | object store |
 * | --- | --- | --- |
 * | {@link Storage.openUpload} / {@link Upload.write} | temp file in `<data>/tmp/`, hashed on the fly | multipart upload, parts hashed on the fly |
 * | {@link Upload.commit} | fsync + atomic rename | complete multipart upload (conditional put when not overwriting) |
 * | {@link Storage.read} | open + seek | ranged GET |
 * | {@link Storage.stat} / {@link Storage.list} | lstat / readDir | HEAD / LIST with delimiter "/" |
 * | {@link Storage.mkdir} | mkdir | zero-byte "dir/" marker object |
 * | {@link Storage.rename} | rename | copy + delete (not atomic for folders) |
 *
 * Paths are relative to the user's root, "/"-separated, as returned by
 * `validatePath` (server/names.ts); the root is `""`. Implementations validate every
 * path again themselves, so a path never reaches the disk unchecked.
 *
 * Errors are `CloudError`s with these codes; callers map them to the wire as they are:
 * - `E_BAD_NAME`: the path is refused by validatePath, renames a folder into itself, or
 *   passes through something that is not a plain file or folder (a symbolic link — never
 *   followed — or a device, FIFO, socket).
 * - `E_NOT_FOUND`: the entry, or a folder it needs to be in, does not exist.
 * - `E_EXISTS`: the target exists and overwriting was not asked for (mkdir: the name is
 *   taken).
 * - `E_CONFLICT`: the wrong kind of entry — a file where a folder is needed or the
 *   reverse — or a non-empty folder removed without `recursive`, or a resumable upload
 *   held by an upload that cannot be taken over.
 * - `E_INTEGRITY`: uploaded bytes did not match the declared size or SHA-256.
 * - `E_NO_SPACE`: the disk (or object store) is full.
 * - `E_OFFSET`: a read offset past the end of the file.
 *
 * @module
 */

/** A file or folder as the storage sees it. */
export interface StoredObject {
  /** Path inside the user's root, as validatePath returns it (`""` for the root). */
  path: string;
  /** Last segment of `path`. */
  name: string;
  type: "file" | "dir";
  /** Bytes; 0 for folders. */
  size: number;
  /** Modification time. */
  modified: Date;
}

/** A stored file found by {@link Storage.walk}, with its owner. */
export interface WalkedFile extends StoredObject {
  userId: number;
  type: "file";
}

/** What a client declares when it starts an upload. */
export interface UploadSpec {
  /** Target path inside the user's root (its parent folders are created as needed). */
  path: string;
  /** Total size in bytes. */
  size: number;
  /** SHA-256 of the whole content, lower-case hex. */
  sha256: string;
  /** Replace an existing file at `path`. Default false: an existing name is E_EXISTS. */
  overwrite?: boolean;
  /**
   * Keep the bytes received so far when the transfer breaks, so that an upload of the same
   * path, size and SHA-256 resumes from them. Default false: a broken upload leaves
   * nothing. Partial uploads count toward the quota ({@link Storage.partialBytes}) and are
   * removed by {@link Storage.cleanup} after 24 h without progress.
   */
  resumable?: boolean;
  /** Modification time to give the stored file. Default: when it is committed. */
  modified?: Date;
}

/**
 * One upload in progress, from {@link Storage.openUpload}. Use it once:
 * `write` (all the bytes from {@link Upload.offset}), then `commit`; or `abort`. Disposing
 * it (`await using`) or calling `close` ends it without committing.
 *
 * @example
 * ```ts
 * await using upload = await storage.openUpload(userId, { path, size, sha256 });
 * await upload.write(body); // exactly size - upload.offset bytes
 * const stored = await upload.commit();
 * ```
 */
export interface Upload extends AsyncDisposable {
  /** Bytes the storage already holds for this upload (0 unless resuming). */
  readonly offset: number;
  /** The normalised target path. */
  readonly path: string;
  /**
   * Streams the rest of the content (bytes `offset` to `size`) from `source`, hashing as it
   * goes, with constant memory. Resolves once every byte is durably stored and size and
   * SHA-256 match the declaration. Throws E_INTEGRITY for a mismatch (too few, too many or
   * wrong bytes; a resumable partial is discarded then, except when the stream merely ended
   * early), E_NO_SPACE when the disk is full, or the source's own error when the stream
   * errors. After a failure the upload is closed: a resumable one keeps what it received,
   * anything else is removed. Call it even when nothing remains (size 0, or a resumable
   * upload that is already complete). Chunks must not be reused by the source once
   * enqueued.
   */
  write(source: ReadableStream<Uint8Array>): Promise<void>;
  /**
   * Makes the written file visible at its path, atomically: a reader sees the previous
   * version or the new one, never a mix. Refuses E_EXISTS when the name is taken and
   * overwrite was not asked for (a resumable upload then stays complete and can be
   * committed by a later upload with overwrite), E_CONFLICT when a folder is in the way.
   */
  commit(): Promise<StoredObject>;
  /** Discards everything received, a resumable partial included. Idempotent. */
  abort(): Promise<void>;
  /** Ends the upload without committing: keeps a resumable partial, removes a temporary. */
  close(): Promise<void>;
}

/** The storage of users' files. */
export interface Storage {
  /**
   * Begins an upload, or resumes a resumable one with the same path, size and SHA-256
   * (its {@link Upload.offset} then says where to continue). Refuses early with E_EXISTS
   * when the target exists and overwrite is off, E_CONFLICT when the target is a folder.
   * A second upload of the same resumable content takes it over: the first one's `write`
   * fails with E_CONFLICT (a client that reconnects must not wait for the old connection to
   * time out).
   */
  openUpload(userId: number, spec: UploadSpec): Promise<Upload>;
  /**
   * Opens a file for reading from `offset` (default 0). `size` is the whole file's size;
   * the stream yields `size - offset` bytes. The stream reads the version that was current
   * when it was opened, even if the file is replaced meanwhile. Cancel the stream to close
   * the file early.
   */
  read(
    userId: number,
    path: string,
    offset?: number,
  ): Promise<{ stream: ReadableStream<Uint8Array>; size: number; modified: Date }>;
  /**
   * The entry at `path` (`""` is the root folder, which always exists), or null when
   * nothing is there (or a file stands where a folder of the path should be).
   */
  stat(userId: number, path: string): Promise<StoredObject | null>;
  /** The entries of a folder (`""` is the root), sorted by name. */
  list(userId: number, dir: string): Promise<StoredObject[]>;
  /**
   * Removes a file or folder (a non-empty folder only with `recursive`). Returns the
   * number of files and folders removed.
   */
  remove(userId: number, path: string, recursive: boolean): Promise<number>;
  /**
   * Renames a file or folder. The target's parent folder must exist. An existing target
   * needs `overwrite` and the same kind (a file replaces a file, a folder replaces an empty
   * folder). Renaming a path to itself does nothing.
   */
  rename(userId: number, from: string, to: string, overwrite: boolean): Promise<void>;
  /**
   * Makes a folder. With `parents`, also its missing parents, and an existing folder is
   * fine (`mkdir -p`); without, the parent must exist and the name must be free.
   */
  mkdir(userId: number, path: string, parents: boolean): Promise<StoredObject>;
  /**
   * Every stored file, of one user or of all, for fsck. Folders and links are not listed;
   * paths are as found on disk, so names that validatePath would refuse (put there by
   * hand) are listed too, for fsck to report.
   */
  walk(userId?: number): AsyncIterable<WalkedFile>;
  /** Bytes held in the user's resumable partial uploads (they count toward the quota). */
  partialBytes(userId: number): Promise<number>;
  /** Removes everything stored for a user: their files and their partial uploads. */
  removeUser(userId: number): Promise<void>;
  /**
   * Moves a file out of the user's view into the server's quarantine (for `fsck --repair`
   * of a file whose bytes no longer match its record); returns where it went.
   */
  quarantine(userId: number, path: string): Promise<string>;
  /**
   * Removes temporaries left by earlier runs and partial uploads with no progress for
   * `maxAgeMs` (24 h at start). Uploads in progress in this process are kept. Returns how
   * many uploads or temporaries were removed.
   */
  cleanup(maxAgeMs: number): Promise<number>;
}
