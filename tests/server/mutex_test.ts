import assert from "node:assert/strict";
import { KeyedMutex } from "../../server/mutex.ts";

Deno.test("KeyedMutex runs work of one key in order and other keys in parallel", async () => {
  const mutex = new KeyedMutex();
  const events: string[] = [];
  const gate = Promise.withResolvers<void>();
  const a1 = mutex.run("a", async () => {
    events.push("a1 start");
    await gate.promise;
    events.push("a1 end");
  });
  const a2 = mutex.run("a", () => {
    events.push("a2");
    return Promise.resolve();
  });
  const b = mutex.run("b", () => {
    events.push("b");
    return Promise.resolve();
  });
  await b;
  assert.deepEqual(events, ["a1 start", "b"]);
  gate.resolve();
  await Promise.all([a1, a2]);
  assert.deepEqual(events, ["a1 start", "b", "a1 end", "a2"]);
});

Deno.test("KeyedMutex keeps going after a failure", async () => {
  const mutex = new KeyedMutex();
  await assert.rejects(mutex.run("k", () => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await mutex.run("k", () => Promise.resolve(7)), 7);
});
