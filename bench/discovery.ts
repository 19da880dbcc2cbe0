/**
 * Benchmark: time from the start of `discover()` to the first server found, over real UDP
 * broadcast between two network namespaces this script creates and removes (the server's
 * announcer in one, the client in the other; nothing touches the real interfaces).
 * Target (SPEC.md section 5, "well under a second"): median < 100 ms.
 *
 * Prints one markdown table row (with the header when run directly). Needs root and `ip`.
 *
 * Usage: deno run -A --unstable-net bench/discovery.ts [RUNS]
 *
 * @module
 */

import { join } from "node:path";
import { NetnsPair, netnsUnavailable, ROOT } from "../tests/e2e/_fixtures/netns.ts";

/** Result of {@link benchDiscovery}, milliseconds. */
export interface DiscoveryBenchResult {
  runs: number;
  found: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

/**
 * Runs `discover({ stopAfterFirst: true })` `runs` times, 250 ms apart, in one client
 * process (so process start-up is not counted).
 */
export async function benchDiscovery(runs = 20): Promise<DiscoveryBenchResult> {
  const fixtures = join(ROOT, "tests/e2e/_fixtures");
  const pair = await NetnsPair.create();
  const server = pair.spawn(pair.a, [
    join(fixtures, "discovery_server.ts"),
    "7071",
    "7070",
    "ab".repeat(32),
    "bench",
  ]);
  try {
    await server.waitFor(/^ready /);
    const out = await pair.run(pair.b, [
      join(fixtures, "discover_client.ts"),
      "7071",
      "2000",
      String(runs),
      "first",
      // 250 ms apart: one user's separate invocations, within the 5 replies/s/source limit.
      "250",
    ]);
    if (out.code !== 0) throw new Error(`discover client failed: ${out.stderr}`);
    const times = (JSON.parse(out.stdout).runs as { firstMs: number | null }[])
      .map((r) => r.firstMs)
      .filter((t): t is number => t !== null)
      .sort((a, b) => a - b);
    return {
      runs,
      found: times.length,
      median: quantile(times, 0.5),
      p90: quantile(times, 0.9),
      min: times[0] ?? NaN,
      max: times.at(-1) ?? NaN,
    };
  } finally {
    await server.stop();
    await pair.remove();
  }
}

/** The markdown table header matching {@link formatRow}. */
export const HEADER = "| benchmark | runs | found | median | p90 | min | max | target |\n" +
  "| --- | --- | --- | --- | --- | --- | --- | --- |";

/** One markdown table row. */
export function formatRow(r: DiscoveryBenchResult): string {
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  return `| discovery: first server found (broadcast, netns) | ${r.runs} | ${r.found} | ` +
    `${ms(r.median)} | ${ms(r.p90)} | ${ms(r.min)} | ${ms(r.max)} | < 100 ms ` +
    `${r.found === r.runs && r.median < 100 ? "✓" : "✗"} |`;
}

if (import.meta.main) {
  const reason = await netnsUnavailable();
  if (reason) {
    console.error(`bench/discovery.ts: skipped: ${reason}`);
    Deno.exit(0);
  }
  const runs = Number(Deno.args[0] ?? 20);
  console.log(HEADER);
  console.log(formatRow(await benchDiscovery(runs)));
}
