/**
 * Our system under test: the real `cloud serve` as a subprocess and the real
 * `cloud connect` CLI, one process per command, as a user runs them.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { check, timed, type TimedRun } from "./_util.ts";
import { terminate } from "../tests/_helpers/process.ts";

/** The repository's main.ts. */
export const MAIN_TS: string = fileURLToPath(new URL("../main.ts", import.meta.url));

const READY = /^listening on (\S+):(\d+) fingerprint (sha256:[0-9a-f]{64})$/;

/** A running `cloud serve` on 127.0.0.1. */
export class CloudServer {
  readonly host: string;
  readonly port: number;
  readonly fingerprint: string;
  #child: Deno.ChildProcess;
  #tail: string[];
  #drained: Promise<void>;

  private constructor(
    child: Deno.ChildProcess,
    ready: RegExpExecArray,
    tail: string[],
    drained: Promise<void>,
  ) {
    this.#child = child;
    this.host = ready[1]!;
    this.port = Number(ready[2]);
    this.fingerprint = ready[3]!;
    this.#tail = tail;
    this.#drained = drained;
  }

  /** PID of the server's own deno process. */
  get pid(): number {
    return this.#child.pid;
  }

  /** `HOST:PORT` for `--host`. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** The last lines the server printed. */
  get tail(): string {
    return this.#tail.join("\n");
  }

  /**
   * Starts `main.ts serve` on 127.0.0.1, a free port and `dataDir`, with discovery off and
   * bcrypt cost 4, and waits (at most `timeoutMs`) for its ready line. Its output keeps
   * being read (and only the last lines kept) so a full pipe never stalls it.
   */
  static async start(dataDir: string, timeoutMs = 60_000): Promise<CloudServer> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-net",
        MAIN_TS,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data",
        dataDir,
        "--no-discovery",
        "--bcrypt-cost",
        "4",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
    }).spawn();
    const tail: string[] = [];
    const keep = (line: string) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
    };
    const { promise: readyLine, resolve, reject } = Promise.withResolvers<RegExpExecArray>();
    const drain = async (stream: ReadableStream<Uint8Array>, watch: boolean) => {
      const lines = stream.pipeThrough(new TextDecoderStream());
      let partial = "";
      for await (const text of lines) {
        const parts = (partial + text).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) {
          keep(line);
          const match = watch ? READY.exec(line.trim()) : null;
          if (match) resolve(match);
        }
      }
      if (partial) keep(partial);
    };
    const drained = Promise.all([drain(child.stdout, true), drain(child.stderr, false)]).then(
      () => {},
      () => {},
    );
    child.status.then((s) => reject(new Error(`cloud serve exited with code ${s.code}`)));
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const ready = await Promise.race([
        readyLine,
        new Promise<never>((_, fail) => {
          timer = setTimeout(
            () => fail(new Error(`cloud serve printed no ready line within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
      return new CloudServer(child, ready, tail, drained);
    } catch (error) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status.catch(() => {});
      throw new Error(`${(error as Error).message}\n${tail.join("\n")}`.trim());
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM (the server drains for up to 10 s), SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    await terminate(this.#child, timeoutMs).catch(() => {});
    await this.#drained;
  }
}

/** Runs `cloud connect` commands against one server as one user. */
export class CloudCli {
  #server: CloudServer;
  #email: string;
  #env: Record<string, string>;

  constructor(server: CloudServer, configDir: string, email: string, password: string) {
    this.#server = server;
    this.#email = email;
    this.#env = {
      CLOUD_CONFIG_DIR: configDir,
      CLOUD_PASSWORD: password,
      RUST_BACKTRACE: "0",
      NO_COLOR: "1",
    };
  }

  /** The full argument list of `deno` for one connect command. */
  args(command: string[]): string[] {
    return [
      "run",
      "-A",
      "--unstable-net",
      MAIN_TS,
      "connect",
      "--host",
      this.#server.address,
      "--fingerprint",
      this.#server.fingerprint,
      "--email",
      this.#email,
      ...command,
    ];
  }

  /** Runs one command (stdin not a terminal, so no progress bars); throws if it fails. */
  async run(command: string[]): Promise<TimedRun> {
    const run = await timed(Deno.execPath(), this.args(command), { env: this.#env });
    return check(run, `cloud connect ${command[0]}`);
  }

  /** Registers the user. */
  async register(name: string): Promise<void> {
    await this.run(["register", "--name", name, "--phone", "5550100"]);
  }
}

/** Bytes of a `get` command line with `names` under `remoteDir`: must fit ARG_MAX. */
export function argListBytes(cli: CloudCli, command: string[]): number {
  return [Deno.execPath(), ...cli.args(command)].reduce(
    (n, a) => n + new TextEncoder().encode(a).length + 1,
    0,
  );
}
