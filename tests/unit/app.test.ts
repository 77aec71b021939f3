/** The app's routes through `app.request()`, with a fake runtime: no sockets. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hono } from "hono";
import * as v from "valibot";
import { defineRoom } from "../../src/core/route.ts";
import { negotiate } from "../../src/http/admission.ts";
import { builtinPaths } from "../../src/http/app.ts";
import { ClientError, createEdgewire, echo, rooms } from "../../src/index.ts";
import { BrokerUnavailableError } from "../../src/pubsub/broker.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { FakePeer, fakeApp, record, settle } from "../support/fakes.ts";

const ws = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-version": "13",
};

describe("app routes", () => {
  it("answers /healthz", async () => {
    const { app } = fakeApp();
    const res = await app.request("/healthz");
    assert.deepEqual(await res.json(), { ok: true, runtime: "fake" });
  });

  it("refuses a plain GET of a WebSocket route with 426", async () => {
    const { app, upgrades } = fakeApp();
    for (const path of ["/echo"]) {
      const res = await app.request(path);
      assert.equal(res.status, 426);
      assert.equal(res.headers.get("upgrade"), "websocket");
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "upgrade_required");
    }
    assert.equal(upgrades.length, 0);
  });

  it("answers unknown routes with a JSON 404", async () => {
    const { app } = fakeApp();
    const res = await app.request("/nope");
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "not_found");
  });

  it("hands an accepted upgrade to the runtime with a fresh record", async () => {
    const { app, upgrades } = fakeApp();
    const res = await app.request("/rooms/lobby", { headers: { ...ws, "sec-websocket-protocol": "x, edgewire.v1" } });
    assert.equal(res.headers.get("x-upgraded"), "1");
    assert.equal(upgrades.length, 1);
    assert.deepEqual(
      { ...upgrades[0], id: "", at: 0 },
      { v: 1, id: "", route: "room", room: "lobby", protocol: "edgewire.v1", seq: 0, at: 0 },
    );
  });

  it("refuses an unknown subprotocol before the upgrade", async () => {
    const { app, upgrades } = fakeApp();
    const res = await app.request("/echo", { headers: { ...ws, "sec-websocket-protocol": "mqtt" } });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "unsupported_protocol");
    assert.equal(upgrades.length, 0);
  });

  it("validates room names before upgrading", async () => {
    const { app, upgrades } = fakeApp();
    for (const name of ["a%20b", "x".repeat(65), "%F0%9F%8C%8D", "a:b"]) {
      const res = await app.request(`/rooms/${name}`, { headers: ws });
      assert.equal(res.status, 400, name);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "invalid_room");
    }
    assert.equal(upgrades.length, 0);
  });

  it("lists presence and the room's last seq", async () => {
    const { app, engine } = fakeApp();
    const peer = new FakePeer(record("room", "lobby"));
    engine.opened(peer);
    await settle();
    await engine.push("room", "lobby", { hello: 1 });
    const body = (await (await app.request("/rooms/lobby")).json()) as {
      count: number;
      seq: number;
      members: { id: string }[];
    };
    assert.equal(body.count, 1);
    assert.equal(body.seq, 1);
    assert.equal(body.members[0]?.id, peer.record.id);
  });

  it("publishes a backend push to members with the seq it replies", async () => {
    const { app, engine } = fakeApp({ pushToken: "t0k" });
    const peer = new FakePeer(record("room", "news"));
    engine.opened(peer);
    await settle();
    const res = await app.request("/rooms/news/messages", {
      method: "POST",
      body: JSON.stringify({ headline: "hi" }),
      headers: { authorization: "Bearer t0k" },
    });
    assert.deepEqual(await res.json(), { room: "news", seq: 1 });
    const message = peer.ofType<{ seq: number; from: string; data: unknown }>("message")[0];
    assert.deepEqual([message?.seq, message?.from, message?.data], [1, "server", { headline: "hi" }]);
  });

  it("refuses a push that is not JSON, too big, or unauthenticated", async () => {
    const { app } = fakeApp({ pushToken: "s3cret" });
    const auth = { authorization: "Bearer s3cret" };
    const bad = await app.request("/rooms/r/messages", { method: "POST", body: "{", headers: auth });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, "invalid_body");
    const big = await app.request("/rooms/r/messages", {
      method: "POST",
      body: JSON.stringify("x".repeat(1024 * 1024 + 1)),
      headers: auth,
    });
    assert.equal(big.status, 413);
    const anonymous = await app.request("/rooms/r/messages", { method: "POST", body: "1" });
    assert.equal(anonymous.status, 401);
    const wrong = await app.request("/rooms/r/messages", {
      method: "POST",
      body: "1",
      headers: { authorization: "Bearer nope" },
    });
    assert.equal(wrong.status, 401);
    const ok = await app.request("/rooms/r/messages", { method: "POST", body: "1", headers: auth });
    assert.equal(ok.status, 200);
  });
});

describe("backend push: idempotency keys", () => {
  const auth = { authorization: "Bearer k3y" };
  const pushWith = (app: ReturnType<typeof fakeApp>["app"], body: string, key?: string, room = "dash") =>
    app.request(`/rooms/${room}/messages`, {
      method: "POST",
      body,
      headers: { ...auth, ...(key === undefined ? {} : { "idempotency-key": key }) },
    });
  const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  it("a retry with the same key answers the first seq, marked repeated, and publishes nothing", async () => {
    const { app, engine } = fakeApp({ pushToken: "k3y" });
    const peer = new FakePeer(record("room", "dash"));
    engine.opened(peer);
    await settle();
    const first = await pushWith(app, '{"v":1}', "req-1");
    assert.deepEqual([first.status, first.headers.get("idempotent-replayed")], [200, null]);
    assert.deepEqual(await first.json(), { room: "dash", seq: 1 });
    const retry = await pushWith(app, '{ "v": 1 }', "req-1"); // spaced differently: the same data
    assert.deepEqual([retry.status, retry.headers.get("idempotent-replayed")], [200, "true"]);
    assert.deepEqual(await retry.json(), { room: "dash", seq: 1, repeated: true });
    assert.deepEqual(await (await pushWith(app, '{"v":1}', "req-2")).json(), { room: "dash", seq: 2 });
    assert.deepEqual(await (await pushWith(app, '{"v":1}')).json(), { room: "dash", seq: 3 }, "no key: no check");
    assert.deepEqual(await (await pushWith(app, '{"v":1}', "req-1", "other")).json(), { room: "other", seq: 1 });
    assert.equal(peer.ofType("message").length, 3);
  });

  it("refuses a key reused with other data (422) and a bad key (400), publishing nothing", async () => {
    const { app, engine } = fakeApp({ pushToken: "k3y" });
    await pushWith(app, "1", "k");
    const reused = await pushWith(app, "2", "k");
    assert.deepEqual([reused.status, await codeOf(reused)], [422, "idempotency_key_reused"]);
    for (const bad of ["", "x".repeat(256), "café", "tab\there"]) {
      const res = await pushWith(app, "1", bad);
      assert.deepEqual([res.status, await codeOf(res)], [400, "invalid_idempotency_key"], JSON.stringify(bad));
    }
    assert.equal((await pushWith(app, "1", "x".repeat(255))).status, 200, "255 characters is the bound");
    assert.equal((await pushWith(app, "1", ' ~!"#')).status, 200, "printable ASCII, space included");
    assert.equal((await engine.broker.snapshot(engine.ref("room", "dash"))).seq, 3);
  });

  it("a push the broker cannot store is 503 try_again_later, and a retry with its key then publishes", async () => {
    const { app, engine } = fakeApp({ pushToken: "k3y" });
    const broker = engine.broker as { publishKeyed: (...a: unknown[]) => unknown };
    const real = broker.publishKeyed.bind(broker);
    broker.publishKeyed = () => Promise.reject(new BrokerUnavailableError("redis: publish failed (down)"));
    const down = await pushWith(app, "1", "k");
    assert.deepEqual([down.status, await codeOf(down)], [503, "try_again_later"]);
    broker.publishKeyed = real;
    assert.deepEqual(await (await pushWith(app, "1", "k")).json(), { room: "dash", seq: 1 });
  });
});

describe("pushes through the route (a push handler)", () => {
  const auth = { authorization: "Bearer pu5h", "content-type": "application/json" };
  // A counter the backend raises; {by: 0} is refused with its own status, {by: -1} is the route's bug.
  const tally = defineRoom({
    path: "/tally/:room",
    schema: v.object({ by: v.number() }),
    roomState: v.object({ n: v.optional(v.number(), 0) }),
    push(ctx, { by }) {
      if (by === -1) throw new Error("the route's own bug");
      return ctx.room.transact((state) => {
        if (by === 0) throw new ClientError("nothing_to_add", "by must not be 0", { status: 409 });
        return { state: { n: state.n + by }, publish: [{ by }] };
      });
    },
  });
  const post = (app: ReturnType<typeof fakeApp>["app"], body: unknown) =>
    app.request("/tally/t/messages", { method: "POST", body: JSON.stringify(body), headers: auth });

  it("a refusal answers its own status and code, a fault a logged 500, a body the schema refuses 400 — and none changes the room", async () => {
    const logged: string[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (msg: string) => void logged.push(msg) };
    const { app, engine } = fakeApp({ pushToken: "pu5h", edgewire: { routes: [echo, rooms, tally], logger } });
    const ok = await post(app, { by: 2 });
    assert.deepEqual([ok.status, await ok.json()], [200, { room: "t", seq: 1 }]);
    const refused = await post(app, { by: 0 });
    assert.deepEqual(
      [refused.status, ((await refused.json()) as { error: { code: string } }).error.code],
      [409, "nothing_to_add"],
    );
    assert.deepEqual(logged, [], "a refusal is not a fault");
    const fault = await post(app, { by: -1 });
    assert.deepEqual(
      [fault.status, ((await fault.json()) as { error: { code: string } }).error.code],
      [500, "internal_error"],
    );
    assert.ok(
      logged.some((m) => /push/.test(m)),
      `the fault is logged: ${logged.join("; ")}`,
    );
    const bad = await post(app, { by: "two" });
    assert.equal(bad.status, 400, "checked against the route's schema before the handler");
    const head = await engine.broker.snapshot(engine.ref(tally.name, "t"));
    assert.equal(head.seq, 1, "only the accepted push took a seq");
    assert.deepEqual(await (await post(app, { by: 3 })).json(), { room: "t", seq: 2 });
    const after = await engine.broker.snapshot(engine.ref(tally.name, "t"));
    assert.equal(after.state, '{"n":5}', "2 + 3: nothing else counted");
    const history = await engine.broker.history(engine.ref(tally.name, "t"), 0, 10);
    assert.deepEqual(
      history.map((f) => ("data" in f ? f.data : null)),
      [{ by: 2 }, { by: 3 }],
    );
  });
});

describe("batch push (POST /messages)", () => {
  const auth = { authorization: "Bearer b4tch" };
  const board = defineRoom({ path: "/org/:org/board/:board", schema: v.object({ v: v.number() }) });
  const edgewire = { routes: [echo, rooms, board] };
  const post = (
    app: { request: (path: string, init?: RequestInit) => Promise<Response> },
    messages: unknown,
    path = "/messages",
  ) => app.request(path, { method: "POST", body: JSON.stringify({ messages }), headers: auth });

  it("publishes each room's messages in order, answers one result per message in the order sent, and refuses what it must per message", async () => {
    const { app, engine } = fakeApp({ pushToken: "b4tch", edgewire });
    const lobby = new FakePeer(record("room", "lobby"));
    const acme = new FakePeer(record("org/board", "acme/b1"));
    engine.opened(lobby);
    engine.opened(acme);
    await settle();
    const res = await post(app, [
      { to: "/rooms/lobby", data: 1 },
      { to: "/org/acme/board/b1", data: { v: 1 } },
      { to: "/org/acme/board/b1", data: { v: "x" } },
      { to: "/rooms/lobby", data: 2, key: "k" },
      { to: "/rooms/lobby/", data: 3 },
      { to: "/org/acme/board/b:1", data: { v: 2 } },
      { to: "/rooms/lobby", data: 3, key: "k" },
      { to: "/rooms/lobby", data: 9, key: "k" },
      { to: "/rooms/lobby", data: "x".repeat(1024 * 1024) },
      { to: "/rooms/lobby", data: 4 },
      { to: "/rooms/lobby" },
      "not a message",
    ]);
    assert.equal(res.status, 200);
    const { results } = (await res.json()) as { results: Record<string, unknown>[] };
    const codes = results.map((r) => (r.error as { code: string } | undefined)?.code ?? r);
    assert.deepEqual(codes, [
      { room: "lobby", seq: 1 },
      { room: "acme/b1", seq: 1 },
      "invalid_body",
      { room: "lobby", seq: 2 },
      "not_found",
      "invalid_room",
      "idempotency_key_reused", // the same key in one batch: the first one published
      "idempotency_key_reused",
      "message_too_large",
      { room: "lobby", seq: 3 },
      "invalid_body",
      "invalid_body",
    ]);
    assert.match(
      (results[5]?.error as { message: string } | undefined)?.message ?? "",
      /^board: /,
      "names the parameter",
    );
    assert.deepEqual(
      lobby.ofType<{ data: unknown }>("message").map((m) => m.data),
      [1, 2, 4],
    );
    assert.deepEqual(
      acme.ofType<{ data: unknown }>("message").map((m) => m.data),
      [{ v: 1 }],
    );
  });

  it("is one of edgewire's own endpoints (a user route cannot take it), unless turned off", async () => {
    assert.ok(builtinPaths({}).includes("/messages"));
    assert.ok(!builtinPaths({ batchPush: false }).includes("/messages"));
    const { app } = fakeApp({ pushToken: "b4tch", edgewire: { ...edgewire, batchPush: false } });
    assert.equal((await post(app, [{ to: "/rooms/lobby", data: 1 }])).status, 404);
  });

  it("mounted at a prefix, it moves with it, and `to` names rooms as clients join them (the route's own path works too)", async () => {
    const { instance } = fakeApp({ pushToken: "b4tch", edgewire });
    const mine = new Hono();
    mine.route("/realtime", instance.edgewire.app);
    const app = {
      request: (path: string, init?: RequestInit) =>
        instance.fetch(new Request(new URL(path, "http://localhost"), init), undefined, undefined, mine),
    };
    const res = await post(
      app,
      [
        { to: "/realtime/rooms/lobby", data: 1 },
        { to: "/rooms/lobby", data: 2 },
      ],
      "/realtime/messages",
    );
    assert.deepEqual(((await res.json()) as { results: unknown[] }).results, [
      { room: "lobby", seq: 1 },
      { room: "lobby", seq: 2 },
    ]);
    assert.equal((await post(app, [{ to: "/rooms/lobby", data: 3 }])).status, 404, "not at the root any more");
  });

  it("refuses the whole request without a credential (401), over its bounds (413 batch_too_large) or in another shape (400)", async () => {
    const { app } = fakeApp({
      pushToken: "b4tch",
      edgewire,
      env: { EDGEWIRE_PUSH_BATCH_MAX_MESSAGES: "2", EDGEWIRE_PUSH_BATCH_MAX_BYTES: "2048" },
    });
    const code = async (res: Response) => [res.status, ((await res.json()) as { error: { code: string } }).error.code];
    const one = [{ to: "/rooms/lobby", data: 1 }];
    assert.deepEqual(
      await code(await app.request("/messages", { method: "POST", body: JSON.stringify({ messages: one }) })),
      [401, "unauthorized"],
    );
    assert.deepEqual(await code(await post(app, [...one, ...one, ...one])), [413, "batch_too_large"]);
    assert.deepEqual(await code(await post(app, [{ to: "/rooms/lobby", data: "x".repeat(2048) }])), [
      413,
      "batch_too_large",
    ]);
    for (const body of ["{", "[]", '{"messages":[]}', '{"messages":[],"extra":1}'])
      assert.deepEqual(
        await code(await app.request("/messages", { method: "POST", body, headers: auth })),
        [400, "invalid_body"],
        body,
      );
  });
});

describe("negotiate", () => {
  it("picks edgewire.v1 from an offer, accepts none, refuses others", () => {
    assert.equal(negotiate(undefined), "");
    assert.equal(negotiate(""), "");
    assert.equal(negotiate("edgewire.v1"), "edgewire.v1");
    assert.equal(negotiate("a,edgewire.v1"), "edgewire.v1");
    assert.equal(negotiate("a, b"), null);
  });
});

describe("instance lifecycle", () => {
  it("a request that did not come through an adapter fails loudly: 500, logged, never served by another instance", async () => {
    const { edgewire } = fakeApp();
    const logged: unknown[] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      const res = await edgewire.app.request("/healthz");
      assert.equal(res.status, 500);
    } finally {
      console.error = error;
    }
    assert.match(String((logged[0] as unknown[])?.[1]), /did not come through an adapter/);
  });

  it("constructing an instance starts nothing; start() connects the broker and serves the fleet's requests", async () => {
    const calls: string[] = [];
    const broker = new MemoryBroker();
    Object.assign(broker, {
      start: async () => void calls.push("start"),
      fleet: {
        instanceId: "i1",
        request: async () => undefined,
        serveRequests: () => void calls.push("serveRequests"),
      },
    });
    const edgewire = createEdgewire({ routes: [echo, rooms] });
    const instance = edgewire.assemble({
      runtime: { name: "fake", upgrade: () => new Response(null) },
      broker: () => broker,
    });
    assert.deepEqual(calls, [], "nothing until start()");
    assert.equal(instance.fleetId, "i1");
    await instance.start();
    await instance.start();
    assert.deepEqual(calls, ["start", "serveRequests"], "once");
    instance.engine.stopHeartbeat();
  });
});
