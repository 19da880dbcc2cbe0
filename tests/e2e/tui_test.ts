/**
 * The interactive menu in a real terminal: `cloud connect` runs inside a private tmux
 * server (its own socket, killed at the end), keys are sent with `send-keys` and the
 * screen is read with `capture-pane`, polled with a bounded loop. A user trusts the
 * server, registers, logs in, uploads a file, lists it, downloads it and quits; the
 * screen never shows the password and the downloaded bytes match.
 */

import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { formatSize } from "../../protocol/units.ts";
import { backends, Fixture, GOOD_PASSWORD } from "./_harness.ts";
import { randomBytes } from "./_files.ts";

const MAIN = join(resolve(import.meta.dirname!, "../.."), "main.ts");
const CONFIG = join(resolve(import.meta.dirname!, "../.."), "deno.json");
const decoder = new TextDecoder();

function hasTmux(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

const tmuxAvailable = hasTmux();
if (!tmuxAvailable) console.log("tui_test: skipped, tmux is not installed");

/** A private tmux server with one 120x40 window. */
class Tmux {
  readonly socket = `cloudtest-${crypto.randomUUID().slice(0, 8)}`;

  async run(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-L", this.socket, "-f", "/dev/null", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`tmux ${args[0]} failed: ${decoder.decode(out.stderr)}`);
    }
    return decoder.decode(out.stdout);
  }

  #socketPath: string | null = null;

  async start(cwd: string, script: string): Promise<void> {
    await this.run("new-session", "-d", "-x", "120", "-y", "40", "-c", cwd, `bash ${script}`);
    this.#socketPath = (await this.run("display-message", "-p", "#{socket_path}")).trim() || null;
  }

  /** Sends keys (tmux key names such as Enter, Escape, C-c, or literal text). */
  async keys(...keys: string[]): Promise<void> {
    await this.run("send-keys", "-t", "0", ...keys);
  }

  /** Sends text literally (no key-name lookup). */
  async type(text: string): Promise<void> {
    await this.run("send-keys", "-t", "0", "-l", text);
  }

  /** The visible screen, or with `history` the scrollback too. */
  screen(history = false): Promise<string> {
    return this.run("capture-pane", "-p", "-t", "0", ...(history ? ["-S", "-2000"] : []));
  }

  /** Polls the screen until `test` passes; fails with the screen after `timeoutMs`. */
  async waitFor(
    what: string,
    test: (screen: string) => boolean,
    timeoutMs = 20_000,
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let screen = "";
    for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
      screen = await this.screen();
      if (test(screen)) return screen;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Timed out waiting for ${what}; the screen was:\n${screen}`);
  }

  /** Waits until `text` is on the screen. */
  waitText(text: string, timeoutMs?: number): Promise<string> {
    return this.waitFor(JSON.stringify(text), (s) => s.includes(text), timeoutMs);
  }

  /** Kills this test's tmux server (and what runs in it) and removes its socket. */
  async kill(): Promise<void> {
    await this.run("kill-server").catch(() => {});
    if (this.#socketPath) await Deno.remove(this.#socketPath).catch(() => {});
  }
}

const MENU = "? What would you like to do?";

/** Waits for the main menu, then picks an entry by typing its first letters. */
async function choose(tmux: Tmux, letters: string, label: string): Promise<void> {
  await tmux.waitText(MENU);
  await tmux.type(letters);
  await tmux.waitFor(
    `the cursor on ${label}`,
    (s) => s.split("\n").some((l) => l.trim() === `❯ ${label}`),
  );
  await tmux.keys("Enter");
  await tmux.waitText(`❯ ${label}\n`);
}

Deno.test({
  name: "menu in a real terminal: trust, register, log in, upload, list, download, quit",
  ignore: !tmuxAvailable,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = await Fixture.start(backends()[0]!);
    const tmux = new Tmux();
    try {
      const work = join(f.dir, "work");
      await Deno.mkdir(join(work, "up"), { recursive: true });
      const bytes = randomBytes(200_000);
      await Deno.writeFile(join(work, "up", "hello.bin"), bytes);
      const exitFile = join(f.dir, "exit-code");
      const script = join(f.dir, "client.sh");
      await Deno.writeTextFile(
        script,
        [
          `export CLOUD_CONFIG_DIR='${f.configDir}' RUST_BACKTRACE=0 TERM=xterm-256color`,
          `unset NO_COLOR CLOUD_EMAIL CLOUD_PASSWORD`,
          `'${Deno.execPath()}' run --allow-all --unstable-net --config '${CONFIG}' '${MAIN}' ` +
          `connect --host ${f.server.address}`,
          `code=$?`,
          `echo "$code" > '${exitFile}'`,
          `echo "EXIT=$code"`,
          `sleep 300`,
        ].join("\n"),
      );
      await tmux.start(work, script);

      // First contact: the fingerprint is shown and trust is asked.
      const trust = await tmux.waitText("Trust this server");
      assert.ok(trust.includes(f.server.fingerprint), trust);
      await tmux.type("y");
      await tmux.keys("Enter");

      // The menu: not logged in, login-only entries say so.
      const menu = await tmux.waitText(MENU);
      assert.match(menu, /not logged in/);
      assert.match(menu, /Upload \(log in first\)/);

      // Register, with one refused field retried on the spot.
      await choose(tmux, "R", "Register");
      await tmux.waitText("? Email");
      await tmux.type("ada@example.com");
      await tmux.keys("Enter");
      await tmux.waitText("? Password");
      await tmux.type("password123");
      await tmux.keys("Enter");
      await tmux.waitText("too easy to guess");
      await tmux.keys("C-u");
      await tmux.type(GOOD_PASSWORD);
      await tmux.keys("Enter");
      await tmux.waitText("? Confirm password");
      await tmux.type(GOOD_PASSWORD);
      await tmux.keys("Enter");
      await tmux.waitText("? Phone");
      await tmux.type("+1 555 0100");
      await tmux.keys("Enter");
      await tmux.waitText("? Name");
      await tmux.type("Ada Lovelace");
      await tmux.keys("Enter");
      await tmux.waitText("? Log in as ada@example.com now?");
      await tmux.type("n");
      await tmux.keys("Enter");
      await tmux.waitText("Log in as ada@example.com now? no");

      // Log in.
      await choose(tmux, "Log i", "Log in");
      await tmux.waitText("? Email");
      await tmux.type("ada@example.com");
      await tmux.keys("Enter");
      await tmux.waitText("? Password");
      await tmux.type(GOOD_PASSWORD);
      await tmux.keys("Enter");
      await tmux.waitText("Logged in as ada@example.com");
      await tmux.waitFor(
        "the header with the email",
        (s) => /cloud · .* · ada@example\.com · \//.test(s),
      );

      // Upload up/hello.bin to /.
      await choose(tmux, "U", "Upload");
      await tmux.waitText("? File or folder to upload");
      await tmux.type("up/hel");
      await tmux.waitText("❯ up/hello.bin");
      await tmux.keys("Enter");
      await tmux.waitText("? Add another file or folder?");
      await tmux.type("n");
      await tmux.keys("Enter");
      await tmux.waitText("? Upload to remote folder");
      await tmux.keys("Enter");
      await tmux.waitText("Uploaded 1 of 1 file to /");

      // List shows it with its size.
      await choose(tmux, "Li", "List");
      const size = formatSize(bytes.length);
      const row = (l: string) => /^\s+hello\.bin\s/.test(l);
      const listing = await tmux.waitFor(
        "the listing",
        (s) => s.includes("Contents of /") && s.split("\n").some(row),
      );
      const line = listing.split("\n").find(row)!;
      assert.match(
        line,
        new RegExp(
          `hello\\.bin\\s+${size.replace(".", "\\.")}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d`,
        ),
      );

      // Download it to the current folder.
      await choose(tmux, "Do", "Download");
      await tmux.waitText("? Download which file?");
      await tmux.waitText("❯ hello.bin");
      await tmux.keys("Enter");
      await tmux.waitText("? Save to local folder");
      await tmux.waitText("❯ ./");
      await tmux.keys("Enter");
      await tmux.waitText("Downloaded hello.bin");

      // Esc at the menu quits with 0.
      await tmux.waitText(MENU);
      await tmux.keys("Escape");
      await tmux.waitText("EXIT=");
      assert.equal((await Deno.readTextFile(exitFile)).trim(), "0");

      const everything = await tmux.screen(true);
      assert.ok(!everything.includes(GOOD_PASSWORD), "the password never shows on screen");
      assert.ok(!everything.includes("password123"), "a refused password never shows either");
      assert.match(everything, /Password \*{8}/);
      assert.deepEqual(await Deno.readFile(join(work, "hello.bin")), bytes);
    } catch (error) {
      console.log(await tmux.screen(true).catch(() => ""));
      throw error;
    } finally {
      await tmux.kill();
      await f.close();
    }
  },
});
