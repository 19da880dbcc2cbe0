/**
 * Reference: OpenSSH `sftp` against a private `sshd` on 127.0.0.1 with its own config,
 * host key, client key and port, started for the benchmark and stopped by its PID.
 *
 * @module
 */

import { join } from "node:path";
import { check, freePort, timed, type TimedRun, waitListening } from "./_util.ts";
import { terminate } from "../tests/_helpers/process.ts";

const SSHD = "/usr/sbin/sshd";
const SFTP_SERVER_CANDIDATES = ["/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server"];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure `sshd` is installed: when it is missing and we are root, installs Debian's
 * `openssh-server` (saying so on `log`). Returns a reason when sftp cannot be measured.
 */
export async function ensureSshd(
  install: boolean,
  log: (line: string) => void,
): Promise<string | null> {
  if (await exists(SSHD)) return null;
  if (!install) return `${SSHD} is missing (and --no-install was given)`;
  if (Deno.uid() !== 0) return `${SSHD} is missing; install openssh-server (needs root)`;
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  log("sftp reference: /usr/sbin/sshd is missing; running `apt-get install -y openssh-server`");
  let run = await timed("apt-get", ["install", "-y", "-q", "openssh-server"], { env });
  if (run.code !== 0) {
    log("sftp reference: install failed; running `apt-get update` and trying again");
    await timed("apt-get", ["update", "-q"], { env });
    run = await timed("apt-get", ["install", "-y", "-q", "openssh-server"], { env });
  }
  if (run.code !== 0 || !(await exists(SSHD))) {
    return `apt-get install openssh-server failed: ${run.stderr.trim().split("\n").at(-1)}`;
  }
  log(
    "sftp reference: installed openssh-server (on a machine with systemd this also enabled the " +
      "system's own ssh service; this benchmark does not use it)",
  );
  return null;
}

/** A private sshd and the options to reach it with `sftp`. */
export class PrivateSshd {
  readonly port: number;
  readonly dir: string;
  #child: Deno.ChildProcess;
  #clientKey: string;
  #log: string;

  private constructor(
    port: number,
    dir: string,
    child: Deno.ChildProcess,
    clientKey: string,
    log: string,
  ) {
    this.port = port;
    this.dir = dir;
    this.#child = child;
    this.#clientKey = clientKey;
    this.#log = log;
  }

  /** PID of the listening sshd. */
  get pid(): number {
    return this.#child.pid;
  }

  /**
   * Generates a host key and a client key in `dir`, writes an sshd_config that listens on
   * 127.0.0.1 only and accepts only that key for root, starts `sshd -D` and waits until
   * it listens.
   */
  static async start(dir: string, log: (line: string) => void): Promise<PrivateSshd> {
    await Deno.mkdir(dir, { recursive: true });
    const hostKey = join(dir, "host_ed25519");
    const clientKey = join(dir, "client_ed25519");
    for (const key of [hostKey, clientKey]) {
      check(await timed("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]), "ssh-keygen");
    }
    await Deno.copyFile(`${clientKey}.pub`, join(dir, "authorized_keys"));
    let sftpServer = "internal-sftp";
    for (const candidate of SFTP_SERVER_CANDIDATES) {
      if (await exists(candidate)) {
        sftpServer = candidate;
        break;
      }
    }
    const port = freePort();
    const config = join(dir, "sshd_config");
    await Deno.writeTextFile(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PrintMotd no",
        `Subsystem sftp ${sftpServer}`,
        "",
      ].join("\n"),
    );
    // OpenSSH's privilege separation needs this folder; Debian creates it at boot only.
    if (!(await exists("/run/sshd"))) {
      log("sftp reference: creating /run/sshd (sshd's privilege separation folder)");
      await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    }
    const sshdLog = join(dir, "sshd.log");
    const child = new Deno.Command(SSHD, {
      args: ["-D", "-E", sshdLog, "-f", config],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const sshd = new PrivateSshd(port, dir, child, clientKey, sshdLog);
    try {
      await Promise.race([
        waitListening(port),
        child.status.then((s) => {
          throw new Error(`sshd exited with code ${s.code} before listening`);
        }),
      ]);
    } catch (error) {
      await sshd.stop();
      const text = await Deno.readTextFile(sshdLog).catch(() => "");
      throw new Error(`${(error as Error).message}\n${text}`.trim());
    }
    return sshd;
  }

  /** Arguments of `sftp` for this server, before the destination. */
  sftpArgs(batch: string, verbose = false): string[] {
    return [
      "-b",
      batch,
      "-i",
      this.#clientKey,
      "-P",
      String(this.port),
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      `LogLevel=${verbose ? "DEBUG1" : "ERROR"}`,
      "-o",
      "IdentitiesOnly=yes",
      "root@127.0.0.1",
    ];
  }

  /** Runs `sftp -b` with these batch commands and times the whole invocation. */
  async batch(commands: string[], verbose = false): Promise<TimedRun> {
    const batch = join(this.dir, "batch.txt");
    await Deno.writeTextFile(batch, commands.join("\n") + "\n");
    return check(
      await timed("sftp", this.sftpArgs(batch, verbose), { timeoutMs: 600_000 }),
      `sftp ${commands[0]}`,
    );
  }

  /** The ciphers the session negotiated, read from a verbose no-op session. */
  async describeCipher(): Promise<string> {
    const run = await this.batch(["pwd"], true);
    const cipher = /kex: client->server cipher: (\S+) MAC: (\S+)/.exec(run.stderr);
    const kex = /kex: algorithm: (\S+)/.exec(run.stderr);
    if (!cipher) return "unknown cipher";
    const mac = cipher[2] === "<implicit>" ? "" : ` + ${cipher[2]}`;
    return `${cipher[1]}${mac}${kex ? `, kex ${kex[1]}` : ""}`;
  }

  /** Stops sshd by its PID and waits (bounded) for it to exit. */
  async stop(): Promise<void> {
    await terminate(this.#child, 5000).catch(() => {});
  }

  /** The log of sshd (for error messages). */
  readLog(): Promise<string> {
    return Deno.readTextFile(this.#log).catch(() => "");
  }
}
