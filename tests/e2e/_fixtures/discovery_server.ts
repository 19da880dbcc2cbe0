/**
 * Test fixture: runs only the discovery announcer (server/discovery.ts), for the network
 * namespace test and benchmark. Prints `ready INSTANCE_ID PORT` once the first announcement
 * has gone out, then runs until SIGTERM or SIGINT.
 *
 * Usage: deno run -A --unstable-net discovery_server.ts PORT TCP_PORT FINGERPRINT NAME
 *
 * @module
 */

import { startDiscovery } from "../../../server/discovery.ts";

if (import.meta.main) {
  const [port = "7071", tcpPort = "7070", fingerprint = "", name = "fixture"] = Deno.args;
  const handle = await startDiscovery({
    port: Number(port),
    serverName: name,
    tcpPort: Number(tcpPort),
    fingerprint,
    log: (event, fields) => console.error(JSON.stringify({ event, ...fields })),
  });
  console.log(`ready ${handle.instanceId} ${handle.port}`);
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", resolve);
  Deno.addSignalListener("SIGINT", resolve);
  await promise;
  await handle.close();
}
