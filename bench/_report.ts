/**
 * The transfer benchmark's report: machine description, results table, targets, and the
 * rewrite of the "Transfers" section of BENCHMARKS.md between its markers.
 *
 * @module
 */

import { cpus, totalmem } from "node:os";
import { formatSize } from "../protocol/units.ts";
import { filesPerSecond, firstLine, mbPerSecond, median } from "./_util.ts";

/** Marks the start of the section this benchmark owns in BENCHMARKS.md. */
export const START_MARKER = "<!-- transfers:start -->";
/** Marks its end. */
export const END_MARKER = "<!-- transfers:end -->";

/** The four measured scenarios. */
export type Scenario = "upBig" | "downBig" | "upSmall" | "downSmall";
/** The systems compared. */
export type System = "cloud" | "sftp" | "tls";

/** Raw measurements of one system in one scenario. */
export interface Samples {
  /** Wall time of each run's whole command, ms. */
  wallMs: number[];
  /** Server peak RSS of each run, bytes (ours only). */
  serverPeak: number[];
  /** Client peak RSS of each run, bytes (sampled). */
  clientPeak: number[];
  /** CPU time the server used during each run, seconds (ours only). */
  serverCpu: number[];
}

/** Everything measured in one benchmark run. */
export interface BenchResults {
  runs: number;
  bigSize: number;
  smallCount: number;
  smallSize: number;
  systems: System[];
  /** Wall time of a no-op session per system (cloud: `ls`, sftp: `pwd`), ms. */
  baselineMs: Partial<Record<System, number[]>>;
  samples: Partial<Record<System, Partial<Record<Scenario, Samples>>>>;
  /** Free-form notes (skipped systems, ciphers, checks). */
  notes: string[];
  startedAt: Date;
  elapsedMs: number;
  /** RSS of the freshly started server after one `ls`, bytes, per start. */
  cloudIdleRss?: number[];
  /** The code measured: commit, and whether the work tree had changes. */
  revision: string;
  /** Load averages (1, 5, 15 min) when the benchmark started and ended. */
  load: { start: string; end: string };
}

/** An empty sample set. */
export function newSamples(): Samples {
  return { wallMs: [], serverPeak: [], clientPeak: [], serverCpu: [] };
}

/** Machine facts for the report. */
export interface MachineInfo {
  cpus: number;
  model: string;
  ramBytes: number;
  kernel: string;
  deno: string;
  openssl: string;
  openssh: string;
}

/** Reads what the report says about the machine. */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ??
    "unknown";
  return {
    cpus: navigator.hardwareConcurrency || cpus().length,
    model,
    ramBytes: totalmem(),
    kernel: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    openssl: (await firstLine("openssl", ["version"])).replace(/ \(Library:.*\)$/, ""),
    openssh: await firstLine("ssh", ["-V"]),
  };
}

const LABEL: Record<Scenario, string> = {
  upBig: "upload",
  downBig: "download",
  upSmall: "upload",
  downSmall: "download",
};

/** A computed figure: per second, of the whole command and of the transfer alone. */
export interface Figure {
  whole: number;
  transfer: number;
  unit: "MB/s" | "files/s";
}

/** Median rate of one system in one scenario, or null when not measured. */
export function figure(results: BenchResults, system: System, scenario: Scenario): Figure | null {
  const samples = results.samples[system]?.[scenario];
  if (!samples || samples.wallMs.length === 0) return null;
  const wall = median(samples.wallMs);
  const base = median(results.baselineMs[system] ?? []);
  // A transfer shorter than a tenth of the command is lost in the start-up's noise.
  const net = Number.isNaN(base) ? wall : wall - base >= wall / 10 ? wall - base : NaN;
  if (scenario === "upBig" || scenario === "downBig") {
    return {
      whole: mbPerSecond(results.bigSize, wall),
      transfer: mbPerSecond(results.bigSize, net),
      unit: "MB/s",
    };
  }
  return {
    whole: filesPerSecond(results.smallCount, wall),
    transfer: filesPerSecond(results.smallCount, net),
    unit: "files/s",
  };
}

