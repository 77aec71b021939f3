/**
 * Room state on the memory broker (the engine with fake peers; SQLite's store is in
 * sql-history.test.ts and sql-timers.test.ts): a transaction's state and messages commit
 * together, refusals and faults change nothing, commits are serialized per room also when
 * handlers are async, and the view arrives in the welcome and with every change, in seq order.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { type AnyRoute, ClientError, defineRoom, RouteError } from "../../src/index.ts";
import { roomRef } from "../../src/pubsub/broker.ts";
import { MemoryHistory } from "../../src/pubsub/history.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { engineWith, FakePeer, record, settle } from "../support/fakes.ts";

const Counter = v.object({ n: v.number(), secret: v.string(), log: v.array(v.number()) });

const counter = defineRoom({
  path: "/counter/:room",
  schema: v.object({ by: v.number(), wait: v.optional(v.number()), bad: v.optional(v.boolean()) }),
  roomState: Counter,
  initialRoomState: ({ room }) => ({ n: room === "ten" ? 10 : 0, secret: "s", log: [] }),
  view: (state) => ({ n: state.n }),
  maxRoomStateBytes: 200,
  async message(ctx, msg) {
    // An async handler: the wait comes before the transaction, which must still see the latest state.
    if (msg.wait) await new Promise((r) => setTimeout(r, msg.wait));
    return ctx.room.transact((state) => {
      if (msg.by < 0) throw new ClientError("negative", "only up");
      if (msg.bad) return { state: { ...state, n: "nope" as unknown as number } };
      if (msg.by === 0) return { state: { ...state, secret: `${state.secret}!` } };
      return { state: { ...state, n: state.n + msg.by, log: [...state.log, msg.by] }, publish: [{ by: msg.by }] };
    });
  },
});

const silent = defineRoom({
  path: "/silent/:room",
  roomState: v.object({ n: v.optional(v.number(), 0) }),
  message(ctx) {
    return ctx.room.transact((state) => ({ state: { n: state.n + 1 } }));
  },
});

type Json = Record<string, unknown>;

/** A member of `route`'s room publishes once: its handler's misuse is the route's fault — 1011, logged as `why`. */
async function assertFault(route: ReturnType<typeof defineRoom>, why: RegExp): Promise<void> {
  const errors: unknown[] = [];
  const engine = engineWith({ routes: [route as AnyRoute], log: (_m, e) => errors.push(e) });
  const peer = new FakePeer(record(route.name, "x"));
  engine.opened(peer);
  await settle();
  engine.message(peer, JSON.stringify({ type: "publish", data: 1 }));
  await settle();
  await settle();
  assert.equal(peer.closed?.code, 1011);
  assert.ok(
    errors.some((e) => why.test(String(e))),
    `logged: ${errors.map(String).join("; ")}`,
  );
}

function setup() {
  const history = new MemoryHistory();
  const errors: unknown[] = [];
  const engine = engineWith({
    routes: [counter, silent],
    broker: new MemoryBroker({ history }),
    log: (_m, error) => errors.push(error),
  });
  const join = async (room: string, route = "counter") => {
    const peer = new FakePeer(record(route, room));
    engine.opened(peer);
    await settle();
    return peer;
  };
  const send = (peer: FakePeer, data: Json, id?: string) =>
    engine.message(peer, JSON.stringify({ type: "publish", data, ...(id ? { id } : {}) }));
  return { engine, history, errors, join, send };
}

