/**
 * The interactive menu without a terminal: a scripted Prompter answers the questions, a
 * list collects what is printed, Ctrl-C is fired by the test, and a real `cloud serve`
 * subprocess (127.0.0.1, port 0, no discovery) answers the requests.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CloudError } from "../../protocol/errors.ts";
import { formatSize } from "../../protocol/units.ts";
import { CloudClient } from "../../client/client.ts";
import { connectTrusted } from "../../client/connect.ts";
import { menuChoices, type MenuDeps, runMenu } from "../../client/menu.ts";
import { runForm } from "../../client/menu_account.ts";
import type { MenuOutput } from "../../client/menu_context.ts";
import { remoteResolve } from "../../client/menu_browse.ts";
import { completeLocalPath } from "../../client/menu_paths.ts";
import {
  type ConfirmOptions,
  type InputOptions,
  type MenuChoice,
  type PasswordOptions,
  type PathOptions,
  PromptCancelled,
  type Prompter,
  type SelectOptions,
} from "../../client/menu_prompts.ts";
import { type InterruptSource, MenuSession } from "../../client/menu_session.ts";
import { errorText, header, listingTable } from "../../client/menu_view.ts";
import { createStyle, detectStyle, stripAnsi } from "../../client/style.ts";
import { TrustStore } from "../../client/trust.ts";
import type { ProgressSink } from "../../client/transfer.ts";
import { backends, Fixture, GOOD_PASSWORD } from "../e2e/_harness.ts";
import { randomBytes } from "../e2e/_files.ts";

const plain = createStyle({ color: false, unicode: false });

// --- a scripted Prompter ----------------------------------------------------------------

type Answer =
  | { select: string }
  | { input: string }
  | { password: string }
  | { confirm: boolean }
  | { path: string }
  | { cancel: "escape" | "interrupt" };

interface Asked {
  kind: string;
  message: string;
  /** Why the answer was refused by the field's validation (then the field is asked again). */
  refused?: string;
  /** For select: the lines shown, with their disabled state. */
  choices?: { name: string; disabled: boolean | string }[];
}

/**
 * Answers prompts from a script, in order. A refused answer is recorded and the next
 * scripted answer goes to the same field, as a user retyping it would; running out of
 * answers fails the test instead of hanging.
 */
class ScriptedPrompter implements Prompter {
  readonly asked: Asked[] = [];
  #answers: Answer[];

  constructor(answers: Answer[]) {
    this.#answers = [...answers];
  }

  get remaining(): number {
    return this.#answers.length;
  }

  #next(kind: string, message: string): Answer {
    const answer = this.#answers.shift();
    if (answer === undefined) {
      throw new Error(`Script ran out at ${kind} "${stripAnsi(message)}"`);
    }
    if ("cancel" in answer) throw new PromptCancelled(answer.cancel);
    if (!(kind in answer)) {
      throw new Error(
        `Script expected ${Object.keys(answer)[0]} but the menu asked ${kind} "${
          stripAnsi(message)
        }"`,
      );
    }
    return answer;
  }

  async #text(
    kind: "input" | "password" | "path",
    message: string,
    validate: ((value: string) => string | null | Promise<string | null>) | undefined,
    fallback?: string,
  ): Promise<string> {
    for (;;) {
      const answer = this.#next(kind, message) as Record<string, string>;
      let value = answer[kind]!;
      if (value === "" && fallback !== undefined) value = fallback;
      const problem = validate ? await validate(value) : null;
      this.asked.push({
        kind,
        message: stripAnsi(message),
        ...(problem ? { refused: problem } : {}),
      });
      if (problem === null) return value;
    }
  }

  select<T>(o: SelectOptions<T>): Promise<T> {
    const answer = this.#next("select", o.message) as { select: string };
    const lines = o.choices.filter((c): c is MenuChoice<T> => !("separator" in c));
    this.asked.push({
      kind: "select",
      message: stripAnsi(o.message),
      choices: lines.map((c) => ({ name: stripAnsi(c.name), disabled: c.disabled ?? false })),
    });
    const chosen = lines.find((c) => stripAnsi(c.name).trim().startsWith(answer.select));
    if (!chosen) {
      throw new Error(
        `No line "${answer.select}" in ${lines.map((c) => stripAnsi(c.name)).join(" | ")}`,
      );
    }
    if (chosen.disabled) throw new Error(`Line "${answer.select}" is disabled`);
    return Promise.resolve(chosen.value);
  }

  input(o: InputOptions): Promise<string> {
    return this.#text("input", o.message, o.validate, o.default);
  }

  password(o: PasswordOptions): Promise<string> {
    return this.#text("password", o.message, o.validate);
  }

  path(o: PathOptions): Promise<string> {
    return this.#text("path", o.message, o.validate, o.initial?.value);
  }

  confirm(o: ConfirmOptions): Promise<boolean> {
    const answer = this.#next("confirm", o.message) as { confirm: boolean };
    this.asked.push({ kind: "confirm", message: stripAnsi(o.message) });
    return Promise.resolve(answer.confirm);
  }
}

