import assert from "node:assert/strict";
import { CloudError, type ErrorCode } from "../../protocol/errors.ts";
import {
  checkEmail,
  checkName,
  checkPassword,
  checkPhone,
  normaliseEmail,
  PASSWORD_MAX_BYTES,
  preloadPasswordEstimator,
  validateEmail,
  validateName,
  validatePassword,
  validatePhone,
} from "../../server/validation.ts";

function assertCode(fn: () => unknown, code: ErrorCode, label?: string): CloudError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof CloudError, `${label ?? ""}: expected a CloudError`);
  assert.equal(caught.code, code, label);
  return caught;
}

Deno.test("normaliseEmail() trims and lower-cases", () => {
  assert.equal(normaliseEmail("  Alice@Example.COM \n"), "alice@example.com");
  assert.equal(normaliseEmail("ZOË@example.org"), "zoë@example.org");
  // NFD input becomes NFC.
  assert.equal(normaliseEmail("zoe\u0308@example.org"), "zoë@example.org");
});

Deno.test("validateEmail() returns the normalised email for any domain", () => {
  assert.equal(validateEmail(" Bob@Example.org "), "bob@example.org");
  assert.equal(
    validateEmail("first.last+tag@sub.mail.example.co.uk"),
    "first.last+tag@sub.mail.example.co.uk",
  );
  assert.equal(validateEmail("alice@nas"), "alice@nas");
  assert.equal(validateEmail("o'brien@xn--mnchen-3ya.de"), "o'brien@xn--mnchen-3ya.de");
  assert.equal(validateEmail("jürgen@münchen.de"), "jürgen@münchen.de");
  assert.equal(checkEmail("carol@example.com"), null);
});

Deno.test("validateEmail() refuses malformed emails (E_INVALID)", () => {
  for (
    const bad of [
      "",
      "   ",
      "alice",
      "@example.com",
      "alice@",
      "alice@@example.com",
      "al ice@example.com",
      "alice@exa mple.com",
      "alice@-example.com",
      "alice@example-.com",
      "alice@example..com",
      "alice@.example.com",
      "alice@example.com.",
      "ali\u0000ce@example.com",
      "alice\n@example.com",
      `${"a".repeat(65)}@example.com`,
      `a@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}.${"e".repeat(63)}`,
      "a<b>@example.com",
    ]
  ) {
    assertCode(() => validateEmail(bad), "E_INVALID", JSON.stringify(bad));
    assert.equal(typeof checkEmail(bad), "string", JSON.stringify(bad));
  }
});

Deno.test("validateEmail() quotes the value and escapes control characters in messages", () => {
  const error = assertCode(() => validateEmail("bad\u0007@"), "E_INVALID");
  assert.equal(error.message, `Invalid email "badU+0007@": characters not allowed before the "@"`);
});

Deno.test("validateName() accepts 1–50 printable code points, trimmed", () => {
  assert.equal(validateName("  Zoë Ångström "), "Zoë Ångström");
  assert.equal(validateName("X"), "X");
  assert.equal(validateName("a".repeat(50)), "a".repeat(50));
  assert.equal(validateName("李小龍"), "李小龍");
  assert.equal(validateName("O'Neil-Smith, Jr."), "O'Neil-Smith, Jr.");
  // An emoji ZWJ sequence and a tag sequence (flag of England) stay allowed.
  assert.equal(validateName("Sam 👩‍💻"), "Sam 👩‍💻");
  assert.equal(
    validateName("🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}"),
    "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}",
  );
  // Code points, not UTF-16 units: 50 astral characters are fine.
  assert.equal(validateName("😀".repeat(50)), "😀".repeat(50));
  // NFD becomes NFC and then counts one code point per letter.
  assert.equal(validateName("e\u0301".repeat(50)), "é".repeat(50));
  assert.equal(checkName("Alice"), null);
});

Deno.test("validateName() refuses empty, long and unprintable names (E_INVALID)", () => {
  for (
    const bad of [
      "",
      "   ",
      "\t\n",
      "a".repeat(51),
      "😀".repeat(51),
      "Ali\u0000ce",
      "Ali\nce",
      "Ali\u007fce",
      "Ali\u0085ce",
      "Ali\u2028ce",
      "evil\u202egnp.exe",
      "Ali\u2066ce",
      "Ali\u200bce",
      "Ali\u00adce",
      "Ali\ud800ce",
      "Ali\ue000ce",
    ]
  ) {
    assertCode(() => validateName(bad), "E_INVALID", JSON.stringify(bad));
    assert.equal(typeof checkName(bad), "string", JSON.stringify(bad));
  }
  const error = assertCode(() => validateName("evil\u202egnp"), "E_INVALID");
  assert.equal(error.message, `Invalid name "evilU+202Egnp": character U+202E is not allowed`);
});

Deno.test("validatePhone() accepts 7–20 digits, spaces and + - ( ), trimmed", () => {
  assert.equal(validatePhone(" +44 (20) 7946-0958 "), "+44 (20) 7946-0958");
  assert.equal(validatePhone("5550100"), "5550100");
  assert.equal(validatePhone("+1-555-0100"), "+1-555-0100");
  assert.equal(validatePhone("1".repeat(20)), "1".repeat(20));
  assert.equal(validatePhone("(683) 4002"), "(683) 4002");
  assert.equal(checkPhone("0123 456 789"), null);
});

