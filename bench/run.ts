/**
 * `deno task bench`: transfer benchmark of `cloud` (issue 3). Uploads and downloads one
 * large file (1 GiB) and many small ones (1000 × 4 KiB) over 127.0.0.1 with the real
 * server and CLI, each in its own process, and measures in the same run, on the same
 * files, two references: raw TLS 1.3 throughput (`openssl s_server`/`s_client`) and
 * OpenSSH `sftp` against a private `sshd`. Prints the results table and rewrites the
 * "Transfers" section of BENCHMARKS.md.
 *
 * Usage:
 *   deno run --allow-all --unstable-net bench/run.ts [--runs 3] [--size 1GiB] [--files 1000]
 *     [--file-size 4KiB] [--only cloud,sftp,tls] [--no-install] [--write | --no-write]
 *     [--keep]
 *
 * BENCHMARKS.md is written after a full run (all systems, default sizes) unless
 * `--no-write`; a partial run writes it only with `--write`. Everything stays on
 * 127.0.0.1; every file is made in a temporary folder that is removed at the end (unless
 * `--keep`); every process started is stopped by its PID.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { formatSize, parseSize } from "../protocol/units.ts";
import { argListBytes, CloudCli, CloudServer } from "./_cloud.ts";
import {
  type BenchResults,
  machineInfo,
  newSamples,
  renderSection,
  type Samples,
  type Scenario,
  type System,
  writeSection,
} from "./_report.ts";
import { ensureSshd, PrivateSshd } from "./_sftp.ts";
import { makeCertificate, rawTlsOnce } from "./_tls.ts";
import {
  countFiles,
  cpuSeconds,
  filesPerSecond,
  mbPerSecond,
  PeakSampler,
  readMemory,
  removeIfExists,
  timed,
  writeRandomFile,
  writeSmallFiles,
} from "./_util.ts";

const BENCHMARKS_MD = fileURLToPath(new URL("../BENCHMARKS.md", import.meta.url));
const ALL_SYSTEMS: System[] = ["tls", "sftp", "cloud"];
const DEFAULTS = { runs: 3, size: "1GiB", files: 1000, fileSize: "4KiB" };
/** Linux's limit on one argument list (execve E2BIG), less a margin for the environment. */
const ARG_MAX_SAFE = 1_000_000;

function log(line: string): void {
  console.error(line);
}

function usage(message: string): never {
  console.error(`bench/run.ts: ${message}`);
  console.error(
    "usage: bench/run.ts [--runs N] [--size SIZE] [--files N] [--file-size SIZE] " +
      "[--only cloud,sftp,tls] [--no-install] [--write|--no-write] [--keep]",
  );
  Deno.exit(2);
}

function parseOptions() {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      options: {
        runs: { type: "string", default: String(DEFAULTS.runs) },
        size: { type: "string", default: DEFAULTS.size },
        files: { type: "string", default: String(DEFAULTS.files) },
        "file-size": { type: "string", default: DEFAULTS.fileSize },
        only: { type: "string", default: ALL_SYSTEMS.join(",") },
        "no-install": { type: "boolean", default: false },
        write: { type: "boolean", default: false },
        "no-write": { type: "boolean", default: false },
        keep: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    usage((error as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(
      "bench/run.ts: transfer benchmark of cloud vs raw TLS and sftp (see the file's header)",
    );
    Deno.exit(0);
  }
  const int = (text: string, name: string, min: number, max: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) usage(`--${name} must be ${min}..${max}`);
    return n;
  };
  const size = (text: string, name: string) => {
    let n: number | null;
    try {
      n = parseSize(text);
    } catch (error) {
      usage(`--${name}: ${(error as Error).message}`);
    }
    if (n === null || n < 1 || n > 64 * 1024 ** 3) usage(`--${name} must be 1 B..64 GiB`);
    return n;
  };
  const systems = v.only.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const s of systems) {
    if (!ALL_SYSTEMS.includes(s as System)) usage(`--only: unknown system "${s}"`);
  }
  const options = {
    runs: int(v.runs, "runs", 1, 20),
    bigSize: size(v.size, "size"),
    smallCount: int(v.files, "files", 1, 100_000),
    smallSize: size(v["file-size"], "file-size"),
    systems: ALL_SYSTEMS.filter((s) => systems.includes(s)),
    install: !v["no-install"],
    keep: v.keep,
    write: false,
  };
  const full = options.systems.length === ALL_SYSTEMS.length &&
    options.bigSize === parseSize(DEFAULTS.size) && options.smallCount === DEFAULTS.files &&
    options.smallSize === parseSize(DEFAULTS.fileSize);
  options.write = v["no-write"] ? false : v.write || full;
  return options;
}

type Options = ReturnType<typeof parseOptions>;

