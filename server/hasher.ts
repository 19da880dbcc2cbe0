/**
 * bcrypt off the main thread: a small pool of Web Workers running `bcryptjs`, so that a
 * cost-12 hash (~280 ms of CPU) never stalls the event loop and the other clients.
 *
 * Single-file worker: `deno bundle` does not include a worker's separate file, so this
 * module is its own worker. The pool starts `new Worker(import.meta.url, { name:
 * HASHER_WORKER_NAME })`; in a worker with that name the module only registers its message
 * handler. Bundled, `import.meta.url` is the bundle, so the whole program is evaluated in
 * each worker: the program's entry must do nothing there —
 * `if (import.meta.main && !isHasherWorker()) main();` — and no module may do significant
 * work at import time.
 *
 * @module
 */

import bcrypt from "bcryptjs";

/** The `name` the pool gives its workers; a worker with this name serves hashing. */
export const HASHER_WORKER_NAME = "cloud-bcrypt-worker";

/** bcrypt reads at most this many bytes of a password. */
const BCRYPT_MAX_BYTES = 72;

const BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A request to a worker. */
type Request =
  | { id: number; op: "hash"; password: string; cost: number }
  | { id: number; op: "compare"; password: string; hash: string };

/** A worker's answer. */
type Reply =
  | { id: number; ok: true; value: string | boolean }
  | { id: number; ok: false; error: string };

/**
 * True when this code runs inside one of the pool's workers. Program entry points must
 * not start when it is true (see the module documentation).
 */
export function isHasherWorker(): boolean {
  const scope = (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope;
  return typeof scope === "function" && globalThis instanceof scope &&
    (globalThis as { name?: unknown }).name === HASHER_WORKER_NAME;
}

if (isHasherWorker()) serveWorker();

/** Worker side: answers each request with bcryptjs' synchronous functions. */
function serveWorker(): void {
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent<Request>) => void) | null;
    postMessage(reply: Reply): void;
  };
  scope.onmessage = (event) => {
    const request = event.data;
    try {
      const value = request.op === "hash"
        ? bcrypt.hashSync(request.password, bcrypt.genSaltSync(request.cost))
        : bcrypt.compareSync(request.password, request.hash);
      scope.postMessage({ id: request.id, ok: true, value });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      scope.postMessage({ id: request.id, ok: false, error: message });
    }
  };
}

/** Options of {@link HasherPool}. */
export interface HasherPoolOptions {
  /** Number of workers; default `min(2, navigator.hardwareConcurrency)`. */
  size?: number;
  /** bcrypt cost (log2 of the rounds), 4–31. The server's default is 12. */
  cost: number;
}

interface Job {
  request: Request;
  resolve(value: string | boolean): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
}

/**
 * A pool of bcrypt workers with a FIFO job queue. Workers start in the constructor;
 * {@link HasherPool.close} must be called to let the process exit.
 *
 * @example
 * ```ts
 * const pool = new HasherPool({ cost: 12 });
 * const hash = await pool.hash("correct horse battery staple");
 * await pool.compare("correct horse battery staple", hash); // true
 * pool.close();
 * ```
 */
export class HasherPool {
  /** The bcrypt cost of new hashes and of the dummy hash. */
  readonly cost: number;
  /** Number of workers. */
  readonly size: number;
  #slots: Slot[] = [];
  #queue: Job[] = [];
  #nextId = 1;
  #closed = false;
  readonly #dummyHash: string;

  constructor(options: HasherPoolOptions) {
    const { cost } = options;
    if (!Number.isInteger(cost) || cost < 4 || cost > 31) {
      throw new RangeError(`bcrypt cost must be an integer from 4 to 31, got ${cost}`);
    }
    const size = options.size ?? Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1));
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`Pool size must be a positive integer, got ${size}`);
    }
    this.cost = cost;
    this.size = size;
    this.#dummyHash = makeDummyHash(cost);
    for (let i = 0; i < size; i++) this.#slots.push(this.#spawn());
  }

  /** Hashes `password` with a fresh salt at the pool's cost. Refuses more than 72 bytes. */
  hash(password: string): Promise<string> {
    if (new TextEncoder().encode(password).length > BCRYPT_MAX_BYTES) {
      return Promise.reject(
        new RangeError(`Password longer than ${BCRYPT_MAX_BYTES} bytes cannot be hashed`),
      );
    }
    return this.#submit({ id: this.#nextId++, op: "hash", password, cost: this.cost }) as Promise<
      string
    >;
  }

  /**
   * True when `password` matches `hash`. A password longer than 72 bytes never matches
   * (none can have been stored), after the same work as a real comparison. Rejects when
   * `hash` is not a bcrypt hash.
   */
  async compare(password: string, hash: string): Promise<boolean> {
    if (new TextEncoder().encode(password).length > BCRYPT_MAX_BYTES) {
      return await this.dummyCompare(password);
    }
    return await this.#submit({ id: this.#nextId++, op: "compare", password, hash }) as boolean;
  }

  /**
   * Does the work of a comparison against a dummy hash of the pool's cost and resolves
   * false, so that a login for an unknown email takes as long as one with a wrong
   * password.
   */
  async dummyCompare(password: string): Promise<false> {
    // Keep the work the same as compare(): bcrypt only reads the first 72 bytes anyway.
    await this.#submit({ id: this.#nextId++, op: "compare", password, hash: this.#dummyHash });
    return false;
  }

  /** Jobs waiting for a worker (not counting those running). */
  get pending(): number {
    return this.#queue.length;
  }

  /** Terminates the workers; queued and running jobs reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = () => new Error("Hasher pool is closed");
    for (const slot of this.#slots) {
      slot.worker.terminate();
      slot.job?.reject(error());
      slot.job = null;
    }
    this.#slots = [];
    for (const job of this.#queue.splice(0)) job.reject(error());
  }

  #submit(request: Request): Promise<string | boolean> {
    if (this.#closed) return Promise.reject(new Error("Hasher pool is closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.job !== null) continue;
      const job = this.#queue.shift()!;
      slot.job = job;
      slot.worker.postMessage(job.request);
    }
  }

  #spawn(): Slot {
    const worker = new Worker(import.meta.url, { type: "module", name: HASHER_WORKER_NAME });
    const slot: Slot = { worker, job: null };
    worker.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      const job = slot.job;
      if (job === null || job.request.id !== reply.id) return;
      slot.job = null;
      if (reply.ok) job.resolve(reply.value);
      else job.reject(new Error(`bcrypt failed: ${reply.error}`));
      this.#dispatch();
    };
    const fail = (message: string) => {
      // A crashed worker cannot be trusted with more jobs: fail its job and replace it.
      const job = slot.job;
      slot.job = null;
      worker.terminate();
      if (this.#closed) return;
      const index = this.#slots.indexOf(slot);
      if (index !== -1) this.#slots[index] = this.#spawn();
      job?.reject(new Error(`bcrypt worker failed: ${message}`));
      this.#dispatch();
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      fail(event.message);
    };
    worker.onmessageerror = () => fail("message could not be decoded");
    return slot;
  }
}

/**
 * A syntactically valid bcrypt hash of `cost` that no password matches (random, not
 * derived from any password): comparing against it costs exactly a real comparison.
 */
function makeDummyHash(cost: number): string {
  const salt = bcrypt.genSaltSync(cost); // "$2b$NN$" + 22 characters; only random bytes
  const tail = crypto.getRandomValues(new Uint8Array(31));
  return salt + Array.from(tail, (b) => BCRYPT_ALPHABET[b & 63]).join("");
}