function rate(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return "—";
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${unit}`;
}

function mb(bytes: number | undefined): string {
  if (bytes === undefined || Number.isNaN(bytes) || bytes <= 0) return "—";
  return `${(bytes / 1e6).toFixed(0)} MB`;
}

function seconds(value: number): string {
  return Number.isNaN(value) ? "—" : `${value.toFixed(2)} s`;
}

function maxOf(values: number[] | undefined): number | undefined {
  return values && values.length > 0 ? Math.max(...values) : undefined;
}

/** One target and whether it was met. */
export interface TargetCheck {
  target: string;
  /** What was compared, on transfer-only figures. */
  transfer: string;
  /** Met on transfer-only figures (null: not measured). */
  met: boolean | null;
  /** Met on whole-command figures (null: not measured or not applicable). */
  metWhole: boolean | null;
}

/** `a >= b`, or null when either is missing or not a number. */
function atLeast(a: number | null | undefined, b: number | null | undefined): boolean | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  if (Number.isNaN(a) || Number.isNaN(b)) return null;
  return a >= b;
}

/** Evaluates the targets of issue 3. */
export function checkTargets(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const tls = figure(results, "tls", "upBig");
  for (const scenario of ["upBig", "downBig"] as const) {
    const ours = figure(results, "cloud", scenario);
    const sftp = figure(results, "sftp", scenario);
    const what = `${LABEL[scenario]} ${formatSize(results.bigSize)}`;
    checks.push({
      target: `${what}: at least as fast as sftp`,
      transfer: ours && sftp
        ? `${rate(ours.transfer, "MB/s")} vs ${rate(sftp.transfer, "MB/s")}`
        : "not measured",
      met: atLeast(ours?.transfer, sftp?.transfer),
      metWhole: atLeast(ours?.whole, sftp?.whole),
    });
    checks.push({
      target: `${what}: at least half the raw TLS figure`,
      transfer: ours && tls
        ? `${rate(ours.transfer, "MB/s")} vs ${rate(tls.whole / 2, "MB/s")} (½ of ${
          rate(tls.whole, "MB/s")
        })`
        : "not measured",
      met: atLeast(ours?.transfer, tls && tls.whole / 2),
      metWhole: atLeast(ours?.whole, tls && tls.whole / 2),
    });
  }
  for (const scenario of ["upSmall", "downSmall"] as const) {
    const ours = figure(results, "cloud", scenario);
    const sftp = figure(results, "sftp", scenario);
    checks.push({
      target: `${LABEL[scenario]} ${results.smallCount} × ${formatSize(results.smallSize)}: ` +
        `at least 3× sftp's files/s`,
      transfer: ours && sftp
        ? `${rate(ours.transfer, "files/s")} vs ${rate(3 * sftp.transfer, "files/s")} ` +
          `(3 × ${rate(sftp.transfer, "files/s")})`
        : "not measured",
      met: atLeast(ours?.transfer, sftp && 3 * sftp.transfer),
      metWhole: atLeast(ours?.whole, sftp && 3 * sftp.whole),
    });
  }
  const peaks = [
    ...(results.samples.cloud?.upBig?.serverPeak ?? []),
    ...(results.samples.cloud?.downBig?.serverPeak ?? []),
  ];
  const peak = peaks.length > 0 ? Math.max(...peaks) : undefined;
  checks.push({
    target: `server peak RSS under 150 MB during the ${formatSize(results.bigSize)} transfers`,
    transfer: peak === undefined
      ? "not measured"
      : `${mb(peak)} (highest of all runs, up and down)`,
    met: peak === undefined ? null : peak < 150e6,
    metWhole: null,
  });
  return checks;
}

function yesNo(met: boolean | null): string {
  return met === null ? "—" : met ? "✓ yes" : "✗ no";
}

