import assert from "node:assert/strict";
import { isIpAddress, sourceKey } from "../../server/source.ts";

Deno.test("sourceKey() keeps an IPv4 address as its own /32 key", () => {
  assert.equal(sourceKey("192.0.2.7"), "192.0.2.7");
  assert.equal(sourceKey("0.0.0.0"), "0.0.0.0");
  assert.equal(sourceKey("255.255.255.255"), "255.255.255.255");
  assert.equal(sourceKey(" 10.1.2.3 "), "10.1.2.3");
});

Deno.test("sourceKey() turns an IPv4-mapped IPv6 address into the IPv4 address", () => {
  assert.equal(sourceKey("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(sourceKey("::FFFF:192.0.2.7"), "192.0.2.7");
  assert.equal(sourceKey("::ffff:c000:0207"), "192.0.2.7");
  assert.equal(sourceKey("0:0:0:0:0:ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(sourceKey("[::ffff:127.0.0.1]"), "127.0.0.1");
});

Deno.test("sourceKey() reduces IPv6 to its /56 prefix in RFC 5952 form", () => {
  assert.equal(sourceKey("2001:db8:aa:bb12::1"), "2001:db8:aa:bb00::/56");
  assert.equal(sourceKey("2001:0DB8:00AA:BBFF:1:2:3:4"), "2001:db8:aa:bb00::/56");
  assert.equal(sourceKey("2001:db8::1"), "2001:db8::/56");
  assert.equal(sourceKey("::1"), "::/56");
  assert.equal(sourceKey("::"), "::/56");
  assert.equal(sourceKey("fe80::1%eth0"), "fe80::/56");
  assert.equal(sourceKey("[2001:db8:1:2::5]"), "2001:db8:1::/56");
  assert.equal(sourceKey("2001:db8:0:0100::"), "2001:db8:0:100::/56");
  assert.equal(sourceKey("64:ff9b::192.0.2.7"), "64:ff9b::/56");
  assert.equal(sourceKey("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "ffff:ffff:ffff:ff00::/56");
});

Deno.test("sourceKey() gives every address of one /56 the same key", () => {
  const a = sourceKey("2001:db8:aa:bb00::1");
  const b = sourceKey("2001:db8:aa:bbff:ffff:ffff:ffff:ffff");
  const c = sourceKey("2001:db8:aa:bc00::1");
  assert.equal(a, b);
  assert.notEqual(a, c);
});

Deno.test("sourceKey() is idempotent on its own keys", () => {
  for (const address of ["192.0.2.7", "2001:db8:aa:bb12::1", "::1", "fe80::1%lo"]) {
    const key = sourceKey(address);
    assert.equal(sourceKey(key), key);
  }
});

Deno.test("sourceKey() refuses what is not an IP address (TypeError)", () => {
  for (
    const bad of [
      "",
      "localhost",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.4/32",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::1",
      "g::1",
      "1:2:3:4:5:6:7::8",
      "fe80::1%",
      "2001:db8::/48",
      "::ffff:1.2.3.256",
      ":1",
    ]
  ) {
    assert.throws(() => sourceKey(bad), TypeError, bad);
    assert.equal(isIpAddress(bad), false);
  }
  assert.equal(isIpAddress("::1"), true);
});
