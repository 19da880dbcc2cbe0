/**
 * Progress bars on stderr (npm:cli-progress) with bytes, rate and ETA; nothing at all
 * when stderr is not a terminal.
 *
 * @module
 */

import cliProgress from "cli-progress";
import process from "node:process";
import { formatSize } from "../protocol/units.ts";
import { noProgress, type ProgressSink } from "./transfer.ts";

function formatRate(bytesPerSecond: number): string {
  return `${formatSize(Math.max(0, Math.round(bytesPerSecond)))}/s`;
}

/** A progress bar for one transfer at a time, shown only on a terminal. */
export function terminalProgress(options: { force?: boolean } = {}): ProgressSink {
  if (!options.force && !Deno.stderr.isTerminal()) return noProgress;
  const plain = Deno.env.get("NO_COLOR") !== undefined || Deno.env.get("TERM") === "dumb";
  let bar: cliProgress.SingleBar | null = null;
  let startedAt = 0;
  let startValue = 0;
  let value = 0;
  let lastRender = 0;
  const payload = () => {
    const seconds = Math.max((performance.now() - startedAt) / 1000, 0.001);
    const rate = (value - startValue) / seconds;
    return { done: formatSize(value), rate: formatRate(rate) };
  };
  return {
    start(label, total, done) {
      startedAt = performance.now();
      startValue = done;
      value = done;
      bar = new cliProgress.SingleBar({
        format: `${label.length > 30 ? `…${label.slice(-29)}` : label} {bar} {percentage}% ` +
          `{done}/{totalSize} {rate} ETA {eta_formatted}`,
        stream: process.stderr,
        barCompleteChar: plain ? "#" : "\u2588",
        barIncompleteChar: plain ? "-" : "\u2591",
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
        fps: 10,
      });
      bar.start(Math.max(total, 1), done, { ...payload(), totalSize: formatSize(total) });
    },
    advance(bytes) {
      value += bytes;
      const now = performance.now();
      if (now - lastRender < 100) return;
      lastRender = now;
      bar?.update(value, payload());
    },
    stop() {
      bar?.update(value, payload());
      bar?.stop();
      bar = null;
    },
  };
}