/** Collects printed lines. */
class Lines implements MenuOutput {
  readonly lines: string[] = [];
  line(text = ""): void {
    this.lines.push(stripAnsi(text));
  }
  get text(): string {
    return this.lines.join("\n");
  }
}

/** Ctrl-C fired by the test. */
class TestInterrupts implements InterruptSource {
  #handler: (() => void) | undefined;
  listening = 0;
  onInterrupt(handler: () => void): () => void {
    this.#handler = handler;
    this.listening++;
    return () => {
      this.#handler = undefined;
      this.listening--;
    };
  }
  fire(): void {
    this.#handler?.();
  }
}

/** A progress sink that presses Ctrl-C once the first bytes moved, when armed. */
function ctrlCAfterFirstBytes(interrupts: TestInterrupts) {
  const state = { armed: false, fired: 0 };
  const sink: ProgressSink = {
    start() {},
    advance() {
      if (!state.armed) return;
      state.armed = false;
      state.fired++;
      interrupts.fire();
    },
    stop() {},
  };
  return { state, sink };
}

async function withServer(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const fixture = await Fixture.start(backends()[0]!);
  try {
    await fn(fixture);
  } finally {
    await fixture.close();
  }
}

function connector(f: Fixture) {
  const store = new TrustStore(f.configDir);
  return async () => {
    const { conn } = await connectTrusted({
      host: f.server.host,
      port: f.server.port,
      trust: { fingerprint: `sha256:${f.server.fingerprint}` },
      store,
    });
    return await CloudClient.open(conn);
  };
}

function depsFor(f: Fixture, prompter: Prompter, output: Lines, extra: Partial<MenuDeps> = {}) {
  return {
    prompter,
    output,
    style: plain,
    connect: connector(f),
    address: f.server.address,
    progress: () => ({ start() {}, advance() {}, stop() {} }),
    interrupts: new TestInterrupts(),
    ...extra,
  } satisfies Partial<MenuDeps>;
}

const EMAIL = "ada@example.com";
const ACCOUNT: Answer[] = [
  { input: EMAIL },
  { password: GOOD_PASSWORD },
  { password: GOOD_PASSWORD },
  { input: "+44 20 7946 0000" },
  { input: "Ada Lovelace" },
];

function sessionTest(name: string, fn: () => Promise<void>) {
  Deno.test({ name, sanitizeResources: false, sanitizeOps: false, fn });
}

// --- pure parts -------------------------------------------------------------------------

