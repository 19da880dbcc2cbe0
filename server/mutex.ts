/**
 * A mutex per key: `run(key, fn)` runs `fn` after every earlier `run` of the same key has
 * settled. Keys with no waiters take no memory.
 *
 * @module
 */

/** Serialises async work per key. */
export class KeyedMutex {
  #tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` exclusively for `key` and returns its result. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const current = previous.then(fn, fn);
    const tail = current.catch(() => {});
    this.#tails.set(key, tail);
    try {
      return await current;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
