/**
 * Test fixture: runs client/discovery.ts `discover()` REPEAT times and prints one JSON
 * object: `{ runs: [{ firstMs, totalMs, servers }] }`, where firstMs is the time from the
 * start of the call to the first server found (null when none was).
 *
 * Usage: deno run -A --unstable-net discover_client.ts PORT TIMEOUT_MS REPEAT [MODES] [GAP_MS]
 * where MODES is a comma-separated list of `first` (stopAfterFirst) and `listen` (send no
 * probes: find servers only by their announcements), and GAP_MS a pause between runs (so
 * a benchmark stays under the server's per-source reply rate limit, as separate user
 * invocations would).
 *
 * @module
 */

import { discover, type DiscoveredServer } from "../../../client/discovery.ts";

if (import.meta.main) {
  const [port = "7071", timeoutMs = "2000", repeat = "1", modes = "", gapMs = "0"] = Deno.args;
  const mode = new Set(modes.split(","));
  const runs: { firstMs: number | null; totalMs: number; servers: DiscoveredServer[] }[] = [];
  for (let i = 0; i < Number(repeat); i++) {
    if (i > 0 && Number(gapMs) > 0) await new Promise((r) => setTimeout(r, Number(gapMs)));
    let firstMs: number | null = null;
    const started = performance.now();
    const servers = await discover({
      port: Number(port),
      timeoutMs: Number(timeoutMs),
      stopAfterFirst: mode.has("first"),
      ...(mode.has("listen") ? { probeScheduleMs: [] } : {}),
      onServer: () => {
        firstMs ??= performance.now() - started;
      },
    });
    runs.push({ firstMs, totalMs: performance.now() - started, servers });
  }
  console.log(JSON.stringify({ runs }));
}