describe("room state", () => {
  it("the welcome carries the view of the initial state, made from the room's parameters", async () => {
    const { join } = setup();
    const a = await join("ten");
    const welcome = a.ofType<{ view: unknown; seq: number }>("welcome")[0];
    assert.deepEqual(welcome?.view, { n: 10 }, "the view, not the state (no secret)");
    const b = await join("zero");
    assert.deepEqual(b.ofType<{ view: unknown }>("welcome")[0]?.view, { n: 0 });
  });

  it("a transaction's state and message commit together: every member gets the message with the new view", async () => {
    const { join, send, history } = setup();
    const a = await join("r");
    const b = await join("r");
    send(a, { by: 2 }, "p1");
    send(b, { by: 3 });
    await settle();
    await settle();
    for (const peer of [a, b]) {
      const messages = peer.ofType<{ seq: number; data: Json; view: Json }>("message");
      assert.deepEqual(
        messages.map((m) => [m.seq, m.data.by, m.view.n]),
        [
          [1, 2, 2],
          [2, 3, 5],
        ],
      );
    }
    assert.deepEqual(a.ofType<{ id: string; seq: number }>("ack")[0], { type: "ack", id: "p1", seq: 1 });
    assert.deepEqual(JSON.parse(history.head("counter:r").state ?? "null"), { n: 5, secret: "s", log: [2, 3] });
    const c = await join("r");
    const welcome = c.ofType<{ view: Json; seq: number }>("welcome")[0];
    assert.deepEqual([welcome?.seq, welcome?.view], [2, { n: 5 }], "a later joiner: the view as of its welcome's seq");
  });

  it("transactions are serialized per room when handlers are async: no update is lost", async () => {
    const { join, send, history } = setup();
    const a = await join("race");
    const b = await join("race");
    for (let i = 0; i < 20; i++) send(i % 2 ? a : b, { by: 1, wait: (i * 7) % 5 });
    await new Promise((r) => setTimeout(r, 60));
    const state = JSON.parse(history.head("counter:race").state ?? "null") as { n: number; log: number[] };
    assert.equal(state.n, 20);
    assert.equal(state.log.length, 20);
    assert.deepEqual(
      a.ofType<{ view: Json }>("message").map((m) => m.view.n),
      Array.from({ length: 20 }, (_, i) => i + 1),
      "each message carries the view after it, in seq order",
    );
  });

  it("a ClientError refuses the message and changes nothing", async () => {
    const { join, send, history, errors } = setup();
    const a = await join("refuse");
    send(a, { by: 1 });
    send(a, { by: -1 }, "p2");
    await settle();
    await settle();
    assert.deepEqual(a.ofType<{ code: string; id: string }>("error")[0], {
      type: "error",
      code: "negative",
      message: "only up",
      id: "p2",
    });
    assert.equal(history.head("counter:refuse").seq, 1);
    assert.equal(JSON.parse(history.head("counter:refuse").state ?? "null").n, 1);
    assert.equal(errors.length, 0, "a refusal is not a fault");
    assert.equal(a.closed, undefined);
  });

  it("a state that fails the schema, or the size limit, is the route's fault: 1011, logged, nothing stored", async () => {
    const { join, send, history, errors } = setup();
    const a = await join("bad");
    send(a, { by: 1 });
    await settle();
    send(a, { by: 1, bad: true });
    await settle();
    await settle();
    assert.equal(a.closed?.code, 1011);
    assert.ok(errors.some((e) => e instanceof RouteError && /roomState schema/.test(e.message)));
    assert.equal(JSON.parse(history.head("counter:bad").state ?? "null").n, 1, "nothing stored");
    const b = await join("big");
    // Each message adds to `log`: past 200 bytes of JSON the transaction is refused as a fault.
    for (let i = 0; i < 120; i++) send(b, { by: 1 });
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(b.closed?.code, 1011);
    assert.ok(errors.some((e) => e instanceof RouteError && /maxRoomStateBytes/.test(e.message)));
    const stored = history.head("counter:big").state ?? "";
    assert.ok(stored.length <= 200, `the stored state stays within the limit (${stored.length})`);
  });

  it("a change the view does not show sends nothing; one with no message sends a view frame", async () => {
    const { join, send, history } = setup();
    const a = await join("hidden");
    send(a, { by: 0 });
    await settle();
    await settle();
    assert.equal(a.ofType("message").length + a.ofType("view").length, 0, "the secret changed: nobody is told");
    assert.equal(JSON.parse(history.head("counter:hidden").state ?? "null").secret, "s!");
    assert.equal(history.head("counter:hidden").seq, 0, "no seq for an unseen change");
  });

  it("a transaction without messages whose view changed is one sequenced view frame, replayed on resume", async () => {
    const { join, engine, send } = setup();
    const a = await join("v", "silent");
    send(a, {});
    send(a, {});
    await settle();
    await settle();
    const views = a.ofType<{ seq: number; view: Json; from: string }>("view");
    assert.deepEqual(
      views.map((f) => [f.seq, f.view.n]),
      [
        [1, 1],
        [2, 2],
      ],
    );
    // A member resuming after seq 1 gets no view in its welcome and the change after it, replayed.
    const epoch = a.ofType<{ epoch: string }>("welcome")[0]?.epoch as string;
    const back = new FakePeer({ ...record("silent", "v"), resume: { seq: 1, epoch } });
    engine.opened(back);
    await settle();
    await settle();
    const welcome = back.ofType<{ view?: unknown; resumed?: boolean }>("welcome")[0];
    assert.equal(welcome?.resumed, true);
    assert.equal("view" in (welcome ?? {}), false, "an exact resume keeps the client's own view");
    assert.deepEqual(
      back.ofType<{ seq: number; view: Json }>("view").map((f) => [f.seq, f.view.n]),
      [[2, 2]],
    );
  });

  it("a transaction that returns a promise is refused as the route's fault", async () => {
    const asyncTx = defineRoom({
      path: "/async/:room",
      roomState: v.object({}),
      // @ts-expect-error a transaction is synchronous
      message: (ctx) => ctx.room.transact(async (state) => ({ state })),
    });
    await assertFault(asyncTx, /synchronous/);
  });

  it("definitions are checked: room state on a plain route, a view without a schema, a bad size", () => {
    assert.throws(
      () => defineRoom({ path: "/a/:r", roomState: v.object({ n: v.number() }) }),
      /does not accept \{\}.*initialRoomState/,
    );
    assert.throws(() => defineRoom({ path: "/b/:r", view: () => 1 }), /need a roomState schema/);
    assert.throws(
      () => defineRoom({ path: "/c/:r", roomState: v.object({}), maxRoomStateBytes: 200_000 }),
      /maxRoomStateBytes is an integer from 2 to 131072/,
    );
  });

  it("ctx.room.state() reads the committed state and history() the room's recent frames", async () => {
    const seen: unknown[] = [];
    const reader = defineRoom({
      path: "/reader/:room",
      roomState: v.object({ n: v.optional(v.number(), 0) }),
      async message(ctx, data) {
        if (data === "read") {
          seen.push(
            await ctx.room.state(),
            (await ctx.room.history(0, 10)).map((f) => f.seq),
          );
          return;
        }
        return ctx.room.transact((state) => ({ state: { n: state.n + 1 }, publish: [data] }));
      },
    });
    const engine = engineWith({ routes: [reader] });
    const peer = new FakePeer(record("reader", "x"));
    engine.opened(peer);
    await settle();
    for (const data of ["a", "b"]) engine.message(peer, JSON.stringify({ type: "publish", data }));
    await settle();
    engine.message(peer, JSON.stringify({ type: "publish", data: "read" }));
    await settle();
    await settle();
    await settle();
    assert.deepEqual(seen, [{ n: 2 }, [1, 2]]);
  });

  it("history(after, limit) starts after `after` and stops at `limit`, at most 1000", async () => {
    const pages: number[][] = [];
    const reader = defineRoom({
      path: "/pages/:room",
      roomState: v.object({ n: v.optional(v.number(), 0) }),
      async message(ctx, data) {
        if (data === "read") {
          for (const [after, limit] of [
            [3, 2],
            [4, 100],
            [0, 0],
            [9, 5],
          ] as const)
            pages.push((await ctx.room.history(after, limit)).map((f) => f.seq));
          return;
        }
        return ctx.room.transact((state) => ({ state: { n: state.n + 1 }, publish: [data] }));
      },
    });
    const engine = engineWith({ routes: [reader] });
    const peer = new FakePeer(record("pages", "x"));
    engine.opened(peer);
    await settle();
    for (let i = 0; i < 6; i++) engine.message(peer, JSON.stringify({ type: "publish", data: i }));
    await settle();
    engine.message(peer, JSON.stringify({ type: "publish", data: "read" }));
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(pages, [[4, 5], [5, 6], [], []]);
  });

  it("an initialRoomState that fails the room state schema is the route's fault, nothing stored", async () => {
    const route = defineRoom({
      path: "/badstart/:room",
      roomState: v.object({ n: v.number() }),
      initialRoomState: () => ({ n: "zero" }) as unknown as { n: number },
      message: (ctx) => ctx.room.transact((state) => ({ state: { n: state.n + 1 } })),
    });
    await assertFault(route, /room state/);
  });

  it("a view that fails its viewSchema is the route's fault: 1011, logged, nothing stored, nothing sent", async () => {
    const errors: unknown[] = [];
    const history = new MemoryHistory();
    const route = defineRoom({
      path: "/shown/:room",
      roomState: v.object({ n: v.optional(v.number(), 0) }),
      // The view goes wrong at 2: a string where its schema says a number.
      view: (state) => ({ n: state.n === 2 ? "two" : state.n }) as unknown as { n: number },
      viewSchema: v.object({ n: v.number() }),
      message: (ctx) => ctx.room.transact((state) => ({ state: { n: state.n + 1 }, publish: [state.n + 1] })),
    });
    const engine = engineWith({
      routes: [route as AnyRoute],
      broker: new MemoryBroker({ history }),
      log: (_m, e) => errors.push(e),
    });
    const peer = new FakePeer(record(route.name, "x"));
    engine.opened(peer);
    await settle();
    for (let i = 0; i < 2; i++) {
      engine.message(peer, JSON.stringify({ type: "publish", data: i }));
      await settle();
      await settle();
    }
    assert.equal(peer.closed?.code, 1011);
    assert.ok(errors.some((e) => e instanceof RouteError && /viewSchema/.test(e.message)));
    assert.equal(JSON.parse(history.head(`${route.name}:x`).state ?? "null").n, 1, "the second change was not stored");
    assert.deepEqual(
      peer.ofType<{ seq: number }>("message").map((m) => m.seq),
      [1],
      "only the first change's message went out",
    );
  });
});

