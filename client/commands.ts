/**
 * The scriptable `cloud connect COMMAND` commands: connect (with trust), log in, run one
 * command, print its result. Returns an exit code; errors are thrown for main.ts to map.
 *
 * @module
 */

import process from "node:process";
import { CloudError } from "../protocol/errors.ts";
import { parseDuration } from "../protocol/units.ts";
import { CloudClient } from "./client.ts";
import { connectTrusted } from "./connect.ts";
import { defaultConfigDir, TrustStore } from "./trust.ts";
import {
  canPrompt,
  type ConnectOptions,
  getEmail,
  getNewPassword,
  getPassword,
  parseHostPort,
  UsageError,
} from "./options.ts";
import { ARGUMENT_RULES, fileCommands } from "./file_commands.ts";
import { resolveServer } from "./target.ts";
import { type Command, type CommandIo, consoleIo } from "./io.ts";

/** Asks on the terminal whether to trust a server seen for the first time. */
export async function askTrust(
  info: { host: string; port: number; fingerprint: string },
): Promise<boolean> {
  const { confirm } = await import("@inquirer/prompts");
  process.stderr.write(
    `The server ${info.host}:${info.port} is not known yet.\n` +
      `Its certificate fingerprint is sha256:${info.fingerprint}\n` +
      `Compare it with the one \`cloud serve\` printed before you trust it.\n`,
  );
  return await confirm({ message: "Trust this server and remember it?", default: false }, {
    output: process.stderr,
  });
}

/** Connects to the server the options name (or discovery finds), trusting as asked. */
export async function openClient(options: ConnectOptions, io: CommandIo): Promise<CloudClient> {
  const target = options.host !== undefined
    ? parseHostPort(options.host)
    : await resolveServer(options, io);
  const store = new TrustStore(defaultConfigDir());
  const trust: Parameters<typeof connectTrusted>[0]["trust"] = {};
  if (options.fingerprint !== undefined) trust.fingerprint = options.fingerprint;
  if (options.trust) trust.trustOnFirstUse = true;
  if (canPrompt()) trust.ask = askTrust;
  const timeoutMs = options.timeout ? parseDuration(options.timeout) : 5000;
  const { conn, pinnedNow, fingerprint } = await connectTrusted({
    host: target.host,
    port: target.port,
    trust,
    store,
    timeoutMs,
  });
  if (pinnedNow) {
    io.err(`Trusted ${target.host}:${target.port} with fingerprint sha256:${fingerprint}`);
  }
  return await CloudClient.open(conn);
}

/** Logs in with the email and password the options and environment give. */
export async function loginFromOptions(client: CloudClient, options: ConnectOptions) {
  const email = await getEmail(options);
  const password = await getPassword(options);
  return await client.login(email, password);
}

const accountCommands: Record<string, Command> = {
  register: async (client, _args, options, io) => {
    const email = await getEmail(options);
    const password = await getPassword(options);
    if (Deno.env.get("CLOUD_PASSWORD") === undefined && !options.passwordStdin) {
      const { promptSecret } = await import("./options.ts");
      if ((await promptSecret("Repeat password")) !== password) {
        throw new CloudError("E_INVALID", "The two passwords differ");
      }
    }
    const result = await client.register({
      email,
      password,
      name: options.name ?? "",
      phone: options.phone ?? "",
    });
    io.err(`Registered ${result.email}`);
    return 0;
  },
  login: async (client, _args, options, io) => {
    const result = await loginFromOptions(client, options);
    io.err(`Logged in as ${result.email}`);
    return 0;
  },
  whoami: async (client, _args, options, io) => {
    await loginFromOptions(client, options);
    const me = await client.whoami();
    if (options.json) io.out(JSON.stringify(me));
    else io.out(`${me.email}\t${me.name}\t${me.phone}\tsince ${me.createdAt}`);
    return 0;
  },
  passwd: async (client, _args, options, io) => {
    const email = await getEmail(options);
    const password = await getPassword(options, "Current password");
    await client.login(email, password);
    const newPassword = await getNewPassword(options);
    await client.passwd(password, newPassword);
    io.err("Password changed");
    return 0;
  },
};

/** Names of the scriptable commands. */
export const COMMAND_NAMES: readonly string[] = [
  ...Object.keys(accountCommands),
  ...Object.keys(fileCommands),
];

/** Runs one scriptable command and returns its exit code. */
export async function runCommand(
  name: string,
  args: string[],
  options: ConnectOptions,
  io: CommandIo = consoleIo,
): Promise<number> {
  const command = accountCommands[name] ?? fileCommands[name];
  if (!command) {
    throw new UsageError(`Unknown command "${name}"; try one of: ${COMMAND_NAMES.join(", ")}`);
  }
  const problem = ARGUMENT_RULES[name]?.(args, options);
  if (problem) throw new UsageError(problem);
  const client = await openClient(options, io);
  try {
    return await command(client, args, options, io);
  } finally {
    await client.close();
  }
}