Deno.test("menuChoices() disables login-only entries until someone logs in, and says so", () => {
  const out = menuChoices(false);
  assert.deepEqual(out.map((c) => c.name), [
    "Register",
    "Log in",
    "Upload",
    "Download",
    "List",
    "Delete",
    "Rename",
    "Make folder",
    "Change password",
    "Log out",
    "Quit",
  ]);
  const disabled = out.filter((c) => c.disabled !== undefined).map((c) => c.value);
  assert.deepEqual(disabled, [
    "upload",
    "download",
    "list",
    "delete",
    "rename",
    "mkdir",
    "passwd",
    "logout",
  ]);
  assert.equal(out.find((c) => c.value === "upload")!.disabled, "log in first");
  assert.ok(menuChoices(true).every((c) => c.disabled === undefined));
});

Deno.test("runForm() goes back one field on Esc and cancels on Esc at the first", async () => {
  const prompter = new ScriptedPrompter([
    { input: "a" },
    { cancel: "escape" },
    { input: "a2" },
    { input: "b" },
  ]);
  const steps = ["first", "second"].map((key) => ({
    key,
    ask: () => prompter.input({ message: key }),
  }));
  assert.deepEqual(await runForm(steps), { first: "a2", second: "b" });
  const again = new ScriptedPrompter([{ cancel: "escape" }]);
  await assert.rejects(
    runForm([{ key: "x", ask: () => again.input({ message: "x" }) }]),
    (e: unknown) => e instanceof PromptCancelled && e.how === "escape",
  );
});

Deno.test("remoteResolve() starts at / for a leading slash, else at the folder, and applies ..", () => {
  assert.equal(remoteResolve("docs", "a.txt"), "docs/a.txt");
  assert.equal(remoteResolve("docs", "/a.txt"), "a.txt");
  assert.equal(remoteResolve("docs/2024", "../x/"), "docs/x");
  assert.equal(remoteResolve("docs", "/"), "");
  assert.equal(remoteResolve("", "../.."), "");
});

