import assert from "node:assert/strict";
import { CloudError } from "../../protocol/errors.ts";
import {
  baseName,
  isWithin,
  joinPath,
  MAX_DEPTH,
  parentOf,
  quoteName,
  validatePath,
} from "../../server/names.ts";

function badName(raw: string, allowRoot = false): CloudError {
  try {
    validatePath(raw, { allowRoot });
  } catch (error) {
    assert.ok(error instanceof CloudError, `expected a CloudError for ${JSON.stringify(raw)}`);
    assert.equal(error.code, "E_BAD_NAME", JSON.stringify(raw));
    return error;
  }
  assert.fail(`validatePath accepted ${JSON.stringify(raw)}`);
}

Deno.test("validatePath() refuses .. and . segments (E_BAD_NAME)", () => {
  for (const raw of ["..", "../x", "a/..", "a/../b", ".", "./a", "a/./b", "a/."]) badName(raw);
});

Deno.test("validatePath() refuses absolute paths (E_BAD_NAME)", () => {
  for (const raw of ["/", "/etc/passwd", "//a"]) badName(raw);
  badName("/", true);
});

Deno.test("validatePath() refuses a backslash (E_BAD_NAME)", () => {
  for (const raw of ["a\\b", "..\\x", "\\", "C:\\x"]) badName(raw);
});

Deno.test("validatePath() refuses NUL, C0, DEL, C1 and bidi controls (E_BAD_NAME)", () => {
  for (
    const raw of [
      "a\u0000b",
      "\u0000",
      "a\nb",
      "a\tb",
      "x\r",
      "\u001b[31mred",
      "a\u007fb",
      "a\u0080b",
      "a\u009bb",
      "txt.\u202eexe",
      "a\u2066b",
      "a\u200fb",
    ]
  ) {
    badName(raw);
  }
});

Deno.test("validatePath() refuses a segment over 255 UTF-8 bytes (E_BAD_NAME)", () => {
  assert.equal(validatePath("a".repeat(255)), "a".repeat(255));
  badName("a".repeat(256));
  badName(`dir/${"a".repeat(256)}`);
  // 128 two-byte characters: 128 code units but 256 bytes.
  badName("é".repeat(128));
  assert.equal(validatePath("é".repeat(127)), "é".repeat(127));
});

Deno.test("validatePath() refuses a path over 4096 bytes (E_BAD_NAME)", () => {
  const segment = "a".repeat(200);
  const ok = Array(20).fill(segment).join("/"); // 20 * 201 - 1 = 4019 bytes
  assert.equal(validatePath(ok), ok);
  badName(Array(21).fill(segment).join("/")); // 4220 bytes
  badName("x".repeat(100_000));
});

Deno.test("validatePath() refuses a path deeper than 64 levels (E_BAD_NAME)", () => {
  const deep = Array(MAX_DEPTH).fill("d").join("/");
  assert.equal(validatePath(deep), deep);
  badName(`${deep}/d`);
});

Deno.test("validatePath() refuses Unicode that is not NFC instead of normalising (E_BAD_NAME)", () => {
  badName("e\u0301"); // e + combining acute (NFD)
  badName("cafe\u0301/menu.txt");
  assert.equal(validatePath("\u00e9"), "\u00e9");
});

Deno.test("validatePath() refuses empty names and empty segments (E_BAD_NAME)", () => {
  for (const raw of ["", "a//b", "a//", "//"]) badName(raw);
});

Deno.test("validatePath() refuses lone surrogates (E_BAD_NAME)", () => {
  badName("a\ud800b");
  badName("\udc00");
});

Deno.test("validatePath() refuses segments Windows would rewrite: edge spaces, final dot", () => {
  for (const raw of [" a", "a ", "dir /a", "a/ b", "a.", "...", "dir./x"]) badName(raw);
});

Deno.test("validatePath() refuses a non-string (E_BAD_NAME)", () => {
  badName(42 as unknown as string);
});

Deno.test("validatePath() accepts ordinary names and returns them unchanged", () => {
  for (
    const raw of [
      "a",
      "a.txt",
      ".bashrc",
      "..hidden",
      "a..b",
      "my file (1).txt",
      "photos/2024/cat.jpg",
      "Ünïcödé/日本語/файл.txt",
      "emoji 😀.png",
      "a:b*c?d",
      "tab-free\u00a0nbsp",
    ]
  ) {
    assert.equal(validatePath(raw), raw);
  }
});

Deno.test("validatePath() drops one trailing slash and accepts the root only when allowed", () => {
  assert.equal(validatePath("docs/"), "docs");
  assert.equal(validatePath("a/b/"), "a/b");
  assert.equal(validatePath("", { allowRoot: true }), "");
  badName("");
});

Deno.test("validatePath() errors quote the offending value with controls escaped", () => {
  const error = badName('a\u0000b\u001b\u202e"\\');
  assert.ok(error.message.includes('"a\\u0000b\\u001b\\u202e\\"\\\\"'), error.message);
  // The message never carries a raw control character.
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\u0000-\u001f\u007f-\u009f\u202e]/.test(error.message));
  const long = badName("x".repeat(5000));
  assert.ok(long.message.length < 200, long.message);
});

Deno.test("quoteName() escapes lone surrogates and cuts long names", () => {
  assert.equal(quoteName("a\ud800"), '"a\\ud800"');
  assert.equal(quoteName("😀"), '"😀"');
  assert.equal(quoteName("y".repeat(100)), `"${"y".repeat(80)}…"`);
});

Deno.test("joinPath(), parentOf(), baseName() and isWithin() work on validated paths", () => {
  assert.equal(joinPath("", "a"), "a");
  assert.equal(joinPath("a/b", "c"), "a/b/c");
  assert.equal(joinPath("a", "", "c"), "a/c");
  assert.equal(joinPath(""), "");
  assert.equal(parentOf("a/b/c"), "a/b");
  assert.equal(parentOf("a"), "");
  assert.throws(() => parentOf(""), RangeError);
  assert.equal(baseName("a/b/c.txt"), "c.txt");
  assert.equal(baseName("c.txt"), "c.txt");
  assert.equal(baseName(""), "");
  assert.equal(isWithin("a/b", "a"), true);
  assert.equal(isWithin("a", "a"), true);
  assert.equal(isWithin("ab", "a"), false);
  assert.equal(isWithin("a", "a/b"), false);
  assert.equal(isWithin("x", ""), true);
});