/** Renders the whole "Transfers" section, markers included. */
export function renderSection(results: BenchResults, machine: MachineInfo): string {
  const big = formatSize(results.bigSize);
  const small = `${results.smallCount} × ${formatSize(results.smallSize)}`;
  const rows: [Scenario, string][] = [
    ["upBig", `upload ${big}`],
    ["downBig", `download ${big}`],
    ["upSmall", `upload ${small}`],
    ["downSmall", `download ${small}`],
  ];
  const baseCloud = median(results.baselineMs.cloud ?? []);
  const baseSftp = median(results.baselineMs.sftp ?? []);
  const lines: string[] = [];
  lines.push(START_MARKER);
  lines.push("## Transfers");
  lines.push("");
  lines.push(
    `Written by \`deno task bench\` (bench/run.ts) on ${
      results.startedAt.toISOString().replace("T", " ").slice(0, 19)
    } UTC for ${results.revision}; ` +
      `${results.runs} run${results.runs === 1 ? "" : "s"} per figure, medians; the whole ` +
      `benchmark took ${(results.elapsedMs / 60_000).toFixed(1)} min.`,
  );
  lines.push("");
  lines.push(
    `Machine: ${machine.cpus} × ${machine.model}, ${formatSize(machine.ramBytes)} RAM, ` +
      `${machine.kernel}; Deno ${machine.deno}; ${machine.openssl || "OpenSSL ?"}; ` +
      `${machine.openssh || "OpenSSH ?"}. Client and server on the same machine over 127.0.0.1, ` +
      `files in the page cache. MB/s = 10⁶ bytes/s. Load average (1/5/15 min) at the start ` +
      `${results.load.start || "?"}, at the end ${results.load.end || "?"}: other work on the ` +
      `machine shares its ${machine.cpus} cores, so compare figures of the same run.`,
  );
  lines.push("");
  lines.push(
    "| scenario | cloud | cloud, transfer only¹ | cloud server peak RSS² | cloud client peak RSS | " +
      "cloud server CPU³ | sftp | sftp, transfer only¹ | raw TLS 1.3 (openssl) |",
  );
  lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const [scenario, label] of rows) {
    const ours = figure(results, "cloud", scenario);
    const sftp = figure(results, "sftp", scenario);
    const tls = scenario === "upBig" ? figure(results, "tls", "upBig") : null;
    const cloudSamples = results.samples.cloud?.[scenario];
    lines.push(
      `| ${label} | ${rate(ours?.whole, ours?.unit ?? "")} | ${
        rate(ours?.transfer, ours?.unit ?? "")
      } | ` +
        `${mb(maxOf(cloudSamples?.serverPeak))} | ${mb(maxOf(cloudSamples?.clientPeak))} | ` +
        `${seconds(median(cloudSamples?.serverCpu ?? []))} | ` +
        `${rate(sftp?.whole, sftp?.unit ?? "")} | ${rate(sftp?.transfer, sftp?.unit ?? "")} | ` +
        `${tls ? rate(tls.whole, "MB/s") : scenario === "downBig" ? "(same as upload)" : "—"} |`,
    );
  }
  lines.push("");
  lines.push(
    `¹ Whole command minus the median wall time of a no-op session of the same client, which ` +
      `is process start, connection, handshake and login: cloud \`connect … ls\` ` +
      `${Number.isNaN(baseCloud) ? "—" : `${baseCloud.toFixed(0)} ms`}, sftp \`-b\` with \`pwd\` ` +
      `${Number.isNaN(baseSftp) ? "—" : `${baseSftp.toFixed(0)} ms`}. ` +
      `The cloud figures include the SHA-256 of every file on both ends and the fsyncs of both ` +
      `ends; sftp does neither.`,
  );
  lines.push("");
  lines.push(
    `² Highest over the runs of the server process's VmHWM (peak resident set, reset before each ` +
      `transfer through /proc/PID/clear_refs) and of VmRSS sampled every 20 ms. The server is ` +
      `restarted before each transfer; freshly started, after one \`ls\`, it holds ` +
      `${mb(median(results.cloudIdleRss ?? []))} (median).`,
  );
  lines.push("");
  lines.push(
    `³ CPU time (user + system) of the server process during the transfer, median; the ` +
      `client runs on the same ${machine.cpus} cores.`,
  );
  lines.push("");
  lines.push("Targets (issue 3), judged on the transfer-only figures, and on the whole commands:");
  lines.push("");
  lines.push("| target | measured (transfer only) | met | met (whole command) |");
  lines.push("| --- | --- | --- | --- |");
  for (const check of checkTargets(results)) {
    lines.push(
      `| ${check.target} | ${check.transfer} | ${yesNo(check.met)} | ${yesNo(check.metWhole)} |`,
    );
  }
  lines.push("");
  lines.push("Each run (whole command, seconds):");
  lines.push("");
  for (const system of results.systems) {
    for (const [scenario, label] of rows) {
      const samples = results.samples[system]?.[scenario];
      if (!samples || samples.wallMs.length === 0) continue;
      lines.push(
        `- ${system === "tls" ? "raw TLS" : system} ${label}: ` +
          samples.wallMs.map((ms) => (ms / 1000).toFixed(2)).join(", "),
      );
    }
  }
  if (results.notes.length > 0) {
    lines.push("");
    lines.push("Notes:");
    lines.push("");
    for (const note of results.notes) lines.push(`- ${note}`);
  }
  lines.push(END_MARKER);
  return lines.join("\n");
}

/**
 * Replaces the text between the markers in `path` with `section` (markers included),
 * appends it when the markers are missing, creates the file when it is missing. Other
 * sections are left as they are.
 */
export async function writeSection(path: string, section: string): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    text =
      "# Benchmarks\n\nMeasured results of `deno task bench` and the other scripts in bench/.\n";
  }
  const start = text.indexOf(START_MARKER);
  const end = text.indexOf(END_MARKER);
  if (start !== -1 && end > start) {
    text = text.slice(0, start) + section + text.slice(end + END_MARKER.length);
  } else {
    text = `${text.trimEnd()}\n\n${section}\n`;
  }
  await Deno.writeTextFile(path, text);
}