describe("room timers (memory)", () => {
  it("a scheduled timer runs its handler once; a replaced or cancelled one does not; list shows the pending", async () => {
    const fired: unknown[] = [];
    const route = defineRoom({
      path: "/alarm/:room",
      roomState: v.object({ rang: v.optional(v.number(), 0) }),
      async message(ctx, data) {
        const op = data as { op: string; name: string; inMs: number };
        if (op.op === "schedule") await ctx.room.schedule(op.name, Date.now() + op.inMs, { n: op.name });
        if (op.op === "cancel") await ctx.room.cancel(op.name);
        if (op.op === "list") fired.push(["list", (await ctx.room.timers()).map((t) => t.name)]);
      },
      async timer(ctx, timer) {
        fired.push([timer.name, timer.data]);
        await ctx.room.transact((state) => ({ state: { rang: state.rang + 1 } }));
      },
    });
    const broker = new MemoryBroker();
    const engine = engineWith({ routes: [route], broker });
    broker.timers.start((ref, timer) => engine.fireTimer(ref, timer));
    const peer = new FakePeer(record("alarm", "x"));
    engine.opened(peer);
    await settle();
    const send = (data: Json) => engine.message(peer, JSON.stringify({ type: "publish", data }));
    send({ op: "schedule", name: "a", inMs: 20 });
    send({ op: "schedule", name: "b", inMs: 20 });
    send({ op: "schedule", name: "c", inMs: 40 });
    await settle();
    send({ op: "schedule", name: "a", inMs: 60 }); // replaces a
    send({ op: "cancel", name: "b" });
    send({ op: "list" });
    await new Promise((r) => setTimeout(r, 120));
    broker.timers.stop();
    assert.deepEqual(fired, [
      ["list", ["a", "c"]],
      ["c", { n: "c" }],
      ["a", { n: "a" }],
    ]);
    assert.deepEqual(
      peer.ofType<{ view: Json }>("view").map((f) => f.view.rang),
      [1, 2],
      "each timer's transaction committed once",
    );
  });

  it("a timer handler that throws is the route's fault: logged, that run over (not run again), the room's other timers run", async () => {
    const errors: string[] = [];
    const ran: string[] = [];
    const route = defineRoom({
      path: "/brittle/:room",
      roomState: v.object({ rang: v.optional(v.number(), 0) }),
      async message(ctx, name) {
        await ctx.room.schedule(String(name), Date.now() + 10);
      },
      async timer(ctx, timer) {
        ran.push(timer.name);
        if (timer.name === "bad") throw new Error("the handler's own bug");
        await ctx.room.transact((state) => ({ state: { rang: state.rang + 1 } }));
      },
    });
    const broker = new MemoryBroker();
    const engine = engineWith({ routes: [route], broker, log: (m) => errors.push(m) });
    broker.timers.start((ref, timer) => engine.fireTimer(ref, timer));
    const peer = new FakePeer(record("brittle", "x"));
    engine.opened(peer);
    await settle();
    for (const name of ["bad", "good"]) engine.message(peer, JSON.stringify({ type: "publish", data: name }));
    await new Promise((r) => setTimeout(r, 100));
    broker.timers.stop();
    assert.deepEqual(ran.sort(), ["bad", "good"], "each ran once");
    assert.ok(
      errors.some((m) => /timer "bad"/.test(m)),
      `logged: ${errors.join("; ")}`,
    );
    assert.deepEqual(await broker.timers.list(roomRef("brittle", "x")), [], "nothing left pending");
    assert.deepEqual(
      peer.ofType<{ view: Json }>("view").map((f) => f.view.rang),
      [1],
    );
    assert.equal(peer.closed, undefined, "no member pays for it");
  });

  it("scheduling without a timer handler, or with a bad name, is the route's fault", async () => {
    const route = defineRoom({
      path: "/noalarm/:room",
      message: (ctx) => ctx.room.schedule("x", Date.now() + 10),
    });
    await assertFault(route, /no timer handler/);
    const badName = defineRoom({
      path: "/badname/:room",
      message: (ctx) => ctx.room.schedule("no spaces", Date.now() + 10),
      timer: () => {},
    });
    await assertFault(badName, /a timer's name is 1–64/);
  });
});
