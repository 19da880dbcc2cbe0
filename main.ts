/**
 * `cloud`: argument parsing and wiring only. Every command lives in server/ or client/;
 * this file turns their errors into messages and the exit codes of SPEC.md section 2.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { CloudError, EXIT } from "./protocol/errors.ts";
import { parseDuration, parseSize } from "./protocol/units.ts";
import { isHasherWorker } from "./server/hasher.ts";
import { UsageError } from "./client/options.ts";
import type { ConnectOptions } from "./client/options.ts";

/** The program's version. */
export const VERSION = "0.1.0";

function sizeOption(value: string): number | null {
  try {
    return parseSize(value);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`Invalid number "${value}": expected ${min}..${max}`);
    }
    return n;
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Builds the command tree. Actions set `exitCode` through the returned holder. */
export function buildProgram(result: { exitCode: number }): Command {
  const program = new Command("cloud")
    .description("A self-hosted, secure file cloud")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run `cloud help` for usage)")
    .configureOutput({ writeErr: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)) })
    .exitOverride();

  program.command("serve")
    .description("Run a server")
    .option("--host <address>", "address to listen on", "0.0.0.0")
    .option("--port <port>", "TCP port (0 picks a free one)", intOption(0, 65535), 7070)
    .option("--data <dir>", "data directory", "./cloud-data")
    .addOption(
      new Option("--db <url>", "sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB").env("CLOUD_DB"),
    )
    .option("--tls-cert <file>", "certificate (PEM); default: generated in <data>/tls/")
    .option("--tls-key <file>", "private key (PEM) of --tls-cert")
    .option("--discovery-port <port>", "UDP discovery port", intOption(1, 65535), 7071)
    .option("--no-discovery", "do not announce on the LAN or answer probes")
    .option("--announce <address>", "broadcast address to announce to (repeatable)", collect)
    .option("--quota <size>", "default quota per user (e.g. 10GiB)", sizeOption, null)
    .option("--max-file-size <size>", "largest file accepted", sizeOption, null)
    .option("--bcrypt-cost <n>", "bcrypt cost", intOption(4, 31), 12)
    .addOption(
      new Option("--log-format <format>", "log format").choices(["text", "json"]).default("text"),
    )
    .option("--name <name>", "server name shown to clients (default: host name)")
    .option("--idle-timeout <duration>", "close silent connections before login after", "15s")
    .action(async (opts) => {
      if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
        throw new UsageError("--tls-cert and --tls-key go together");
      }
      try {
        opts.idleTimeoutMs = parseDuration(opts.idleTimeout);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const { runServe } = await import("./server/serve.ts");
      result.exitCode = await runServe(opts);
    });

  const connect = program.command("connect")
    .description("Connect to a server: the interactive menu, or one COMMAND")
    .argument(
      "[command]",
      "register | login | whoami | passwd | ls | put | get | rm | mv | mkdir | df",
    )
    .argument("[args...]", "the command's arguments")
    .option("--host <host[:port]>", "server address (default: discover on the LAN)")
    .option("--fingerprint <sha256:hex>", "expected certificate fingerprint")
    .option("--trust", "trust the server's certificate on first use without asking")
    .option("--email <email>", "account email (or CLOUD_EMAIL)")
    .option("--password-stdin", "read the password (then a new one for passwd) from stdin")
    .option("--json", "print ls, whoami and df as JSON")
    .option("--name <name>", "register: your name")
    .option("--phone <phone>", "register: your phone number")
    .option("--to <dir>", "put: remote folder")
    .option("--out <dir>", "get: local folder")
    .option("--overwrite", "put/get/mv: replace an existing file")
    .option("-r, --recursive", "rm: remove folders with their contents")
    .option("-p, --parents", "mkdir: create parent folders as needed")
    .option("--timeout <duration>", "connect / discovery timeout (e.g. 5s)")
    .option("--discovery-port <port>", "UDP discovery port", "7071")
    .action(async (command: string | undefined, args: string[], opts: ConnectOptions) => {
      if (command === undefined) {
        const { runMenu } = await import("./client/menu.ts");
        result.exitCode = await runMenu(opts);
      } else {
        const { runCommand } = await import("./client/commands.ts");
        result.exitCode = await runCommand(command, args, opts);
      }
    });
  connect.addHelpText(
    "after",
    "\nPassword: CLOUD_PASSWORD, else --password-stdin, else a masked prompt.\n" +
      "Examples:\n  cloud connect --host 192.168.1.5 --trust register --name Ada --phone 5550100\n" +
      "  cloud connect --host 192.168.1.5 --email ada@example.com put report.pdf --to docs",
  );

  program.command("discover")
    .description("Find servers on the local network")
    .option("--timeout <duration>", "how long to listen", "2s")
    .option("--json", "print JSON")
    .option("--discovery-port <port>", "UDP discovery port", intOption(1, 65535), 7071)
    .action(async (opts: { timeout: string; json?: boolean; discoveryPort: number }) => {
      const { runDiscover } = await import("./client/discover_command.ts");
      let timeoutMs: number;
      try {
        timeoutMs = parseDuration(opts.timeout);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      result.exitCode = await runDiscover({
        timeoutMs,
        json: opts.json ?? false,
        port: opts.discoveryPort,
      });
    });

  const admin = program.command("admin")
    .description("Administer a server's accounts and files (on the server host)")
    .option("--data <dir>", "data directory", "./cloud-data")
    .addOption(new Option("--db <url>", "database URL").env("CLOUD_DB"));
  const adminAction = (name: string) => async (...args: unknown[]) => {
    const { runAdmin } = await import("./server/admin.ts");
    const positional = args.filter((a) => typeof a === "string") as string[];
    const commandOpts = (args.find((a) => a instanceof Command) as Command).opts();
    result.exitCode = await runAdmin(name, positional, { ...admin.opts(), ...commandOpts });
  };
  admin.command("users").description("List accounts").option("--json", "print JSON")
    .action(adminAction("users"));
  admin.command("unlock").argument("<email>").description("Clear an account's login lock")
    .action(adminAction("unlock"));
  admin.command("unblock").argument("<address>").description("Clear a source address block")
    .action(adminAction("unblock"));
  admin.command("quota").argument("<email>").argument("<size>")
    .description("Set a user's quota (e.g. 10GiB, or 'default')").action(adminAction("quota"));
  admin.command("delete-user").argument("<email>").description("Delete an account and its files")
    .action(adminAction("delete-user"));
  admin.command("fsck").description("Reconcile files on disk with the database")
    .option("--repair", "fix what can be fixed").action(adminAction("fsck"));

  program.command("help").argument("[command]").description("Show help for a command")
    .action((name?: string) => {
      const target = name ? program.commands.find((c) => c.name() === name) : program;
      if (!target) throw new UsageError(`Unknown command "${name}"`);
      target.outputHelp();
    });

  return program;
}

