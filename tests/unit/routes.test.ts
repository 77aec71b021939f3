/** The public route API with fake peers: definitions, schemas, state, refusals, faults, wake-up from a record. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { ClientError, createEdgewire, defineRoom, defineRoute, MAX_RECORD_BYTES, RouteError } from "../../src/index.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { engineWith, FakePeer, fakeApp, settle } from "../support/fakes.ts";

const Op = v.variant("type", [
  v.object({ type: v.literal("add"), a: v.number(), b: v.number() }),
  v.object({ type: v.literal("refuse"), sync: v.boolean() }),
  v.object({ type: v.literal("crash") }),
]);

const calls: unknown[] = [];
const calc = defineRoute({
  path: "/calc",
  schema: Op,
  state: v.object({ total: v.optional(v.number(), 0) }),
  message(ctx, op) {
    calls.push(op);
    if (op.type === "crash") throw new Error("boom");
    if (op.type === "refuse") {
      if (op.sync) throw new ClientError("not_allowed", "no, synchronously");
      return Promise.reject(new ClientError("not_allowed", "no, later"));
    }
    ctx.connection.setState({ total: ctx.connection.state.total + op.a + op.b });
    ctx.connection.send({ type: "sum", total: ctx.connection.state.total });
  },
});

const Say = v.object({ text: v.pipe(v.string(), v.minLength(1)) });
const board = defineRoom({
  path: "/board/:room",
  schema: v.union([Say, v.object({ ping: v.literal(true) })]),
  state: v.object({ colour: v.string(), note: v.optional(v.string(), "") }),
  initialState: ({ query }) => ({ colour: query.colour ?? "grey" }),
  member: (state) => ({ colour: state.colour }),
  message(ctx, data) {
    if ("ping" in data) return ctx.room.broadcast(data);
    if (data.text === "big") ctx.connection.setState({ ...ctx.connection.state, note: "x".repeat(MAX_RECORD_BYTES) });
    if (data.text === "recolour") ctx.connection.setState({ ...ctx.connection.state, colour: "red" });
    return ctx.room.publish(data);
  },
});

const routes = [calc, board];
const engineOf = (broker = new MemoryBroker()) => engineWith({ routes, broker });

describe("route definitions", () => {
  it("name themselves from their path and check it", () => {
    assert.equal(calc.name, "calc");
    assert.equal(board.name, "board");
    assert.equal(defineRoom({ path: "/a/:room/b" }).name, "a/b");
    assert.throws(() => defineRoom({ path: "/rooms" }), /has a parameter/);
    // Any named parameters: the room is their tuple.
    assert.equal(defineRoom({ path: "/auction/:item" }).name, "auction");
    assert.equal(defineRoom({ path: "/org/:org/board/:board" }).name, "org/board");
    assert.throws(() => defineRoom({ path: "/a/:x/b/:x" }), /named twice/);
    assert.throws(() => defineRoom({ path: "/a/x:y" }), /whole segment/);
    assert.throws(() => defineRoom({ path: "/a/:x-y" }), /whole segment/);
    assert.throws(() => defineRoom({ name: "a:b", path: "/x/:room" }), /cannot hold ":"/);
    assert.throws(() => defineRoute({ path: "/x/:id" }), /no parameters/);
    assert.throws(() => defineRoute({ path: "/x/poll" }), /sub-paths/);
    assert.throws(() => defineRoute({ path: "/:room" }), RouteError);
  });

  it("refuse a state schema that cannot start from {} without an initialState, naming the route", () => {
    assert.throws(
      () => defineRoute({ name: "needy", path: "/needy", state: v.object({ colour: v.string() }) }),
      (e: Error) => e instanceof RouteError && /route "needy"/.test(e.message) && /initialState/.test(e.message),
    );
  });

  it("refuse two routes with one name or one path in an edgewire", () => {
    assert.throws(
      () => createEdgewire({ routes: [calc, defineRoute({ name: "calc", path: "/other" })] }),
      /two routes are named "calc"/,
    );
    assert.throws(
      () => createEdgewire({ routes: [calc, defineRoute({ name: "c2", path: "/calc" })] }),
      /two routes have the path/,
    );
  });

  it("refuse a route on a path edgewire's own endpoint takes, unless that endpoint is off or moved", () => {
    for (const path of ["/healthz", "/readyz", "/metrics", "/asyncapi.json"]) {
      assert.throws(
        () => createEdgewire({ routes: [defineRoute({ name: "mine", path })] }),
        (e: Error) => e.message.includes(`route "mine" has the path ${path}, which edgewire's own endpoint takes`),
      );
    }
    assert.throws(() => createEdgewire({ routes: [defineRoute({ path: "/client.js" })], clientScript: true }));
    createEdgewire({ routes: [defineRoute({ path: "/healthz" })], health: "/livez" });
    createEdgewire({ routes: [defineRoute({ path: "/metrics" })], metrics: false });
    createEdgewire({ routes: [defineRoute({ path: "/client.js" })] });
  });
});

describe("plain routes", () => {
  it("validate frames with the route's schema before the handler sees them", async () => {
    const engine = engineOf();
    const peer = new FakePeer(engine.record("calc", null, ""));
    engine.opened(peer);
    calls.length = 0;
    engine.message(peer, "{nope");
    engine.message(peer, JSON.stringify({ type: "add", a: 1, id: "k" }));
    engine.message(peer, new Uint8Array([1, 2]));
    engine.message(peer, JSON.stringify({ type: "add", a: 1, b: 2 }));
    engine.message(peer, JSON.stringify({ type: "add", a: 10, b: 20 }));
    await settle();
    assert.deepEqual(
      calls,
      [
        { type: "add", a: 1, b: 2 },
        { type: "add", a: 10, b: 20 },
      ],
      "only valid frames arrive",
    );
    const errors = peer.ofType<{ code: string; id?: string }>("error");
    assert.deepEqual(
      errors.map((e) => e.code),
      ["invalid_json", "invalid_message", "invalid_message"],
    );
    assert.equal(errors[1]?.id, "k");
    assert.deepEqual(
      peer.ofType<{ total: number }>("sum").map((f) => f.total),
      [3, 33],
      "state persists between messages",
    );
    assert.ok(peer.saves >= 2, "each setState is saved where the runtime keeps records");
  });

  it("turn a ClientError into an error frame with its code, sync or async, and keep the connection", async () => {
    const engine = engineOf();
    const peer = new FakePeer(engine.record("calc", null, ""));
    engine.opened(peer);
    engine.message(peer, JSON.stringify({ type: "refuse", sync: true, id: "r1" }));
    engine.message(peer, JSON.stringify({ type: "refuse", sync: false, id: "r2" }));
    await settle();
    assert.deepEqual(
      peer.ofType<{ code: string; id: string }>("error").map((e) => [e.code, e.id]),
      [
        ["not_allowed", "r1"],
        ["not_allowed", "r2"],
      ],
    );
    assert.equal(peer.closed, undefined);
  });

  it("close only the faulty connection with 1011 and log the route's name", async () => {
    const logged: string[] = [];
    const engine = engineWith({ routes, log: (m) => logged.push(m) });
    const bad = new FakePeer(engine.record("calc", null, ""));
    const good = new FakePeer(engine.record("calc", null, ""));
    engine.opened(bad);
    engine.opened(good);
    engine.message(bad, JSON.stringify({ type: "crash" }));
    engine.message(good, JSON.stringify({ type: "add", a: 1, b: 1 }));
    await settle();
    assert.equal(bad.closed?.code, 1011);
    assert.equal(good.closed, undefined);
    assert.equal(good.ofType("sum").length, 1);
    assert.match(logged[0] ?? "", /route "calc"/);
  });
});

describe("room routes", () => {
  it("check publish data with the route's schema, ack with the seq the handler published, broadcast unsequenced", async () => {
    const engine = engineOf();
    const a = new FakePeer(engine.record("board", "r", "", {}, { colour: "blue" }));
    const b = new FakePeer(engine.record("board", "r", ""));
    engine.opened(a);
    engine.opened(b);
    await settle();
    engine.message(a, JSON.stringify({ type: "publish", id: "p1", data: { text: "" } }));
    engine.message(a, JSON.stringify({ type: "publish", id: "p2", data: { text: "hi" } }));
    engine.message(a, JSON.stringify({ type: "publish", id: "p3", data: { ping: true } }));
    await settle();
    const [invalid] = a.ofType<{ code: string; id: string; message: string }>("error");
    assert.deepEqual([invalid?.code, invalid?.id], ["invalid_message", "p1"]);
    assert.match(invalid?.message ?? "", /^data/);
    assert.deepEqual(
      a
        .ofType<{ id: string; seq?: number }>("ack")
        .map((k) => [k.id, k.seq])
        .sort(), // acks follow their handlers, which finish in any order
      [
        ["p2", 1],
        ["p3", undefined],
      ],
    );
    assert.deepEqual(
      b.ofType<{ data: unknown }>("broadcast").map((f) => f.data),
      [{ ping: true }],
    );
    assert.equal(a.ofType("broadcast").length, 0, "a broadcast goes to the others by default");
  });

  it("show members' info from their state, refreshed by setState", async () => {
    const engine = engineOf();
    const a = new FakePeer(engine.record("board", "r", "", {}, { colour: "blue" }));
    engine.opened(a);
    await settle();
    const ref = engine.ref("board", "r");
    assert.deepEqual((await engine.broker.snapshot(ref)).members[0]?.info, { colour: "blue" });
    engine.message(a, JSON.stringify({ type: "publish", data: { text: "recolour" } }));
    await settle();
    assert.deepEqual((await engine.broker.snapshot(ref)).members[0]?.info, { colour: "red" });
    assert.equal(
      a.ofType<{ event: string }>("presence").filter((f) => f.event === "update").length,
      0,
      "not announced without memberUpdates",
    );
  });

  it("with memberUpdates, announce a change of a member's shown info to every member, and only a change", async () => {
    const status = defineRoom({
      path: "/status/:room",
      schema: v.object({ status: v.string(), note: v.string() }),
      state: v.object({ status: v.optional(v.string(), "here"), note: v.optional(v.string(), "") }),
      // No status, no info: so a member's info can go from none to some and back.
      member: (state) => (state.status === "" ? undefined : { status: state.status }),
      memberUpdates: true,
      message(ctx, data) {
        ctx.connection.setState(data);
      },
    });
    const engine = engineWith({ routes: [status] });
    const a = new FakePeer(engine.record("status", "r", ""));
    const b = new FakePeer(engine.record("status", "r", ""));
    engine.opened(a);
    engine.opened(b);
    await settle();
    const updates = (p: FakePeer) => p.ofType("presence").filter((f) => f.event === "update");
    engine.message(a, JSON.stringify({ type: "publish", data: { status: "here", note: "only the note" } }));
    await settle();
    assert.equal(updates(b).length, 0, "a state change the member's info does not show is not announced");
    // Some → none, then none → some: both are changes (undefined info is no exception).
    engine.message(a, JSON.stringify({ type: "publish", data: { status: "", note: "" } }));
    await settle();
    engine.message(a, JSON.stringify({ type: "publish", data: { status: "away", note: "" } }));
    await settle();
    for (const p of [a, b]) {
      assert.deepEqual(
        updates(p).map((f) => [(f.member as { id: string }).id, (f.member as { info?: unknown }).info]),
        [
          [a.record.id, undefined],
          [a.record.id, { status: "away" }],
        ],
        "both lists, a's own too, get a's new info",
      );
    }
  });

  it("with publishes, deliver what the handler made of a message, and treat a mismatch as the route's fault", async () => {
    const logged: unknown[] = [];
    const stamped = defineRoom({
      path: "/stamped/:room",
      schema: v.object({ text: v.string() }),
      publishes: v.object({ text: v.string(), by: v.string() }),
      message(ctx, data) {
        // The bug under test: "forget" to stamp one message (types forbid it; plain JS would not).
        if (data.text === "unstamped") return ctx.room.publish(data as never);
        // Fire and forget: the mismatch must still be handled, not left as an unhandled rejection.
        if (data.text === "unawaited") return void ctx.room.broadcast(data as never);
        return ctx.room.publish({ ...data, by: "ada" });
      },
    });
    const engine = engineWith({ routes: [stamped], log: (_m, e) => logged.push(e) });
    const a = new FakePeer(engine.record("stamped", "r", ""));
    const b = new FakePeer(engine.record("stamped", "r", ""));
    engine.opened(a);
    engine.opened(b);
    await settle();
    engine.message(a, JSON.stringify({ type: "publish", id: "1", data: { text: "hi" } }));
    await settle();
    assert.deepEqual(
      b.ofType<{ data: unknown }>("message").map((m) => m.data),
      [{ text: "hi", by: "ada" }],
    );
    engine.message(a, JSON.stringify({ type: "publish", id: "2", data: { text: "unstamped" } }));
    await settle();
    assert.equal(b.ofType("message").length, 1, "nothing that fails publishes reaches the room");
    assert.equal(a.closed?.code, 1011, "a handler publishing off its schema is a fault");
    assert.ok(logged[0] instanceof RouteError);
    assert.match((logged[0] as Error).message, /route "stamped": published data does not match its publishes schema/);
    assert.equal(logged.length, 1, "logged once, though the handler that awaited it rethrew it");
    const c = new FakePeer(engine.record("stamped", "r", ""));
    engine.opened(c);
    await settle();
    engine.message(c, JSON.stringify({ type: "publish", data: { text: "unawaited" } }));
    await settle();
    assert.equal(c.closed?.code, 1011, "an un-awaited broadcast off its schema is a fault too");
    assert.equal(logged.length, 2);
    assert.equal(b.ofType("broadcast").length, 0, "and nothing reached the room");
    // A backend push is checked against what members receive, too.
    const handlers = engine.route("stamped") as NonNullable<ReturnType<typeof engine.route>>;
    assert.deepEqual(handlers.checkData({ text: "x", by: "backend" }), { data: { text: "x", by: "backend" } });
    assert.match(String(handlers.checkData({ text: "x" })), /by/);
  });

  it("refuse publishes without a message handler: the default one would publish the client's data as it is", () => {
    assert.throws(
      () => defineRoom({ path: "/p/:room", schema: v.string(), publishes: v.number() }),
      (e: Error) => e instanceof RouteError && /route "p": publishes needs a message handler/.test(e.message),
    );
  });

  it("refuse a state that makes the record larger than a Durable Object attachment, naming the route", async () => {
    const logged: unknown[] = [];
    const engine = engineWith({ routes, log: (_m, e) => logged.push(e) });
    const a = new FakePeer(engine.record("board", "r", ""));
    engine.opened(a);
    await settle();
    engine.message(a, JSON.stringify({ type: "publish", data: { text: "big" } }));
    await settle();
    assert.equal(a.closed?.code, 1011, "an oversized state is the route's fault");
    assert.ok(logged[0] instanceof RouteError);
    assert.match((logged[0] as Error).message, /route "board".*16384 bytes/);
    assert.equal((a.record.state as { note: string }).note, "", "the state before the failed write stays");
  });

  it("find the handlers and the state again from a record alone (a woken Durable Object)", async () => {
    const asleep = engineOf();
    const a = new FakePeer(asleep.record("board", "r", "", {}, { colour: "teal" }));
    asleep.opened(a);
    await settle();
    // A new engine (the object rebuilt after eviction) gets nothing but the socket's record.
    const awake = engineOf();
    const woken = new FakePeer(JSON.parse(JSON.stringify(a.record)));
    const other = new FakePeer(awake.record("board", "r", ""));
    awake.restored(woken);
    awake.opened(other);
    await settle();
    const welcome = other.ofType<{ members: { id: string; info: unknown }[] }>("welcome")[0];
    assert.deepEqual(
      welcome?.members.find((m) => m.id === a.record.id)?.info,
      { colour: "teal" },
      "the restored member shows its state",
    );
    awake.message(woken, JSON.stringify({ type: "publish", id: "w", data: { text: "after" } }));
    await settle();
    assert.equal(other.ofType<{ data: { text: string } }>("message")[0]?.data.text, "after");
    assert.deepEqual(woken.ofType<{ seq: number }>("ack")[0]?.seq, 1);
  });
});

describe("admission with user routes", () => {
  it("makes the initial state from the query at admission, and validates pushes against the route's schema", async () => {
    const { app, upgrades } = fakeApp({ edgewire: { routes }, pushToken: "t" });
    await app.request("/board/r?colour=gold", {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assert.deepEqual(upgrades[0]?.state, { colour: "gold", note: "" });
    assert.equal(upgrades[0]?.route, "board");
    const headers = { authorization: "Bearer t" };
    const bad = await app.request("/board/r/messages", { method: "POST", body: JSON.stringify({ text: "" }), headers });
    assert.equal(bad.status, 400);
    const ok = await app.request("/board/r/messages", {
      method: "POST",
      body: JSON.stringify({ text: "news" }),
      headers,
    });
    assert.deepEqual(await ok.json(), { room: "r", seq: 1 });
  });

  it("serves the routes of a mounted edgewire under the user's prefix", async () => {
    const { Hono } = await import("hono");
    const { instance, edgewire, upgrades } = fakeApp({ edgewire: { routes } });
    const user = new Hono();
    let seen = "";
    user.use("*", async (c, next) => {
      seen = c.req.path;
      await next();
    });
    user.route("/rt", edgewire.app);
    const res = await instance.fetch(
      new Request("http://localhost/rt/board/x", {
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "13",
        },
      }),
      undefined,
      undefined,
      user,
    );
    assert.equal(res.headers.get("x-upgraded"), "1");
    assert.equal(seen, "/rt/board/x", "the user's middleware ran before the upgrade");
    assert.equal(upgrades[0]?.room, "x");
  });
});