/** Flushes dirty pages so one measurement's writeback does not land in the next. */
async function settle(): Promise<void> {
  await timed("sync", []);
}

/** The commit measured, e.g. "commit 084f905" or "commit 084f905 + uncommitted changes". */
async function revision(): Promise<string> {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const git = async (args: string[]) => {
    try {
      const out = await new Deno.Command("git", {
        args,
        cwd: root,
        stdout: "piped",
        stderr: "null",
      })
        .output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
    } catch {
      return null;
    }
  };
  const head = await git(["rev-parse", "--short", "HEAD"]);
  if (head === null) return "an unknown revision";
  const dirty = await git(["status", "--porcelain", "--untracked-files=no"]);
  return `commit ${head}${dirty ? " + uncommitted changes" : ""}`;
}

/** The 1, 5 and 15 minute load averages. */
async function loadAverage(): Promise<string> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "");
  return text.split(" ").slice(0, 3).join(" ");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

function describe(scenario: Scenario, ms: number, o: Options): string {
  const rate = scenario === "upBig" || scenario === "downBig"
    ? `${mbPerSecond(o.bigSize, ms).toFixed(0)} MB/s`
    : `${filesPerSecond(o.smallCount, ms).toFixed(0)} files/s`;
  return `${(ms / 1000).toFixed(2)} s (${rate} whole command)`;
}

interface Fixture {
  tmp: string;
  bigFile: string;
  bigSha: string;
  smallDir: string;
  smallNames: string[];
}

async function makeFixture(tmp: string, o: Options): Promise<Fixture> {
  const data = join(tmp, "data");
  await Deno.mkdir(data);
  const bigFile = join(data, "big.bin");
  log(
    `making ${formatSize(o.bigSize)} of random data and ${o.smallCount} files of ${
      formatSize(o.smallSize)
    }`,
  );
  await writeRandomFile(bigFile, o.bigSize);
  const smallDir = join(data, "small");
  const smallNames = await writeSmallFiles(smallDir, o.smallCount, o.smallSize);
  return { tmp, bigFile, bigSha: await sha256File(bigFile), smallDir, smallNames };
}

/** Checks a downloaded big file: its size always, its SHA-256 on the first run. */
async function verifyBig(path: string, fx: Fixture, o: Options, deep: boolean, who: string) {
  const size = (await Deno.stat(path)).size;
  if (size !== o.bigSize) throw new Error(`${who}: downloaded ${size} of ${o.bigSize} bytes`);
  if (deep && (await sha256File(path)) !== fx.bigSha) {
    throw new Error(`${who}: the downloaded file differs from the original`);
  }
}

async function verifySmall(dir: string, o: Options, who: string) {
  const { files, bytes } = await countFiles(dir);
  if (files !== o.smallCount || bytes !== o.smallCount * o.smallSize) {
    throw new Error(`${who}: downloaded ${files} files, ${bytes} bytes`);
  }
}

function samplesOf(results: BenchResults, system: System, scenario: Scenario): Samples {
  const bySystem = (results.samples[system] ??= {});
  return (bySystem[scenario] ??= newSamples());
}

// --- raw TLS -----------------------------------------------------------------------------

/** One system's measurements: `run(n)` measures every scenario once; `close()` cleans up. */
interface Runner {
  run(run: number): Promise<void>;
  close(): Promise<void>;
}

async function tlsRunner(fx: Fixture, o: Options, results: BenchResults): Promise<Runner> {
  const pem = await makeCertificate(fx.tmp);
  results.notes.push(
    "Raw TLS: `openssl s_server -tls1_3` → `wc -c` receiving the same file from " +
      "`openssl s_client -tls1_3 -nocommands` (ECDSA P-256, OpenSSL's default TLS 1.3 suite), " +
      "one direction, timed from the client's start until the receiver has every byte.",
  );
  return {
    async run(run) {
      await settle();
      const ms = await rawTlsOnce(fx.bigFile, o.bigSize, pem);
      samplesOf(results, "tls", "upBig").wallMs.push(ms);
      log(`run ${run}/${o.runs}: raw TLS ${formatSize(o.bigSize)}: ${describe("upBig", ms, o)}`);
    },
    async close() {},
  };
}

// --- sftp --------------------------------------------------------------------------------