Deno.test("completeLocalPath() completes names in the typed folder, folders first", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cloud-menu-paths-" });
  try {
    await Deno.mkdir(join(dir, "docs/sub"), { recursive: true });
    await Deno.writeTextFile(join(dir, "docs/report.pdf"), "x".repeat(2048));
    await Deno.writeTextFile(join(dir, "docs/readme.md"), "hi");
    await Deno.writeTextFile(join(dir, ".hidden"), "");
    await Deno.writeTextFile(join(dir, "notes.txt"), "");
    const top = await completeLocalPath("", { cwd: dir });
    assert.deepEqual(top.map((c) => c.path), ["docs/", "notes.txt"]);
    assert.deepEqual((await completeLocalPath("do", { cwd: dir })).map((c) => c.path), ["docs/"]);
    const inside = await completeLocalPath("docs/", { cwd: dir });
    assert.deepEqual(inside.map((c) => c.path), [
      "docs/",
      "docs/sub/",
      "docs/readme.md",
      "docs/report.pdf",
    ]);
    const re = await completeLocalPath("docs/rep", { cwd: dir });
    assert.deepEqual(re.map((c) => c.path), ["docs/report.pdf"]);
    assert.equal(re[0]!.description.split(" ")[0], "2.0");
    assert.deepEqual((await completeLocalPath("docs/RE", { cwd: dir })).map((c) => c.path), [
      "docs/readme.md",
      "docs/report.pdf",
    ]);
    assert.deepEqual((await completeLocalPath(".h", { cwd: dir })).map((c) => c.path), [".hidden"]);
    assert.deepEqual(
      (await completeLocalPath("", { cwd: dir, dirsOnly: true })).map((c) => c.path),
      ["docs/"],
    );
    assert.deepEqual(
      (await completeLocalPath("~/do", { cwd: "/", home: dir })).map((c) => c.path),
      ["~/docs/"],
    );
    assert.deepEqual(await completeLocalPath("nope/x", { cwd: dir }), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("detectStyle() is plain text and ASCII with NO_COLOR or TERM=dumb", () => {
  const env = (vars: Record<string, string>) => ({ get: (name: string) => vars[name] });
  const cases: Record<string, string>[] = [{ NO_COLOR: "1", TERM: "xterm" }, { TERM: "dumb" }];
  for (const vars of cases) {
    const style = detectStyle(env(vars));
    assert.equal(style.color, false);
    assert.equal(style.red("x"), "x");
    assert.equal(style.symbols.ok, "ok");
    assert.ok(
      /^[\x20-\x7e]*$/.test(
        header(style, { serverName: "nas", address: "h:1", email: null, folder: "/" }),
      ),
    );
  }
  const rich = detectStyle(env({ TERM: "xterm-256color" }));
  assert.equal(rich.color, true);
  assert.notEqual(rich.red("x"), "x");
  assert.equal(stripAnsi(rich.red("x")), "x");
  // An empty NO_COLOR does not count (no-color.org).
  assert.equal(detectStyle(env({ NO_COLOR: "", TERM: "xterm" })).color, true);
});

Deno.test("listingTable() shows name, human size and modified time, folders first", () => {
  const modified = new Date(2026, 0, 2, 3, 4).getTime();
  const lines = listingTable(plain, [
    { name: "b.bin", type: "file", size: 1536, sha256: null, modified },
    { name: "a", type: "dir", size: 0, sha256: null, modified },
  ]);
  assert.match(lines[0]!, /Name\s+Size\s+Modified/);
  assert.match(lines[1]!, /^\s+a\/\s+-\s+2026-01-02 03:04$/);
  assert.match(lines[2]!, /^\s+b\.bin\s+1\.5 KiB\s+2026-01-02 03:04$/);
  assert.match(lines[3]!, /1 folder, 1 file, 1\.5 KiB/);
});

Deno.test("errorText() says when a locked account or blocked address may retry", () => {
  const now = new Date(2026, 5, 1, 12, 0).getTime();
  const retryAt = new Date(now + 15 * 60_000).toISOString();
  const locked = errorText(new CloudError("E_LOCKED", "locked", { retryAt }), now);
  assert.match(locked, /account is locked; try again at 12:15 \(in 15 min\)/);
  const tomorrow = new Date(now + 24 * 3600_000).toISOString();
  assert.match(
    errorText(new CloudError("E_BLOCKED", "blocked", { retryAt: tomorrow }), now),
    /address: it is blocked; try again at 2026-06-02 12:00 \(in 24 h\)/,
  );
});

// --- against a real server ----------------------------------------------------------------

sessionTest(
  "menu: register validates each field on the spot and retries only that field",
  async () => {
    await withServer(async (f) => {
      const prompter = new ScriptedPrompter([
        { select: "Register" },
        { input: "not-an-email" },
        { input: EMAIL },
        { password: "short" },
        { password: "password123" },
        { password: GOOD_PASSWORD },
        { password: "Different-Horse-99" },
        { password: GOOD_PASSWORD },
        { input: "12" },
        { input: "+44 20 7946 0000" },
        { input: "" },
        { input: "Ada Lovelace" },
        { confirm: false },
        { select: "Quit" },
      ]);
      const out = new Lines();
      const code = await runMenu({}, depsFor(f, prompter, out));
      assert.equal(code, 0, out.text);
      assert.equal(prompter.remaining, 0);
      const refused = prompter.asked.filter((a) => a.refused).map((a) => [a.message, a.refused]);
      assert.equal(refused.length, 6, JSON.stringify(refused));
      assert.deepEqual(refused.map(([message]) => message!.split(" ")[0]), [
        "Email",
        "Password",
        "Password",
        "Confirm",
        "Phone",
        "Name",
      ]);
      assert.match(refused[0]![1]!, /email/i);
      assert.match(refused[1]![1]!, /too short/);
      assert.match(refused[2]![1]!, /too easy to guess/);
      assert.match(refused[3]![1]!, /differ/);
      assert.match(refused[4]![1]!, /phone/i);
      // The menu printed no password, and the account works.
      assert.ok(!out.text.includes(GOOD_PASSWORD));
      assert.match(out.text, /Registered ada@example\.com/);
      const login = await f.as(EMAIL, GOOD_PASSWORD, ["login"]);
      assert.equal(login.code, 0, login.stderr);
    });
  },
);

sessionTest("menu: log in, upload, list, download, rename, delete and quit", async () => {
  await withServer(async (f) => {
    assert.equal((await f.register(EMAIL, GOOD_PASSWORD)).code, 0);
    const work = join(f.dir, "work");
    await Deno.mkdir(join(work, "up/photos"), { recursive: true });
    await Deno.mkdir(join(work, "down"));
    const bytes = randomBytes(50_000);
    await Deno.writeFile(join(work, "up/data.bin"), bytes);
    await Deno.writeTextFile(join(work, "up/photos/cat.txt"), "meow");
    const prompter = new ScriptedPrompter([
      { select: "Log in" },
      { input: EMAIL },
      { password: GOOD_PASSWORD },
      { select: "Upload" },
      { path: "up/missing.bin" },
      { path: "up/data.bin" },
      { confirm: true },
      { path: "up/photos/" },
      { confirm: false },
      { input: "" }, // the default: the folder being browsed, "/"
      { select: "List" },
      { select: "Back to the menu" },
      { select: "Download" },
      { select: "data.bin" },
      { path: "down" },
      { select: "Upload" },
      { path: "up/data.bin" },
      { confirm: false },
      { input: "/" },
      { confirm: false }, // "data.bin" already exists: keep it
      { select: "Rename" },
      { select: "data.bin" },
      { input: "renamed.bin" },
      { confirm: true },
      { select: "Delete" },
      { select: "photos/" },
      { select: "* this folder" },
      { confirm: false },
      { select: "Delete" }, // the browser reopens in /photos, where it was left
      { select: "* this folder" },
      { confirm: true },
      { cancel: "escape" },
    ]);
    const out = new Lines();
    const code = await runMenu({}, depsFor(f, prompter, out, { cwd: work }));
    assert.equal(code, 0, out.text);
    assert.equal(prompter.remaining, 0);
    // The main menu offered everything once logged in.
    const menus = prompter.asked.filter((a) => a.message === "What would you like to do?");
    assert.equal(menus[0]!.choices!.find((c) => c.name === "Upload")!.disabled, "log in first");
    assert.equal(menus[1]!.choices!.find((c) => c.name === "Upload")!.disabled, false);
    // A missing local file was refused on the spot.
    assert.match(
      prompter.asked.find((a) => a.refused)!.refused!,
      /No such file or folder "up\/missing\.bin"/,
    );
    assert.match(out.text, /Uploaded 2 of 2 files to \//);
    // The listing: name, human size, modified.
    const row = out.lines.find((l) => /^\s+data\.bin\s/.test(l));
    assert.ok(row, out.text);
    assert.match(
      row!,
      new RegExp(
        `data\\.bin\\s+${
          formatSize(50_000).replace(".", "\\.")
        }\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d`,
      ),
    );
    assert.match(out.text, /photos\/\s+-/);
    // The download has the same bytes.
    assert.deepEqual(await Deno.readFile(join(work, "down/data.bin")), bytes);
    assert.ok(out.text.includes(`Downloaded data.bin (${formatSize(50_000)})`), out.text);
    // The second upload asked before replacing.
    assert.ok(
      prompter.asked.some((a) =>
        a.kind === "confirm" && /"data\.bin" already exists/.test(a.message)
      ),
    );
    // Rename and delete asked for confirmation, and did what was confirmed.
    assert.ok(prompter.asked.some((a) => a.message === "Rename /data.bin to /renamed.bin?"));
    assert.match(out.text, /Nothing deleted/);
    assert.match(out.text, /Deleted \/photos/);
    const ls = await f.as(EMAIL, GOOD_PASSWORD, ["ls", "--json"]);
    assert.deepEqual(JSON.parse(ls.stdout).map((e: { name: string }) => e.name), ["renamed.bin"]);
    assert.ok(!out.text.includes(GOOD_PASSWORD));
  });
});

sessionTest("menu: a wrong password is one error line; a lock says when to retry", async () => {
  await withServer(async (f) => {
    const answers: Answer[] = [];
    for (let i = 0; i < 3; i++) {
      answers.push({ select: "Log in" }, { input: "bob@example.com" }, {
        password: "Wrong-Password-1",
      });
    }
    answers.push({ cancel: "interrupt" });
    const prompter = new ScriptedPrompter(answers);
    const out = new Lines();
    assert.equal(await runMenu({}, depsFor(f, prompter, out)), 0);
    const errors = out.lines.filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 3, out.text);
    assert.equal(errors[0], "error: Wrong email or password");
    assert.match(errors[2]!, /locked; try again at .*\(in 15 min\)/);
    assert.ok(!out.text.includes("Wrong-Password-1"));
    assert.ok(!out.text.includes("    at "), "no stack trace");
  });
});

sessionTest("menu: Ctrl-C during a download keeps nothing and stays logged in", async () => {
  await withServer(async (f) => {
    assert.equal((await f.register(EMAIL, GOOD_PASSWORD)).code, 0);
    const work = join(f.dir, "work");
    await Deno.mkdir(join(work, "down"), { recursive: true });
    const bytes = randomBytes(3 * 1024 * 1024);
    await Deno.writeFile(join(work, "big.bin"), bytes);
    assert.equal((await f.as(EMAIL, GOOD_PASSWORD, ["put", join(work, "big.bin")])).code, 0);
    const interrupts = new TestInterrupts();
    const ctrlC = ctrlCAfterFirstBytes(interrupts);
    const prompter = new ScriptedPrompter([
      { select: "Log in" },
      { input: EMAIL },
      { password: GOOD_PASSWORD },
      { select: "Download" },
      { select: "big.bin" },
      { path: "down" },
      { select: "List" },
      { select: "Quit" },
    ]);
    const out = new Lines();
    const code = await runMenu(
      {},
      depsFor(f, prompter, out, {
        cwd: work,
        interrupts,
        progress: () => {
          ctrlC.state.armed = true;
          return ctrlC.sink;
        },
      }),
    );
    assert.equal(code, 0, out.text);
    assert.equal(ctrlC.state.fired, 1);
    assert.equal(interrupts.listening, 0, "the Ctrl-C listener is removed after the transfer");
    assert.match(out.text, /Download cancelled; nothing was kept/);
    assert.deepEqual([...Deno.readDirSync(join(work, "down"))], []);
    // Still logged in after the silent reconnect: List worked without asking again.
    assert.match(out.text, /Contents of \//);
    assert.match(out.text, /big\.bin\s+3\.0 MiB/);
    assert.equal(f.server.lines.filter((l) => l.includes("auth_ok")).length, 3);
  });
});

sessionTest(
  "menu: Ctrl-C during an upload leaves nothing visible and stays logged in",
  async () => {
    await withServer(async (f) => {
      assert.equal((await f.register(EMAIL, GOOD_PASSWORD)).code, 0);
      const work = join(f.dir, "work");
      await Deno.mkdir(work, { recursive: true });
      await Deno.writeFile(
        join(work, "big.bin"),
        randomBytes(3 * 1024 * 1024),
      );
      const interrupts = new TestInterrupts();
      const ctrlC = ctrlCAfterFirstBytes(interrupts);
      const prompter = new ScriptedPrompter([
        { select: "Log in" },
        { input: EMAIL },
        { password: GOOD_PASSWORD },
        { select: "Upload" },
        { path: "big.bin" },
        { confirm: false },
        { input: "/" },
        { select: "List" },
        { select: "Quit" },
      ]);
      const out = new Lines();
      const code = await runMenu(
        {},
        depsFor(f, prompter, out, {
          cwd: work,
          interrupts,
          progress: () => {
            ctrlC.state.armed = true;
            return ctrlC.sink;
          },
        }),
      );
      assert.equal(code, 0, out.text);
      assert.equal(ctrlC.state.fired, 1);
      assert.match(out.text, /Upload cancelled; 0 of 1 files had finished/);
      assert.match(out.text, /\(empty folder\)/);
      const ls = await f.as(EMAIL, GOOD_PASSWORD, ["ls", "--json"]);
      assert.deepEqual(JSON.parse(ls.stdout), []);
    });
  },
);

sessionTest(
  "MenuSession reconnects and logs in again after the server closed it for idleness",
  async () => {
    const fixture = await Fixture.start(backends()[0]!, ["--idle-timeout", "1s"]);
    try {
      assert.equal((await fixture.register(EMAIL, GOOD_PASSWORD)).code, 0);
      // Never reconnect proactively: the retry after E_IDLE is what is tested.
      const session = await MenuSession.open(fixture.server.address, connector(fixture), {
        anonymousIdleMs: 3_600_000,
      });
      const closed = () => fixture.server.lines.filter((l) => l.includes("idle_close")).length;
      const deadline = Date.now() + 15_000;
      while (closed() < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(closed(), 1, "the server closed the idle connection");
      const me = await session.login(EMAIL, GOOD_PASSWORD);
      assert.equal(me.email, EMAIL);
      const listing = await session.use((c) => c.call({ t: "ls", path: "" }));
      assert.deepEqual(listing.entries, []);
      await session.close();
    } finally {
      await fixture.close();
    }
  },
);

sessionTest(
  "menu: register logs in at once when asked; change password, log out, log in again",
  async () => {
    await withServer(async (f) => {
      const NEW_PASSWORD = "Purple-Monkey-Dishwasher-7";
      const prompter = new ScriptedPrompter([
        { select: "Register" },
        ...ACCOUNT,
        { confirm: true },
        { select: "Change password" },
        { password: "Not-The-Password-3" },
        { password: NEW_PASSWORD },
        { password: NEW_PASSWORD },
        { select: "Change password" },
        { password: GOOD_PASSWORD },
        { password: GOOD_PASSWORD },
        { password: NEW_PASSWORD },
        { password: NEW_PASSWORD },
        { select: "Log out" },
        { select: "Log in" },
        { input: "" }, // the email of the last login is offered
        { password: NEW_PASSWORD },
        { select: "Quit" },
      ]);
      const out = new Lines();
      assert.equal(await runMenu({}, depsFor(f, prompter, out)), 0, out.text);
      assert.equal(prompter.remaining, 0);
      const headers = out.lines.filter((l) => l.startsWith("cloud |"));
      assert.match(headers[0]!, /not logged in$/);
      assert.match(headers[1]!, /ada@example\.com \| \/$/);
      assert.match(out.text, /error: The current password is wrong; nothing changed/);
      assert.match(
        prompter.asked.find((a) => a.refused)!.refused!,
        /same as the current one/,
      );
      assert.match(out.text, /ok Password changed/);
      assert.match(out.text, /ok Logged out ada@example\.com/);
      assert.match(headers.at(-2)!, /not logged in$/);
      assert.match(headers.at(-1)!, /ada@example\.com/);
      for (const secret of [GOOD_PASSWORD, NEW_PASSWORD, "Not-The-Password-3"]) {
        assert.ok(!out.text.includes(secret));
      }
      assert.equal((await f.as(EMAIL, NEW_PASSWORD, ["login"])).code, 0);
    });
  },
);
