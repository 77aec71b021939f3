/** The long-polling transport with a fake clock: cursors, batches, bounds, expiry. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PollTransport } from "../../src/http/long-poll.ts";
import type { PollReply } from "../../src/protocol.ts";
import { engineWith, record, settle } from "../support/fakes.ts";

function transport(options: ConstructorParameters<typeof PollTransport>[1] = {}) {
  let now = 0;
  const engine = engineWith();
  const polling = new PollTransport(engine, { timeoutMs: 50, idleMs: 1000, ...options }, () => now);
  return { polling, engine, advance: (ms: number) => (now += ms) };
}

const texts = (r: PollReply | string) =>
  typeof r === "string" ? [] : r.frames.map((f) => ("t" in f ? f.t : `b:${f.b}`));

describe("long-polling transport", () => {
  it("queues frames until a GET collects them, numbered by cursor", async () => {
    const { polling } = transport();
    polling.open(record("echo"), "s1");
    polling.send("s1", { n: 1, frames: [{ t: "a" }, { t: "b" }, { b: "AAEC" }] });
    const first = await polling.poll("s1", 0);
    assert.deepEqual(texts(first), ["a", "b", "b:AAEC"]);
    assert.equal((first as PollReply).cursor, 3);
    assert.deepEqual(texts(await polling.poll("s1", 0)), ["a", "b", "b:AAEC"], "an unacknowledged cursor repeats");
    const empty = await polling.poll("s1", 3);
    assert.deepEqual(texts(empty), [], "a GET with nothing to say ends at its timeout");
    polling.close("s1", 1000, "");
  });

  it("ignores a retried POST with an old n", async () => {
    const { polling } = transport();
    polling.open(record("echo"), "s");
    polling.send("s", { n: 1, frames: [{ t: "once" }] });
    polling.send("s", { n: 1, frames: [{ t: "once" }] });
    assert.deepEqual(texts(await polling.poll("s", 0)), ["once"]);
    polling.close("s", 1000, "");
  });

  it("bounds one GET's batch but always returns at least one frame", async () => {
    const { polling } = transport({ batchBytes: 10 });
    polling.open(record("echo"), "s");
    polling.send("s", { n: 1, frames: [{ t: "123456" }, { t: "123456" }, { t: "x".repeat(50) }] });
    const one = (await polling.poll("s", 0)) as PollReply;
    assert.equal(one.frames.length, 1);
    const two = (await polling.poll("s", one.cursor)) as PollReply;
    assert.equal(two.frames.length, 1);
    const big = (await polling.poll("s", two.cursor)) as PollReply;
    assert.deepEqual(texts(big), ["x".repeat(50)]);
    polling.close("s", 1000, "");
  });

  it("wakes a held GET when a frame arrives", async () => {
    const { polling } = transport({ timeoutMs: 60_000 });
    polling.open(record("echo"), "s");
    const held = polling.poll("s", 0);
    await settle();
    polling.send("s", { n: 1, frames: [{ t: "now" }] });
    assert.deepEqual(texts(await held), ["now"]);
    polling.close("s", 1000, "");
  });

  it("closes a slow consumer with 1013 and then forgets it", async () => {
    const { polling, advance } = transport({ maxQueuedBytes: 100 });
    polling.open(record("echo"), "s");
    polling.send("s", { n: 1, frames: [{ t: "x".repeat(60) }, { t: "y".repeat(60) }] });
    const result = (await polling.poll("s", 0)) as PollReply;
    assert.equal(result.close?.code, 1013);
    // The final reply can be fetched again for one idle period, then the sid is gone.
    assert.deepEqual(await polling.poll("s", 0), result);
    assert.deepEqual(await polling.poll("s", result.cursor), {
      cursor: result.cursor,
      frames: [],
      close: result.close,
    });
    advance(1001);
    polling.sweep();
    assert.equal(await polling.poll("s", result.cursor), "session_not_found");
  });

  it("refuses sessions beyond the limit", () => {
    const { polling } = transport({ maxSessions: 2 });
    assert.ok(polling.open(record("echo"), "a"));
    assert.ok(polling.open(record("echo"), "b"));
    assert.equal(polling.open(record("echo"), "c"), null);
    polling.close("a", 1000, "");
    polling.close("b", 1000, "");
  });

  it("expires a session nobody polls, as a dropped connection", async () => {
    const { polling, engine, advance } = transport();
    polling.open(record("room", "r"), "s");
    await settle();
    assert.equal((await engine.broker.snapshot(engine.ref("room", "r"))).members.length, 1);
    advance(1001);
    polling.sweep();
    await settle();
    assert.equal(polling.size, 0);
    assert.equal((await engine.broker.snapshot(engine.ref("room", "r"))).members.length, 0);
    assert.equal(await polling.poll("s", 0), "session_not_found");
  });

  it("rejects malformed bodies and unknown sessions", () => {
    const { polling } = transport();
    polling.open(record("echo"), "s");
    assert.equal(polling.send("s", { frames: [] }), "invalid_body");
    assert.equal(polling.send("s", { n: 1, frames: [{ x: 1 }] }), "invalid_body");
    assert.equal(polling.send("s", { n: 2, frames: [{ b: "!!!" }] }), "invalid_body");
    assert.equal(polling.send("nope", { n: 1, frames: [] }), "session_not_found");
    assert.equal(polling.close("nope", 1000, ""), "session_not_found");
    polling.close("s", 1000, "");
  });
});
