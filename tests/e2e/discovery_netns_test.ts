/**
 * LAN discovery by real UDP broadcast between two network namespaces this test creates and
 * removes (SPEC.md section 5). All traffic stays on the veth pair between them; nothing is
 * sent on the machine's real interfaces. Skipped, with the reason printed, where namespaces
 * cannot be made (not root, no `ip`).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ADDRESS_A, NetnsPair, netnsUnavailable, type NsProcess, ROOT } from "./_fixtures/netns.ts";

const unavailable = await netnsUnavailable();
if (unavailable) console.error(`discovery_netns_test: skipped: ${unavailable}`);

const MAIN = join(ROOT, "main.ts");
const FIXTURES = join(ROOT, "tests/e2e/_fixtures");
const READY = /^listening on (\S+):(\d+) fingerprint sha256:([0-9a-f]{64})$/;

Deno.test({
  name: "discovery finds a server by broadcast between two network namespaces",
  ignore: unavailable !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const pair = await NetnsPair.create();
    const running: NsProcess[] = [];
    const dir = await Deno.makeTempDir({ prefix: "cloud-netns-" });
    try {
      await t.step(
        "the library announcer is found by discover() in the other namespace",
        async () => {
          const fingerprint = "3c".repeat(32);
          const server = pair.spawn(pair.a, [
            join(FIXTURES, "discovery_server.ts"),
            "7071",
            "7070",
            `sha256:${fingerprint}`,
            "fixture-server",
          ]);
          running.push(server);
          const [, instanceId] = await server.waitFor(/^ready ([0-9a-f]{32}) 7071$/);
          const out = await pair.run(pair.b, [
            join(FIXTURES, "discover_client.ts"),
            "7071",
            "1500",
            "1",
          ]);
          assert.equal(out.code, 0, out.stderr);
          const { runs } = JSON.parse(out.stdout);
          assert.deepEqual(runs[0].servers, [{
            address: ADDRESS_A,
            port: 7070,
            name: "fixture-server",
            fingerprint,
            instanceId,
            via: "reply",
            protocolVersion: 1,
          }]);
          // The announcer saw its own broadcasts and the probes; it logged no failure.
          assert.doesNotMatch(server.output, /send_failed|internal_error/);
          await server.stop();
        },
      );

      await t.step(
        "a listening client hears the periodic announcement without probing",
        async () => {
          const fingerprint = "4d".repeat(32);
          const server = pair.spawn(pair.a, [
            join(FIXTURES, "discovery_server.ts"),
            "7071",
            "7070",
            fingerprint,
            "announcer",
          ]);
          running.push(server);
          await server.waitFor(/^ready /);
          // No probes: the client must hear the next announcement (every 2 s), sent to
          // 10.250.0.255, on its listener bound to that broadcast address.
          const out = await pair.run(pair.b, [
            join(FIXTURES, "discover_client.ts"),
            "7071",
            "5000",
            "1",
            "first,listen",
          ]);
          assert.equal(out.code, 0, out.stderr);
          const { runs } = JSON.parse(out.stdout);
          assert.deepEqual(
            runs[0].servers.map((s: Record<string, string>) => [s.address, s.via, s.fingerprint]),
            [[ADDRESS_A, "announce", fingerprint]],
          );
          await server.stop();
        },
      );

      await t.step({
        name: "`cloud discover --json` finds `cloud serve` with its TCP port and fingerprint",
        fn: async (cli) => {
          const server = pair.spawn(pair.a, [
            MAIN,
            "serve",
            "--port",
            "0",
            "--data",
            join(dir, "data"),
            "--discovery-port",
            "7071",
            "--bcrypt-cost",
            "4",
            "--name",
            "netns-cloud",
          ]);
          running.push(server);
          const ready = await server.waitFor(READY);
          const tcpPort = Number(ready[2]);
          const fingerprint = ready[3]!;
          const out = await pair.run(pair.b, [MAIN, "discover", "--json", "--timeout", "2s"]);
          assert.equal(out.code, 0, out.stderr);
          const found = JSON.parse(out.stdout) as Record<string, unknown>[];
          assert.equal(found.length, 1, out.stdout);
          assert.equal(found[0]!.address, ADDRESS_A);
          assert.equal(found[0]!.port, tcpPort);
          assert.equal(found[0]!.name, "netns-cloud");
          assert.equal(found[0]!.fingerprint, `sha256:${fingerprint}`);

          await cli.step({
            name: "`cloud connect` without --host finds the server and talks to it",
            fn: async () => {
              const env = {
                CLOUD_CONFIG_DIR: join(dir, "config"),
                CLOUD_PASSWORD: "violet-harbour-telescope-91",
              };
              const register = await pair.run(pair.b, [
                MAIN,
                "connect",
                "--trust",
                "--email",
                "ada@example.com",
                "register",
                "--name",
                "Ada",
                "--phone",
                "5550100",
              ], env);
              assert.equal(register.code, 0, register.stdout + register.stderr);
              const whoami = await pair.run(pair.b, [
                MAIN,
                "connect",
                "--email",
                "ada@example.com",
                "whoami",
                "--json",
              ], env);
              assert.equal(whoami.code, 0, whoami.stdout + whoami.stderr);
              assert.equal(JSON.parse(whoami.stdout).email, "ada@example.com");
            },
          });
          assert.equal((await server.stop()).code, 0, server.output);
        },
      });
    } finally {
      await Promise.allSettled(running.map((p) => p.stop()));
      await pair.remove();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    // Nothing was left behind.
    const left = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" })
      .output();
    assert.doesNotMatch(new TextDecoder().decode(left.stdout), new RegExp(pair.a + "|" + pair.b));
  },
});