/** Errors of this machine's file system: the user's to fix, not bugs. */
function isLocalIoError(error: unknown): boolean {
  const kinds = [
    Deno.errors.NotFound,
    Deno.errors.PermissionDenied,
    Deno.errors.AlreadyExists,
    Deno.errors.IsADirectory,
    Deno.errors.NotADirectory,
    Deno.errors.FilesystemLoop,
  ];
  return kinds.some((kind) => error instanceof kind) ||
    (error instanceof Error && /No space left on device|os error 28/.test(error.message));
}

/** Runs the CLI and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const result = { exitCode: 0 };
  const program = buildProgram(result);
  try {
    await program.parseAsync(args, { from: "user" });
    return result.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return 0;
      if (error.code === "commander.help") return EXIT.USAGE; // no command given
      return EXIT.USAGE;
    }
    if (error instanceof UsageError) {
      console.error(`cloud: ${error.message}`);
      return EXIT.USAGE;
    }
    if (error instanceof CloudError) {
      console.error(`cloud: ${error.message}`);
      return error.exitCode;
    }
    if (isLocalIoError(error)) {
      console.error(`cloud: ${(error as Error).message}`);
      return EXIT.ERROR;
    }
    if (error instanceof Error && error.name === "ExitPromptError") {
      return 130;
    }
    throw error;
  }
}

if (import.meta.main && !isHasherWorker()) {
  Deno.exit(await main(Deno.args));
}