async function sftpRunner(
  fx: Fixture,
  o: Options,
  results: BenchResults,
): Promise<Runner | null> {
  const reason = await ensureSshd(o.install, log);
  if (reason) {
    log(`sftp reference skipped: ${reason}`);
    results.notes.push(`sftp was not measured: ${reason}.`);
    return null;
  }
  const sshd = await PrivateSshd.start(join(fx.tmp, "sshd"), log);
  const remote = join(fx.tmp, "sftp-remote");
  const local = join(fx.tmp, "sftp-local");
  try {
    await Deno.mkdir(remote);
    await Deno.mkdir(local);
    const cipher = await sshd.describeCipher();
    results.notes.push(
      `sftp: OpenSSH's own defaults (${cipher}), a private \`sshd\` on 127.0.0.1 ` +
        `with Debian's sftp-server; \`put\`/\`get\` for the large ` +
        `file, \`put -r\`/\`get -r\` of the folder for the small ones; no fsync.`,
    );
  } catch (error) {
    await sshd.stop();
    throw error;
  }
  const runOnce = async (run: number) => {
    const say = (scenario: Scenario, label: string, ms: number) => {
      samplesOf(results, "sftp", scenario).wallMs.push(ms);
      log(`run ${run}/${o.runs}: sftp ${label}: ${describe(scenario, ms, o)}`);
    };
    await settle();
    (results.baselineMs.sftp ??= []).push((await sshd.batch(["pwd"])).ms);

    const remoteBig = join(remote, "big.bin");
    const localBig = join(local, "big.bin");
    await settle();
    say(
      "upBig",
      `upload ${formatSize(o.bigSize)}`,
      (await sshd.batch([`put ${fx.bigFile} ${remoteBig}`])).ms,
    );
    await settle();
    say(
      "downBig",
      `download ${formatSize(o.bigSize)}`,
      (await sshd.batch([`get ${remoteBig} ${localBig}`])).ms,
    );
    await verifyBig(localBig, fx, o, run === 1, "sftp");
    await removeIfExists(localBig);
    await removeIfExists(remoteBig);

    const remoteSmall = join(remote, "small");
    const localSmall = join(local, "small");
    await settle();
    say(
      "upSmall",
      `upload ${o.smallCount} files`,
      (await sshd.batch([`put -r ${fx.smallDir} ${remoteSmall}`])).ms,
    );
    await settle();
    say(
      "downSmall",
      `download ${o.smallCount} files`,
      (await sshd.batch([`get -r ${remoteSmall} ${localSmall}`])).ms,
    );
    await verifySmall(localSmall, o, "sftp");
    await removeIfExists(localSmall);
    await removeIfExists(remoteSmall);
  };
  return {
    async run(run) {
      try {
        await runOnce(run);
      } catch (error) {
        const text = await sshd.readLog();
        throw new Error(`${(error as Error).message}\nsshd log:\n${text.slice(-2000)}`);
      }
    },
    close: () => sshd.stop(),
  };
}

// --- cloud -------------------------------------------------------------------------------

