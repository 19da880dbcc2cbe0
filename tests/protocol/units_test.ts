import assert from "node:assert/strict";
import { formatSize, parseDuration, parseSize } from "../../protocol/units.ts";

Deno.test("parseSize() reads binary and decimal units", () => {
  assert.equal(parseSize("1024"), 1024);
  assert.equal(parseSize("4KiB"), 4096);
  assert.equal(parseSize("2 MiB"), 2 * 1024 * 1024);
  assert.equal(parseSize("1.5GiB"), 1.5 * 1024 ** 3);
  assert.equal(parseSize("2MB"), 2_000_000);
  assert.equal(parseSize("3kb"), 3000);
  assert.equal(parseSize("10GB"), 10e9);
  assert.equal(parseSize("unlimited"), null);
});

Deno.test("parseSize() refuses garbage with TypeError", () => {
  for (const bad of ["", "ten", "5 parsecs", "-1MB", "1e3", "MiB"]) {
    assert.throws(() => parseSize(bad), TypeError, bad);
  }
  assert.throws(() => parseSize("99999999999TiB"), RangeError);
});

Deno.test("formatSize() prints human units", () => {
  assert.equal(formatSize(0), "0 B");
  assert.equal(formatSize(1023), "1023 B");
  assert.equal(formatSize(4096), "4.0 KiB");
  assert.equal(formatSize(1.5 * 1024 ** 3), "1.5 GiB");
  assert.equal(formatSize(200 * 1024 ** 2), "200 MiB");
});

Deno.test("parseDuration() reads ms, s, m and bare seconds", () => {
  assert.equal(parseDuration("2s"), 2000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("2m"), 120_000);
  assert.equal(parseDuration("3"), 3000);
  assert.throws(() => parseDuration("soon"), TypeError);
});
