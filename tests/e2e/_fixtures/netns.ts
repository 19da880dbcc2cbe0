/**
 * Two network namespaces joined by a veth pair, for broadcast tests that must never touch
 * the machine's real interfaces: `ip link add ... netns A type veth peer ... netns B`
 * creates both ends inside the namespaces, so nothing appears in the root namespace.
 *
 * Used by tests/e2e/discovery_netns_test.ts and bench/discovery.ts.
 *
 * @module
 */

import { resolve } from "node:path";
import { terminate } from "../../_helpers/process.ts";

/** The repository root. */
export const ROOT: string = resolve(import.meta.dirname!, "../../..");
/** Address of the `A` end. */
export const ADDRESS_A = "10.250.0.1";
/** Address of the `B` end. */
export const ADDRESS_B = "10.250.0.2";

const decoder = new TextDecoder();

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; text: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return {
      ok: out.success,
      text: (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim(),
    };
  } catch (error) {
    return { ok: false, text: String(error) };
  }
}

async function ip(args: string[]): Promise<void> {
  const result = await run("ip", args);
  if (!result.ok) throw new Error(`ip ${args.join(" ")} failed: ${result.text}`);
}

/**
 * Why namespaces cannot be used here (not root, no `ip`, no permission), or undefined when
 * they can: it really creates and removes a throwaway namespace.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return `network namespaces need Linux, not ${Deno.build.os}`;
  if (Deno.uid() !== 0) return "network namespaces need root (uid 0)";
  const version = await run("ip", ["-V"]);
  if (!version.ok) return `the ip command is not usable: ${version.text}`;
  const name = `cloudtP-${randomSuffix()}`;
  const add = await run("ip", ["netns", "add", name]);
  if (!add.ok) return `ip netns add failed: ${add.text}`;
  await run("ip", ["netns", "del", name]);
  return undefined;
}

function randomSuffix(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}

/** A line-reading handle on a process started inside a namespace. */
export class NsProcess {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly status: Promise<Deno.CommandStatus>;

  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.status = child.status;
    this.#pump(child.stdout);
    this.#pump(child.stderr);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        for (const w of [...this.#waiters]) {
          const m = w.pattern.exec(line);
          if (m) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(m);
          }
        }
      }
    }
  }

  /** Resolves with the first line matching `pattern`; rejects on exit or after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    for (const line of this.lines) {
      const m = pattern.exec(line);
      if (m) return m;
    }
    const { promise, resolve, reject } = Promise.withResolvers<RegExpExecArray>();
    this.#waiters.push({ pattern, resolve });
    const timer = setTimeout(
      () => reject(new Error(`no line matching ${pattern} in ${timeoutMs} ms:\n${this.output}`)),
      timeoutMs,
    );
    this.status.then((s) =>
      reject(new Error(`process exited ${s.code} before ${pattern}:\n${this.output}`))
    );
    try {
      return await promise;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Everything printed so far. */
  get output(): string {
    return this.lines.join("\n");
  }

  /** Sends SIGTERM (then SIGKILL after `graceMs`) and waits for the exit. */
  stop(graceMs = 10_000): Promise<Deno.CommandStatus> {
    return terminate(this.#child, graceMs);
  }
}

/** Two namespaces, `a` (10.250.0.1/24) and `b` (10.250.0.2/24), joined by a veth pair. */
export class NetnsPair {
  private constructor(readonly a: string, readonly b: string) {}

  /** Creates the pair; removes whatever it made if a step fails. */
  static async create(): Promise<NetnsPair> {
    const suffix = randomSuffix();
    const pair = new NetnsPair(`cloudtA-${suffix}`, `cloudtB-${suffix}`);
    try {
      await ip(["netns", "add", pair.a]);
      await ip(["netns", "add", pair.b]);
      await ip([
        "link",
        "add",
        "vA",
        "netns",
        pair.a,
        "type",
        "veth",
        "peer",
        "name",
        "vB",
        "netns",
        pair.b,
      ]);
      await ip(["-n", pair.a, "addr", "add", `${ADDRESS_A}/24`, "dev", "vA"]);
      await ip(["-n", pair.b, "addr", "add", `${ADDRESS_B}/24`, "dev", "vB"]);
      for (const [ns, dev] of [[pair.a, "vA"], [pair.b, "vB"], [pair.a, "lo"], [pair.b, "lo"]]) {
        await ip(["-n", ns!, "link", "set", dev!, "up"]);
      }
    } catch (error) {
      await pair.remove();
      throw error;
    }
    return pair;
  }

  /** `ip netns exec NS deno run -A --unstable-net ARGS...` as a Deno.Command. */
  deno(ns: string, args: string[], env: Record<string, string> = {}): Deno.Command {
    return new Deno.Command("ip", {
      args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", "--unstable-net", ...args],
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...env },
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  }

  /** Starts a long-running Deno program inside `ns`. */
  spawn(ns: string, args: string[], env: Record<string, string> = {}): NsProcess {
    return new NsProcess(this.deno(ns, args, env).spawn());
  }

  /** Runs a Deno program inside `ns` to completion. */
  async run(
    ns: string,
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const out = await this.deno(ns, args, env).output();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  }

  /** Deletes both namespaces (and with them the veth pair). Never throws. */
  async remove(): Promise<void> {
    for (const ns of [this.a, this.b]) await run("ip", ["netns", "del", ns]);
  }
}