async function cloudRunner(fx: Fixture, o: Options, results: BenchResults): Promise<Runner> {
  const dataDir = join(fx.tmp, "cloud-data");
  const configDir = join(fx.tmp, "cloud-config");
  const email = "bench@example.com";
  const password = `bench-${crypto.randomUUID()}`;
  const local = join(fx.tmp, "cloud-local");
  await Deno.mkdir(local);
  const remoteSmall = fx.smallNames.map((name) => `small/${name}`);
  const getSmallArgs = (out: string) => ["get", ...remoteSmall, "--out", out];

  /**
   * Runs `work` against a freshly started server (same data folder), so the peak RSS
   * measured belongs to that one scenario; a no-op `ls` first warms the client's module
   * cache and gives the baseline of process start + handshake + login.
   */
  const withServer = async (work: (cli: CloudCli, server: CloudServer) => Promise<void>) => {
    const server = await CloudServer.start(dataDir);
    try {
      const cli = new CloudCli(server, configDir, email, password);
      await work(cli, server);
    } catch (error) {
      throw new Error(`${(error as Error).message}\ncloud serve said:\n${server.tail}`);
    } finally {
      await server.stop();
    }
  };

  await withServer(async (cli, server) => {
    log(`cloud serve: pid ${server.pid} on ${server.address}`);
    await cli.register("Bench Mark");
    await cli.run(["ls"]);
    const argBytes = argListBytes(cli, getSmallArgs(join(local, "small")));
    if (argBytes > ARG_MAX_SAFE) {
      throw new Error(`The get command line would be ${argBytes} bytes; use fewer --files`);
    }
    results.notes.push(
      `cloud: \`cloud serve\` (\`main.ts\` from source, \`--bcrypt-cost 4\`, SQLite), restarted ` +
        `before each measurement so that its peak RSS belongs to that transfer, and one ` +
        `\`cloud connect\` process per command: \`put big.bin\`, \`get big.bin --out DIR\`, ` +
        `\`put small\` (the folder), \`get small/f0000.bin … --out DIR\` (${o.smallCount} names, ` +
        `${(argBytes / 1024).toFixed(0)} KiB of arguments). Progress bars are off (not a TTY).`,
    );
  });

  const measure = async (run: number, scenario: Scenario, label: string, command: string[]) => {
    await withServer(async (cli, server) => {
      await settle();
      const base = await cli.run(["ls"]);
      (results.baselineMs.cloud ??= []).push(base.ms);
      const idle = await readMemory(server.pid);
      if (idle) (results.cloudIdleRss ??= []).push(idle.rss);
      await settle();
      const sampler = await PeakSampler.start(server.pid);
      const cpuBefore = await cpuSeconds(server.pid);
      let timing;
      let serverCpu = NaN;
      try {
        timing = await cli.run(command);
      } finally {
        const peak = await sampler.stop();
        serverCpu = (await cpuSeconds(server.pid)) - cpuBefore;
        samplesOf(results, "cloud", scenario).serverCpu.push(serverCpu);
        samplesOf(results, "cloud", scenario).serverPeak.push(peak);
      }
      const samples = samplesOf(results, "cloud", scenario);
      samples.wallMs.push(timing.ms);
      samples.clientPeak.push(timing.peakRss);
      log(
        `run ${run}/${o.runs}: cloud ${label}: ${describe(scenario, timing.ms, o)}; no-op ls ` +
          `${(base.ms / 1000).toFixed(2)} s; server RSS idle ${
            ((idle?.rss ?? NaN) / 1e6).toFixed(0)
          } MB, ` +
          `peak ${(samples.serverPeak.at(-1)! / 1e6).toFixed(0)} MB; client peak ` +
          `${(timing.peakRss / 1e6).toFixed(0)} MB; server CPU ${serverCpu.toFixed(2)} s`,
      );
    });
  };

  return {
    async run(run) {
      await measure(run, "upBig", `upload ${formatSize(o.bigSize)}`, ["put", fx.bigFile]);
      const bigOut = join(local, "big");
      await Deno.mkdir(bigOut);
      await measure(run, "downBig", `download ${formatSize(o.bigSize)}`, [
        "get",
        "big.bin",
        "--out",
        bigOut,
      ]);
      await verifyBig(join(bigOut, "big.bin"), fx, o, run === 1, "cloud");
      await removeIfExists(bigOut);

      await measure(run, "upSmall", `upload ${o.smallCount} files`, ["put", fx.smallDir]);
      const smallOut = join(local, "small");
      await Deno.mkdir(smallOut);
      await measure(run, "downSmall", `download ${o.smallCount} files`, getSmallArgs(smallOut));
      await verifySmall(smallOut, o, "cloud");
      await removeIfExists(smallOut);
      await withServer(async (cli) => {
        await cli.run(["rm", "big.bin"]);
        await cli.run(["rm", "-r", "small"]);
      });
    },
    async close() {},
  };
}

// --- main --------------------------------------------------------------------------------

async function main(): Promise<number> {
  const o = parseOptions();
  const startedAt = new Date();
  const t0 = performance.now();
  const tmp = await Deno.makeTempDir({ prefix: "cloud-bench-" });
  log(`bench: temporary folder ${tmp}; systems: ${o.systems.join(", ")}; ${o.runs} runs`);
  const results: BenchResults = {
    runs: o.runs,
    bigSize: o.bigSize,
    smallCount: o.smallCount,
    smallSize: o.smallSize,
    systems: o.systems,
    baselineMs: {},
    samples: {},
    notes: [],
    startedAt,
    elapsedMs: 0,
    load: { start: await loadAverage(), end: "" },
    revision: await revision(),
  };
  try {
    const fx = await makeFixture(tmp, o);
    const runners: Runner[] = [];
    try {
      if (o.systems.includes("tls")) runners.push(await tlsRunner(fx, o, results));
      if (o.systems.includes("sftp")) {
        const sftp = await sftpRunner(fx, o, results);
        if (sftp) runners.push(sftp);
      }
      if (o.systems.includes("cloud")) runners.push(await cloudRunner(fx, o, results));
      // Runs interleave the systems, so that load from elsewhere on the machine falls on
      // all of them alike; a `sync` before every measurement keeps one's writeback out of
      // the next.
      for (let run = 1; run <= o.runs; run++) {
        for (const runner of runners) await runner.run(run);
      }
    } finally {
      for (const runner of runners) await runner.close();
    }
  } finally {
    if (o.keep) log(`bench: kept ${tmp}`);
    else await removeIfExists(tmp);
  }
  results.elapsedMs = performance.now() - t0;
  results.load.end = await loadAverage();
  const section = renderSection(results, await machineInfo());
  console.log(section);
  if (o.write) {
    await writeSection(BENCHMARKS_MD, section);
    // The repository's `deno fmt --check` covers Markdown: leave the file formatted.
    await timed(Deno.execPath(), ["fmt", BENCHMARKS_MD], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
    });
    log(`bench: wrote the Transfers section of ${BENCHMARKS_MD}`);
  } else {
    log("bench: BENCHMARKS.md not written (partial run or --no-write; --write forces it)");
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
