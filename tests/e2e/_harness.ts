/**
 * End-to-end harness: starts the real `cloud serve` as a subprocess on 127.0.0.1 port 0
 * (no discovery), runs the real `cloud` CLI against it, and provides a raw TLS connection
 * for bad-input tests. Every test runs against SQLite and, when CLOUD_TEST_MYSQL_URL is set,
 * against MariaDB/MySQL with a scratch database of its own.
 *
 * @module
 */

import { join, resolve } from "node:path";
import mysql from "mysql2/promise";
import { PINNED_SERVER_NAME } from "../../server/tls.ts";

const ROOT = resolve(import.meta.dirname!, "../..");
const MAIN = join(ROOT, "main.ts");
const decoder = new TextDecoder();

/** A database backend the suite runs against. */
export interface Backend {
  name: "sqlite" | "mysql";
  /** Returns a fresh database URL (null: the server's default SQLite) and its cleanup. */
  create(): Promise<{ url: string | null; drop(): Promise<void> }>;
}

/** SQLite always; MySQL when CLOUD_TEST_MYSQL_URL is set. */
export function backends(): Backend[] {
  const list: Backend[] = [{
    name: "sqlite",
    create: () => Promise.resolve({ url: null, drop: () => Promise.resolve() }),
  }];
  const base = Deno.env.get("CLOUD_TEST_MYSQL_URL");
  if (base) {
    list.push({
      name: "mysql",
      create: async () => {
        const url = new URL(base);
        const name = `cloud_e2e_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
        const admin = await mysql.createConnection({
          host: url.hostname,
          port: Number(url.port || 3306),
          user: decodeURIComponent(url.username),
          password: decodeURIComponent(url.password),
        });
        await admin.query(`CREATE DATABASE \`${name}\``);
        await admin.end();
        const dbUrl = new URL(base);
        dbUrl.pathname = `/${name}`;
        return {
          url: dbUrl.toString(),
          drop: async () => {
            const c = await mysql.createConnection({
              host: url.hostname,
              port: Number(url.port || 3306),
              user: decodeURIComponent(url.username),
              password: decodeURIComponent(url.password),
            });
            await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
            await c.end();
          },
        };
      },
    });
  }
  return list;
}

/** Result of one CLI run. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runCloud}. */
export interface RunOptions {
  env?: Record<string, string>;
  stdin?: string;
  cwd?: string;
}

/** Runs the real CLI from source. */
export async function runCloud(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-net", MAIN, ...args],
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const child = command.spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A running server subprocess. */
export class ServerProcess {
  readonly lines: string[] = [];
  #child: Deno.ChildProcess;
  #done: Promise<Deno.CommandStatus>;
  host = "127.0.0.1";
  port = 0;
  fingerprint = "";

  private constructor(
    child: Deno.ChildProcess,
    readonly dataDir: string,
    readonly dbUrl: string | null,
  ) {
    this.#child = child;
    this.#done = child.status;
  }

  /** `HOST:PORT` for `--host`. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Starts `cloud serve` and waits for its ready line. */
  static async start(options: {
    dataDir: string;
    dbUrl?: string | null;
    args?: string[];
    env?: Record<string, string>;
  }): Promise<ServerProcess> {
    const args = [
      "run",
      "--allow-all",
      "--unstable-net",
      MAIN,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data",
      options.dataDir,
      "--no-discovery",
      "--bcrypt-cost",
      "4",
      ...(options.dbUrl ? ["--db", options.dbUrl] : []),
      ...(options.args ?? []),
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...options.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const server = new ServerProcess(child, options.dataDir, options.dbUrl ?? null);
    const ready = Promise.withResolvers<void>();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const lines = stream.pipeThrough(new TextDecoderStream());
      let rest = "";
      for await (const chunk of lines) {
        rest += chunk;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          server.lines.push(line);
          const m = /^listening on (\S+):(\d+) fingerprint sha256:([0-9a-f]{64})$/.exec(line);
          if (m) {
            server.host = m[1]!;
            server.port = Number(m[2]);
            server.fingerprint = m[3]!;
            ready.resolve();
          }
        }
      }
    };
    pump(child.stdout);
    pump(child.stderr);
    const timer = setTimeout(() => ready.reject(new Error("server did not start in 20 s")), 20_000);
    server.#done.then((s) =>
      ready.reject(new Error(`server exited ${s.code}: ${server.lines.join("\n")}`))
    );
    try {
      await ready.promise;
    } finally {
      clearTimeout(timer);
    }
    return server;
  }

  /** Sends SIGTERM and waits for the exit code. */
  async stop(): Promise<number> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already gone
    }
    return (await this.#done).code;
  }

  /** Kills the server hard (SIGKILL), as a crash would. */
  async kill9(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#done;
  }

  /** Resolves when the process has exited. */
  get exited(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  /** Opens a raw TLS connection trusting the server's certificate (for bad-input tests). */
  async rawConnect(): Promise<Deno.TlsConn> {
    const certPem = await Deno.readTextFile(join(this.dataDir, "tls", "cert.pem"));
    const tcp = await Deno.connect({ hostname: this.host, port: this.port });
    const conn = await Deno.startTls(tcp, {
      hostname: PINNED_SERVER_NAME,
      caCerts: [certPem],
      alpnProtocols: ["cloud/1"],
    });
    await conn.handshake();
    return conn;
  }
}

