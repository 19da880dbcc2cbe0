/**
 * Helpers of the transfer benchmark (bench/run.ts): processes, timing, peak RSS, loopback
 * port readiness, test data. Internal to bench/.
 *
 * @module
 */

import { createCipheriv, randomBytes } from "node:crypto";
import { join } from "node:path";

/** Median of a list of numbers (NaN when empty). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A port that was free a moment ago on 127.0.0.1 (for programs that cannot take port 0). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** True when something listens on 127.0.0.1:`port` (read from /proc/net/tcp, no probe). */
export async function isListening(port: number): Promise<boolean> {
  const text = await Deno.readTextFile("/proc/net/tcp");
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return text.split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1] === local && fields[3] === "0A";
  });
}

/** Waits (bounded) until 127.0.0.1:`port` listens; throws after `timeoutMs`. */
export async function waitListening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isListening(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/** Memory figures of a process from /proc/PID/status, in bytes (null once it is gone). */
export async function readMemory(pid: number): Promise<{ rss: number; hwm: number } | null> {
  try {
    const text = await Deno.readTextFile(`/proc/${pid}/status`);
    const kib = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
    const rss = kib("VmRSS");
    const hwm = kib("VmHWM");
    // A process that has exited but not been reaped has no memory lines.
    if (Number.isNaN(rss) || Number.isNaN(hwm)) return null;
    return { rss: rss * 1024, hwm: hwm * 1024 };
  } catch {
    return null;
  }
}

/** CPU time (user + system) a process has used so far, in seconds; NaN once it is gone. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const text = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/**
 * Resets the kernel's peak-RSS counter (VmHWM) of `pid` by writing 5 to
 * /proc/PID/clear_refs (Linux 4.0+, own processes or root). False where not allowed.
 */
export async function resetPeak(pid: number): Promise<boolean> {
  try {
    await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples VmRSS of a process every `intervalMs` until stopped; with the kernel's VmHWM
 * (reset at start where possible) this gives the peak over the sampled interval.
 */
export class PeakSampler {
  #pid: number;
  #timer: ReturnType<typeof setInterval>;
  #maxRss = 0;
  #resetOk: boolean;
  #busy = false;

  private constructor(pid: number, resetOk: boolean, intervalMs: number) {
    this.#pid = pid;
    this.#resetOk = resetOk;
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  /** Resets the peak counter of `pid` and starts sampling. */
  static async start(pid: number, intervalMs = 20): Promise<PeakSampler> {
    const resetOk = await resetPeak(pid);
    const sampler = new PeakSampler(pid, resetOk, intervalMs);
    await sampler.#sample();
    return sampler;
  }

  async #sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const memory = await readMemory(this.#pid);
      if (memory) this.#maxRss = Math.max(this.#maxRss, memory.rss);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Stops sampling and returns the peak in bytes: VmHWM when it could be reset at start
   * (exact), else the highest VmRSS sampled.
   */
  async stop(): Promise<number> {
    clearInterval(this.#timer);
    const memory = await readMemory(this.#pid);
    if (memory) this.#maxRss = Math.max(this.#maxRss, memory.rss);
    if (this.#resetOk && memory) return Math.max(memory.hwm, this.#maxRss);
    return this.#maxRss;
  }
}

/** Result of {@link timed}. */
export interface TimedRun {
  /** Wall time from spawn to exit, milliseconds. */
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
  /** Peak RSS of the child itself (sampled VmRSS), bytes. */
  peakRss: number;
}

const decoder = new TextDecoder();

/** Runs a command to its end and times it from spawn to exit. */
export async function timed(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<TimedRun> {
  const start = performance.now();
  const child = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  }).spawn();
  let maxRss = 0;
  let sampling = false;
  const sampler = setInterval(async () => {
    if (sampling) return;
    sampling = true;
    const memory = await readMemory(child.pid);
    if (memory) maxRss = Math.max(maxRss, memory.rss);
    sampling = false;
  }, 20);
  const timeoutMs = options.timeoutMs ?? 600_000;
  const killer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  try {
    const output = await child.output();
    const ms = performance.now() - start;
    return {
      ms,
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
      peakRss: maxRss,
    };
  } finally {
    clearInterval(sampler);
    clearTimeout(killer);
  }
}

/** Throws with the command's output when it failed. */
export function check(run: TimedRun, what: string): TimedRun {
  if (run.code !== 0) {
    throw new Error(
      `${what} failed with exit code ${run.code}:\n${run.stderr}${run.stdout}`.trim(),
    );
  }
  return run;
}

/**
 * Writes `size` bytes of incompressible pseudo-random data (AES-128-CTR keystream with a
 * random key) to `path`, 4 MiB at a time.
 */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const cipher = createCipheriv("aes-128-ctr", randomBytes(16), randomBytes(16));
  const zeros = new Uint8Array(4 * 1024 * 1024);
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  let left = size;
  while (left > 0) {
    const n = Math.min(left, zeros.length);
    const chunk = cipher.update(zeros.subarray(0, n));
    let written = 0;
    while (written < chunk.length) written += await file.write(chunk.subarray(written));
    left -= n;
  }
}

/** Creates `count` random files of `size` bytes named f0000.bin… in `dir`; returns the names. */
export async function writeSmallFiles(dir: string, count: number, size: number): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const width = Math.max(4, String(count - 1).length);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `f${String(i).padStart(width, "0")}.bin`;
    await Deno.writeFile(join(dir, name), randomBytes(size));
    names.push(name);
  }
  return names;
}

/** Number of regular files in `dir` and their total size. */
export async function countFiles(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    files++;
    bytes += (await Deno.stat(join(dir, entry.name))).size;
  }
  return { files, bytes };
}

/** Removes a path if it exists. */
export async function removeIfExists(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

/** MB/s (10^6 bytes per second). */
export function mbPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

/** Files per second. */
export function filesPerSecond(files: number, ms: number): number {
  return files / (ms / 1000);
}

/** A command's first line of stdout (or stderr), trimmed; "" when it cannot run. */
export async function firstLine(command: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
      .output();
    const text = decoder.decode(out.stdout).trim() || decoder.decode(out.stderr).trim();
    return text.split("\n")[0] ?? "";
  } catch {
    return "";
  }
}
