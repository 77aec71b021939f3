/** The inspector's data: frames sent are counted (fan-out included), samples are a bounded ring, rooms and rates, and the config refuses an inspector without a token. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config.ts";
import { Sampler } from "../../src/inspector/sampler.ts";
import { engineWith, FakePeer, record, settle } from "../support/fakes.ts";

describe("inspector data", () => {
  it("counts every frame sent: welcomes, acks, echoes and each member of a fan-out", async () => {
    const engine = engineWith();
    const a = new FakePeer(record("room", "r"));
    const b = new FakePeer(record("room", "r"));
    engine.opened(a);
    engine.opened(b);
    await settle();
    engine.message(a, JSON.stringify({ type: "publish", id: "1", data: { text: "hi" } }));
    await settle();
    const echo = new FakePeer(record("echo"));
    engine.opened(echo);
    engine.message(echo, "ping me");
    const room = engine.metrics.route("room");
    const sentToRoom = a.sent.length + b.sent.length;
    assert.ok(sentToRoom >= 5, `welcome ×2, presence, message ×2, ack: ${sentToRoom}`);
    assert.equal(room.messagesOut, sentToRoom);
    const bytes = [...a.sent, ...b.sent].reduce((n, f) => n + (typeof f === "string" ? f.length : f.byteLength), 0);
    assert.equal(room.bytesOut, bytes);
    assert.equal(engine.metrics.route("echo").messagesOut, 1);
    assert.equal(engine.metrics.route("echo").bytesOut, "ping me".length);
  });

  it("keeps a bounded ring of samples and lists rooms with members and a rate", async () => {
    const engine = engineWith();
    const sampler = new Sampler(engine, engine.broker, engine.metrics, 5000, 3);
    const peers = [new FakePeer(record("room", "busy")), new FakePeer(record("room", "busy"))];
    for (const p of peers) engine.opened(p);
    engine.opened(new FakePeer(record("room", "quiet")));
    await settle();
    sampler.sample(Date.now() - 10_000);
    for (let i = 0; i < 10; i++) engine.message(peers[0] as FakePeer, JSON.stringify({ type: "publish", data: i }));
    await settle();
    for (let i = 0; i < 5; i++) sampler.sample(Date.now() - 4000 + i);
    const o = sampler.overview("fake", undefined, 0);
    assert.equal(o.samples.length, 4, "3 kept + one taken now");
    assert.equal(o.roomCount, 2);
    assert.deepEqual(
      o.rooms.map((r) => [r.route, r.room, r.members]),
      [
        ["room", "busy", 2],
        ["room", "quiet", 1],
      ],
    );
    assert.equal(o.connections.room?.websocket, 3);
    const view = await sampler.room("room", "busy");
    assert.equal(view.count, 2);
    assert.equal(view.messages.length, 10);
    assert.deepEqual(
      view.messages.map((m) => (m.type === "message" ? m.data : m.view)),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const last = await sampler.room("room", "busy", 3);
    assert.deepEqual(
      last.messages.map((m) => m.seq),
      [8, 9, 10],
    );
  });

  it("refuses to enable the inspector without a metrics token", () => {
    assert.throws(() => loadConfig({ EDGEWIRE_INSPECTOR: "true" }), /EDGEWIRE_INSPECTOR needs EDGEWIRE_METRICS_TOKEN/);
    assert.equal(loadConfig({ EDGEWIRE_INSPECTOR: "true", EDGEWIRE_METRICS_TOKEN: "t" }).inspector, true);
    assert.equal(loadConfig({}).inspector, false);
  });
});