Deno.test("validatePhone() refuses short, long, lettered and digit-poor numbers (E_INVALID)", () => {
  for (
    const bad of [
      "",
      "123456",
      "1".repeat(21),
      "555-CALL-NOW",
      "555.0100.12",
      "+1 555 0100 ext 2",
      "(---) -- 12",
      "+ - ( ) +",
      "44+ 20 7946 0958",
      "５５５０１００",
      "555\u00a00100",
    ]
  ) {
    assertCode(() => validatePhone(bad), "E_INVALID", JSON.stringify(bad));
    assert.equal(typeof checkPhone(bad), "string", JSON.stringify(bad));
  }
});

const alice = { email: "Alice.Smith@Example.org", name: "Alice Smith", phone: "+1 555 0100" };

Deno.test("validatePassword() accepts a strong password of 8–72 UTF-8 bytes", () => {
  validatePassword("correct horse battery staple", alice);
  validatePassword("zebra-violin-7", alice);
  validatePassword("xk8#mQ2!vz", alice);
  // 72 bytes exactly: 24 three-byte characters.
  validatePassword("密码安全长度测试用例字符串足够随机不会被猜到吗好", alice);
  assert.equal(
    new TextEncoder().encode("密码安全长度测试用例字符串足够随机不会被猜到吗好").length,
    72,
  );
  assert.equal(checkPassword("Tr0ub4dor&3 staple", alice), null);
});

Deno.test("validatePassword() refuses fewer than 8 bytes (E_INVALID)", () => {
  const error = assertCode(() => validatePassword("a1!Zq9x", alice), "E_INVALID");
  assert.equal(error.message, "Password is too short: 7 bytes, at least 8");
});

Deno.test("validatePassword() refuses more than 72 UTF-8 bytes rather than truncating (E_INVALID)", () => {
  assertCode(() => validatePassword("x".repeat(PASSWORD_MAX_BYTES + 1), alice), "E_INVALID");
  // 25 three-byte characters: 25 code points but 75 bytes.
  const error = assertCode(
    () => validatePassword("密码安全长度测试用例字符串足够随机不会被猜到吗好呀", alice),
    "E_INVALID",
  );
  assert.equal(
    error.message,
    "Password is too long: 75 bytes in UTF-8, at most 72 (bcrypt would ignore the rest)",
  );
});

Deno.test("validatePassword() refuses the email and the email's local part (E_WEAK_PASSWORD)", () => {
  assertCode(() => validatePassword("alice.smith@example.org", alice), "E_WEAK_PASSWORD");
  assertCode(() => validatePassword("ALICE.SMITH@EXAMPLE.ORG", alice), "E_WEAK_PASSWORD");
  assertCode(() => validatePassword("x9Alice.Smith@example.org!!", alice), "E_WEAK_PASSWORD");
  assertCode(() => validatePassword("Alice.Smith", alice), "E_WEAK_PASSWORD");
  const error = assertCode(
    () => validatePassword("alice.smith@example.org", alice),
    "E_WEAK_PASSWORD",
  );
  assert.equal(error.message, "Password must not contain your email");
});

Deno.test("validatePassword() refuses common passwords with the estimator's hint (E_WEAK_PASSWORD)", () => {
  for (
    const weak of [
      "password",
      "password123",
      "12345678",
      "qwertyuiop",
      "iloveyou2",
      "P@ssw0rd",
      "monkey123",
      "Password1!",
      "abcdefgh1",
      "11111111",
    ]
  ) {
    const error = assertCode(() => validatePassword(weak, alice), "E_WEAK_PASSWORD", weak);
    assert.match(error.message, /^Password is too easy to guess: \S/, weak);
    if (weak !== "password") {
      assert.ok(!error.message.includes(weak), "the message never repeats the password");
    }
    assert.ok(!error.message.endsWith("."), "no final period");
  }
  const error = assertCode(() => validatePassword("password123", alice), "E_WEAK_PASSWORD");
  assert.equal(
    error.message,
    "Password is too easy to guess: This is a commonly used password. Add more words that are less common",
  );
});

Deno.test("validatePassword() counts the email and name as guessable words (E_WEAK_PASSWORD)", () => {
  const grim = { email: "grimblewort@example.org" };
  assert.equal(checkPassword("grimblewort!2", { email: "x@example.org" }), null);
  const error = assertCode(() => validatePassword("grimblewort!2", grim), "E_WEAK_PASSWORD");
  assert.match(error.message, /personal/);
  assert.equal(checkPassword("qorvath1986", { email: "x@example.org" }), null);
  assertCode(
    () => validatePassword("qorvath1986", { email: "x@example.org", name: "Mira Qorvath" }),
    "E_WEAK_PASSWORD",
  );
});

Deno.test("preloadPasswordEstimator() is idempotent and checks work after it", () => {
  preloadPasswordEstimator();
  preloadPasswordEstimator();
  assert.equal(checkPassword("some other passphrase", alice), null);
  assert.equal(typeof checkPassword("password1", alice), "string");
});
