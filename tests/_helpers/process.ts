/**
 * Stopping child processes that tests and benchmarks start: only by their own handle.
 *
 * @module
 */

/**
 * Sends SIGTERM, then SIGKILL if the child has not exited after `graceMs`; resolves with
 * its exit status.
 */
export async function terminate(
  child: Deno.ChildProcess,
  graceMs: number,
): Promise<Deno.CommandStatus> {
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  kill("SIGTERM");
  const timer = setTimeout(() => kill("SIGKILL"), graceMs);
  try {
    return await child.status;
  } finally {
    clearTimeout(timer);
  }
}
