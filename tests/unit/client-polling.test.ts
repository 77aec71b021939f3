/**
 * The long-polling transport and the automatic fallback, against the fake
 * server's implementation of docs/protocol.md: no WebSocket constructor,
 * refused upgrades (400, 502), lost GET and POST responses, close codes both
 * ways, HTTP refusals, lost sessions, bufferedAmount until acknowledged.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import WebSocket from "ws";
import {
  EdgewireSocket,
  type EdgewireSocketOptions,
  pollUrl,
  type ReconnectingEvent,
  type TransportEvent,
} from "../../src/client/index.ts";
import { type FakeServer, nextEvent, recordEvents, startFakeServer, waitFor } from "../support/client-fakes.ts";

let server: FakeServer;
const sockets: EdgewireSocket[] = [];
const FAST = { minDelayMs: 10, maxDelayMs: 50, jitter: 0 };

function polling(path: string, protocols?: string | string[], options: EdgewireSocketOptions = {}): EdgewireSocket {
  const socket = new EdgewireSocket(`${server.ws}${path}`, protocols, {
    transport: "polling",
    reconnect: FAST,
    ...options,
  });
  sockets.push(socket);
  return socket;
}

function messages(socket: EdgewireSocket): unknown[] {
  const received: unknown[] = [];
  socket.addEventListener("message", (event) => received.push(event.data));
  return received;
}

before(async () => {
  server = await startFakeServer({ holdMs: 300 });
});
beforeEach(() => {
  server.hooks = {};
});
after(async () => {
  for (const s of sockets) s.close();
  await server.stop();
});

describe("pollUrl", () => {
  it("maps ws→http and wss→https, appends /poll, keeps the query", () => {
    assert.equal(pollUrl("ws://h:1/echo?token=a%20b").href, "http://h:1/echo/poll?token=a%20b");
    assert.equal(pollUrl("wss://h/rooms/lobby/").href, "https://h/rooms/lobby/poll");
  });
});

describe("automatic fallback to long-polling", () => {
  it("uses long-polling by itself when there is no WebSocket constructor", async () => {
    const socket = new EdgewireSocket(`${server.ws}/echo`, [], { WebSocket: null, reconnect: FAST });
    sockets.push(socket);
    const log = recordEvents(socket);
    assert.equal(socket.transport, "polling");
    await nextEvent(socket, "open");
    socket.binaryType = "arraybuffer";
    const received = messages(socket);
    socket.send("hello");
    socket.send(new Uint8Array([0, 255, 7]));
    await waitFor(() => received.length === 2);
    assert.equal(received[0], "hello");
    assert.deepEqual([...new Uint8Array(received[1] as ArrayBuffer)], [0, 255, 7]);
    assert.deepEqual(log.slice(0, 1), ["open"], "no transport event: it never changed");
    socket.close();
  });

  for (const status of [400, 502]) {
    it(`switches after upgrades answered ${status} twice, says so, and works`, async () => {
      server.hooks.refuseUpgrades = status;
      const upgrades = server.upgrades;
      const socket = new EdgewireSocket(`${server.ws}/echo`, "edgewire.v1", { WebSocket, reconnect: FAST });
      sockets.push(socket);
      const log = recordEvents(socket);
      assert.equal(socket.transport, "websocket");
      const switched = await nextEvent<TransportEvent>(socket, "transport");
      assert.deepEqual([switched.transport, switched.previous], ["polling", "websocket"]);
      assert.equal(socket.transport, "polling");
      await nextEvent(socket, "open");
      assert.equal(server.upgrades - upgrades, 2, "fallbackAfterFailures defaults to 2");
      assert.equal(socket.protocol, "edgewire.v1");
      const received = messages(socket);
      socket.send("through the proxy");
      await waitFor(() => received.length === 1);
      assert.deepEqual(log, ["reconnecting", "transport", "open", "message"]);
      socket.close();
    });
  }

  it("does not fall back once WebSocket has opened: a later outage is not a proxy problem", async () => {
    const socket = new EdgewireSocket(`${server.ws}/echo`, [], { WebSocket, reconnect: FAST });
    sockets.push(socket);
    await nextEvent(socket, "open");
    server.hooks.refuseUpgrades = 502;
    const retries: ReconnectingEvent[] = [];
    socket.addEventListener("reconnecting", (e) => retries.push(e));
    server.dropAll();
    await waitFor(() => retries.length >= 4);
    assert.equal(socket.transport, "websocket");
    server.hooks.refuseUpgrades = undefined;
    await nextEvent(socket, "open");
    socket.close();
  });

  it("transport: 'websocket' never falls back", async () => {
    server.hooks.refuseUpgrades = 400;
    const socket = new EdgewireSocket(`${server.ws}/echo`, [], {
      WebSocket,
      transport: "websocket",
      reconnect: { ...FAST, maxAttempts: 3 },
    });
    sockets.push(socket);
    const log = recordEvents(socket);
    await nextEvent(socket, "close");
    assert.ok(!log.includes("transport"));
    assert.equal(socket.transport, "websocket");
  });

  it("with reconnect off, one failed upgrade is enough to fall back", async () => {
    server.hooks.refuseUpgrades = 400;
    const socket = new EdgewireSocket(`${server.ws}/echo`, [], { WebSocket, reconnect: false });
    sockets.push(socket);
    await nextEvent(socket, "transport");
    await nextEvent(socket, "open");
    socket.close();
  });
});

describe("long-polling transport", () => {
  it("opens a session with the offered protocol and exchanges text and binary", async () => {
    const socket = polling("/echo", ["edgewire.v1", "other.v9"]);
    await nextEvent(socket, "open");
    assert.equal(server.protocolHeaders.at(-1), "edgewire.v1, other.v9");
    assert.equal(socket.protocol, "edgewire.v1");
    assert.equal(socket.extensions, "");
    const received = messages(socket);
    const big = new Uint8Array(70_000).map((_, i) => i % 251);
    socket.send("a");
    socket.send(big);
    socket.send("ü");
    await waitFor(() => received.length === 3);
    assert.equal(received[0], "a");
    assert.ok(received[1] instanceof Blob, "binaryType defaults to blob on every transport");
    assert.deepEqual(new Uint8Array(await (received[1] as Blob).arrayBuffer()), big);
    assert.equal(received[2], "ü");
    socket.close();
  });

  it("repeats a GET whose response was lost with the same cursor: nothing lost, nothing twice", async () => {
    let lost = 0;
    server.hooks.loseGet = (_sid, cursor) => {
      if (cursor > 0 || lost > 0) return false;
      lost += 1;
      return true;
    };
    const socket = polling("/echo");
    await nextEvent(socket, "open");
    const received = messages(socket);
    const log = recordEvents(socket);
    socket.send("one");
    socket.send("two");
    socket.send("three");
    await waitFor(() => received.length >= 3);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(received, ["one", "two", "three"]);
    assert.equal(lost, 1);
    const sid = server.gets.at(-1)?.sid;
    const cursors = server.gets.filter((g) => g.sid === sid).map((g) => g.cursor);
    assert.ok(cursors.filter((c) => c === 0).length >= 2, `cursor 0 asked again: ${cursors}`);
    assert.ok(!log.includes("reconnecting"), "a lost response is not a lost session");
    socket.close();
  });

  it("repeats a POST whose response was lost with the same n: the server handles it once", async () => {
    let lost = 0;
    server.hooks.losePost = (_sid, n) => {
      if (n !== 1 || lost > 0) return false;
      lost += 1;
      return true;
    };
    const socket = polling("/echo");
    await nextEvent(socket, "open");
    const received = messages(socket);
    socket.send("exactly once");
    socket.send("then me");
    await waitFor(() => received.length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(received, ["exactly once", "then me"]);
    const sid = server.posts.at(-1)?.sid;
    assert.deepEqual(
      server.posts.filter((p) => p.sid === sid).map((p) => p.n),
      [1, 1, 2],
    );
  });

  it("keeps bufferedAmount until the POST is acknowledged, and bounds it with maxQueueBytes", async () => {
    server.hooks.postDelayMs = 150;
    const socket = polling("/echo", [], { maxQueueBytes: 8 });
    await nextEvent(socket, "open");
    socket.send("hello");
    assert.equal(socket.bufferedAmount, 5);
    assert.throws(() => socket.send("6789"), { name: "QuotaExceededError" });
    socket.send("abc");
    assert.equal(socket.bufferedAmount, 8);
    await waitFor(() => socket.bufferedAmount === 0, 3_000, "POSTs acknowledged");
    socket.close();
  });

  it("client close(code, reason) → DELETE with them; the close event carries them", async () => {
    const socket = polling("/echo");
    await nextEvent(socket, "open");
    const sid = server.gets.at(-1)?.sid;
    const closed = nextEvent<CloseEvent>(socket, "close");
    socket.send("last words");
    socket.close(4001, "bye now & then");
    assert.equal(socket.readyState, EdgewireSocket.CLOSING);
    const event = await closed;
    assert.deepEqual([event.code, event.reason, event.wasClean], [4001, "bye now & then", true]);
    const seen = server.closes.at(-1);
    assert.deepEqual([seen?.transport, seen?.code, seen?.reason], ["polling", 4001, "bye now & then"]);
    assert.equal(server.received.at(-1)?.data, "last words", "sends are flushed before the DELETE");
    assert.ok(sid);
  });

  it("client close() without a code → the server sees no code (1005), as on a WebSocket", async () => {
    const socket = polling("/echo");
    await nextEvent(socket, "open");
    socket.close();
    const event = await nextEvent<CloseEvent>(socket, "close");
    assert.equal(event.code, 1005);
    assert.equal(server.closes.at(-1)?.code, 1005);
  });

  it("server close in a GET → close event with that code; 1008 does not reconnect", async () => {
    const socket = polling("/echo");
    const log = recordEvents(socket);
    await nextEvent(socket, "open");
    const sessions = server.sessions;
    const closed = nextEvent<CloseEvent>(socket, "close");
    for (const peer of server.peers) peer.close(1008, "policy");
    const event = await closed;
    assert.deepEqual([event.code, event.reason, event.wasClean], [1008, "policy", true]);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(server.sessions, sessions);
    assert.deepEqual(log, ["open", "close"]);
  });

  it("server close 1001 → reconnects with a new session", async () => {
    const socket = polling("/echo");
    await nextEvent(socket, "open");
    const sessions = server.sessions;
    const reconnecting = nextEvent<ReconnectingEvent>(socket, "reconnecting");
    for (const peer of server.peers) peer.close(1001, "shutting down");
    const event = await reconnecting;
    assert.deepEqual(
      [event.code, event.reason, event.dropped, event.transport],
      [1001, "shutting down", true, "polling"],
    );
    await nextEvent(socket, "open");
    assert.equal(server.sessions, sessions + 1);
    const received = messages(socket);
    socket.send("new session");
    await waitFor(() => received.length === 1);
    socket.close();
  });

  it("a session the server forgot (404) is a drop: reconnect with a new session", async () => {
    const socket = polling("/echo");
    await nextEvent(socket, "open");
    const reconnecting = nextEvent<ReconnectingEvent>(socket, "reconnecting");
    server.dropAll();
    const event = await reconnecting;
    assert.equal(event.code, 1006);
    assert.equal(event.dropped, true);
    await nextEvent(socket, "open");
    socket.close();
  });

  it("an HTTP 401 on the session open is final: close 4401, error first, no retry", async () => {
    server.hooks.refusePollOpen = 401;
    const socket = polling("/echo");
    const log = recordEvents(socket);
    const event = await nextEvent<CloseEvent>(socket, "close");
    assert.deepEqual([event.code, event.reason.split(":")[0], event.wasClean], [4401, "unauthorized", false]);
    assert.deepEqual(log, ["error", "close"]);
  });

  it("an HTTP 503 on the session open is retried with backoff", async () => {
    server.hooks.refusePollOpen = 503;
    const socket = polling("/echo");
    await nextEvent(socket, "reconnecting");
    server.hooks.refusePollOpen = undefined;
    await nextEvent(socket, "open");
    socket.close();
  });

  it("an unsupported protocol offer is refused before the session exists (4400)", async () => {
    const socket = polling("/echo", "nope.v0");
    const event = await nextEvent<CloseEvent>(socket, "close");
    assert.equal(event.code, 4400);
    assert.equal(event.reason, "unsupported_protocol: offer edgewire.v1");
  });

  it("passes an injected fetch and keeps the URL's query on every request", async () => {
    const seen: string[] = [];
    const socket = new EdgewireSocket(`${server.ws}/echo?token=t%201`, [], {
      transport: "polling",
      fetch: (input, init) => {
        seen.push(`${init.method} ${input}`);
        return fetch(input, init);
      },
    });
    sockets.push(socket);
    await nextEvent(socket, "open");
    socket.send("x");
    await nextEvent(socket, "message");
    socket.close(4000, "a b");
    await nextEvent(socket, "close");
    assert.ok(seen.length >= 4);
    for (const line of seen) assert.match(line, /token=t%201/);
    assert.ok(
      seen.some((l) => /^DELETE .*code=4000&reason=a%20b$/.test(l)),
      seen.join("\n"),
    );
  });
});