/** A test fixture: a temp dir, a server on a backend, a client config dir, and the CLI. */
export class Fixture {
  readonly configDir: string;
  constructor(
    readonly dir: string,
    readonly server: ServerProcess,
    readonly drop: () => Promise<void>,
  ) {
    this.configDir = join(dir, "config");
  }

  /** Starts a server on `backend` in a fresh temp dir. */
  static async start(backend: Backend, args: string[] = []): Promise<Fixture> {
    const dir = await Deno.makeTempDir({ prefix: "cloud-e2e-" });
    const db = await backend.create();
    const server = await ServerProcess.start({ dataDir: join(dir, "data"), dbUrl: db.url, args });
    return new Fixture(dir, server, db.drop);
  }

  /** Runs `cloud connect --host <server> --fingerprint <fp> ARGS...`. */
  connect(args: string[], options: RunOptions = {}): Promise<RunResult> {
    return runCloud(
      [
        "connect",
        "--host",
        this.server.address,
        "--fingerprint",
        `sha256:${this.server.fingerprint}`,
        ...args,
      ],
      { ...options, env: { CLOUD_CONFIG_DIR: this.configDir, ...options.env } },
    );
  }

  /** Runs `cloud connect` as `email` with `password` (through CLOUD_PASSWORD). */
  as(
    email: string,
    password: string,
    args: string[],
    options: RunOptions = {},
  ): Promise<RunResult> {
    return this.connect(["--email", email, ...args], {
      ...options,
      env: { CLOUD_PASSWORD: password, ...options.env },
    });
  }

  /** Runs `cloud admin` against the server's data and database. */
  admin(args: string[]): Promise<RunResult> {
    return runCloud([
      "admin",
      "--data",
      this.server.dataDir,
      ...(this.server.dbUrl ? ["--db", this.server.dbUrl] : []),
      ...args,
    ]);
  }

  /** Registers an account through the CLI; asserts nothing. */
  register(email: string, password: string, name = "Test User", phone = "+1 555 0100") {
    return this.as(email, password, ["register", "--name", name, "--phone", phone]);
  }

  /** Stops the server and removes everything. */
  async close(): Promise<void> {
    await this.server.stop();
    await this.drop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Runs `fn` with a fresh fixture for each backend, as separate test steps. */
export function e2eTest(name: string, fn: (f: Fixture) => Promise<void>, args: string[] = []) {
  for (const backend of backends()) {
    Deno.test({
      name: `${name} [${backend.name}]`,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        const fixture = await Fixture.start(backend, args);
        try {
          await fn(fixture);
        } finally {
          await fixture.close();
        }
      },
    });
  }
}

/** A password strong enough for the server's rules. */
export const GOOD_PASSWORD = "Correct-Horse-Battery-42";
