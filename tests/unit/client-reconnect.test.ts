/**
 * EdgewireSocket's reconnect model and send queue: backoff (small delays),
 * OPEN → CONNECTING → OPEN on a drop, close codes that stop reconnecting, the
 * bounded queue and an honest bufferedAmount.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import {
  backoffDelay,
  EdgewireSocket,
  type EdgewireSocketOptions,
  isTerminalCloseCode,
  type ReconnectingEvent,
  reconnectHint,
  reconnectPolicy,
} from "../../src/client/index.ts";
import {
  closedPort,
  type FakeServer,
  nextEvent,
  recordEvents,
  startFakeServer,
  waitFor,
} from "../support/client-fakes.ts";

let server: FakeServer;
const sockets: EdgewireSocket[] = [];
const FAST = { minDelayMs: 10, maxDelayMs: 50, jitter: 0 };

function open(url: string, options: EdgewireSocketOptions = {}): EdgewireSocket {
  const socket = new EdgewireSocket(url, [], { WebSocket, reconnect: FAST, ...options });
  sockets.push(socket);
  return socket;
}

before(async () => {
  server = await startFakeServer();
});
after(async () => {
  for (const s of sockets) s.close();
  await server.stop();
});

describe("reconnect policy", () => {
  it("grows exponentially, caps at maxDelayMs and subtracts at most `jitter` of the delay", () => {
    const policy = reconnectPolicy({ minDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(policy, n)),
      [100, 200, 400, 800, 1000, 1000],
    );
    const jittery = reconnectPolicy({ minDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 });
    assert.equal(
      backoffDelay(jittery, 2, () => 0),
      200,
    );
    assert.equal(
      backoffDelay(jittery, 2, () => 0.999999),
      100,
    );
    assert.equal(reconnectPolicy(false).enabled, false);
  });

  it("treats policy, protocol, data and auth codes as terminal, drops and overload as retryable", () => {
    for (const code of [1000, 1002, 1003, 1007, 1008, 4400, 4401, 4403, 4404])
      assert.ok(isTerminalCloseCode(code), `${code}`);
    for (const code of [1001, 1005, 1006, 1009, 1011, 1012, 1013, 4000, 4500])
      assert.ok(!isTerminalCloseCode(code), `${code}`);
  });
});

describe("EdgewireSocket: reconnect", () => {
  it("retries a server that is down with growing delays, then gives up with error + close", async () => {
    const port = await closedPort();
    const socket = open(`ws://127.0.0.1:${port}/echo`, {
      transport: "websocket",
      reconnect: { minDelayMs: 20, factor: 2, jitter: 0, maxAttempts: 3 },
    });
    const log = recordEvents(socket);
    const retries: ReconnectingEvent[] = [];
    socket.addEventListener("reconnecting", (event) => {
      retries.push(event);
      assert.equal(socket.readyState, EdgewireSocket.CONNECTING);
    });
    const started = Date.now();
    const closed = await nextEvent<CloseEvent>(socket, "close");
    assert.ok(Date.now() - started >= 20 + 40 + 80 - 5, "the delays were waited");
    assert.deepEqual(
      retries.map((e) => [e.attempt, e.delayMs, e.code, e.dropped]),
      [
        [1, 20, 1006, false],
        [2, 40, 1006, false],
        [3, 80, 1006, false],
      ],
    );
    assert.deepEqual(log, ["reconnecting", "reconnecting", "reconnecting", "error", "close"]);
    assert.equal(closed.code, 1006);
    assert.equal(closed.wasClean, false);
    assert.equal(socket.readyState, EdgewireSocket.CLOSED);
  });

  it("a dropped connection goes OPEN → CONNECTING → OPEN with a `reconnecting` event and no `close`", async () => {
    const socket = open(`${server.ws}/echo`);
    const log = recordEvents(socket);
    await nextEvent(socket, "open");
    const upgrades = server.upgrades;
    const reconnecting = nextEvent<ReconnectingEvent>(socket, "reconnecting");
    server.dropAll();
    const event = await reconnecting;
    assert.equal(socket.readyState, EdgewireSocket.CONNECTING);
    assert.deepEqual([event.attempt, event.code, event.dropped, event.wasClean], [1, 1006, true, false]);
    await nextEvent(socket, "open");
    assert.equal(socket.readyState, EdgewireSocket.OPEN);
    assert.equal(server.upgrades, upgrades + 1);
    socket.send("still here");
    assert.equal((await nextEvent<MessageEvent>(socket, "message")).data, "still here");
    assert.deepEqual(log, ["open", "reconnecting", "open", "message"]);
  });

  for (const [code, reason] of [
    [1001, "going away"],
    [1011, "internal_error"],
    [1013, "try again later"],
  ] as const) {
    it(`reconnects after the server closes with ${code}`, async () => {
      const socket = open(`${server.ws}/echo`);
      await nextEvent(socket, "open");
      const reconnecting = nextEvent<ReconnectingEvent>(socket, "reconnecting");
      for (const peer of server.peers) peer.close(code, reason);
      const event = await reconnecting;
      assert.deepEqual([event.code, event.reason, event.wasClean, event.dropped], [code, reason, true, true]);
      await nextEvent(socket, "open");
    });
  }

  for (const [code, reason] of [
    [1008, "policy"],
    [1000, "bye"],
    [1002, "protocol"],
    [1003, "unsupported"],
    [1007, "invalid data"],
    [4401, "unauthorized"],
    [4403, "forbidden"],
  ] as const) {
    it(`does not reconnect after the server closes with ${code}`, async () => {
      const socket = open(`${server.ws}/echo`);
      const log = recordEvents(socket);
      await nextEvent(socket, "open");
      const upgrades = server.upgrades;
      const closed = nextEvent<CloseEvent>(socket, "close");
      for (const peer of server.peers) peer.close(code, reason);
      const event = await closed;
      assert.deepEqual([event.code, event.reason, event.wasClean], [code, reason, true]);
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(server.upgrades, upgrades, "no new connection attempt");
      assert.deepEqual(log, ["open", "close"], "a clean close has no error event");
      assert.equal(socket.readyState, EdgewireSocket.CLOSED);
    });
  }

  it("after 1012 (service restart) waits the server's hint before the first retry", async () => {
    const socket = open(`${server.ws}/echo`);
    await nextEvent(socket, "open");
    const reconnecting = nextEvent<ReconnectingEvent>(socket, "reconnecting");
    for (const peer of server.peers) peer.close(1012, "service restart: reconnect in 150 ms");
    const event = await reconnecting;
    assert.deepEqual([event.code, event.delayMs], [1012, 150], "the hint, not the backoff");
    await nextEvent(socket, "open");
    assert.equal(reconnectHint(1012, "service restart: reconnect in 99999 ms"), 60_000, "hints are capped");
    assert.equal(reconnectHint(1011, "reconnect in 5 ms"), undefined, "only restarts carry hints");
    socket.close();
  });

  it("heartbeat: pings when quiet, and drops a connection that answers nothing for two intervals", async () => {
    const socket = open(`${server.ws}/rooms/hb`, { heartbeat: { intervalMs: 120 } });
    await nextEvent(socket, "open");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(socket.readyState, EdgewireSocket.OPEN, "pongs keep it alive");
    assert.ok(
      server.received.some((f) => f.data === '{"type":"ping"}'),
      "it pinged",
    );
    server.hooks.silent = true;
    try {
      const event = await nextEvent<ReconnectingEvent>(socket, "reconnecting", 2000);
      assert.deepEqual([event.code, event.reason, event.dropped], [1006, "heartbeat timeout", true]);
    } finally {
      server.hooks.silent = false;
    }
    await nextEvent(socket, "open");
    socket.close();
  });

  it("does not reconnect after a deliberate close()", async () => {
    const socket = open(`${server.ws}/echo`);
    await nextEvent(socket, "open");
    const upgrades = server.upgrades;
    socket.close(1000, "done");
    const event = await nextEvent<CloseEvent>(socket, "close");
    assert.equal(event.code, 1000);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(server.upgrades, upgrades);
  });

  it("close() from a `reconnecting` listener stops the reconnect", async () => {
    const socket = open(`${server.ws}/echo`);
    await nextEvent(socket, "open");
    const upgrades = server.upgrades;
    socket.addEventListener("reconnecting", () => socket.close(4000, "enough"));
    server.dropAll();
    const event = await nextEvent<CloseEvent>(socket, "close");
    assert.deepEqual([event.code, event.reason], [4000, "enough"]);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(server.upgrades, upgrades);
  });

  it("honours shouldReconnect and reconnect: false", async () => {
    const custom = open(`${server.ws}/echo`, { reconnect: { ...FAST, shouldReconnect: (code) => code !== 4000 } });
    await nextEvent(custom, "open");
    const closed = nextEvent<CloseEvent>(custom, "close");
    for (const peer of server.peers) peer.close(4000, "app says stop");
    assert.equal((await closed).code, 4000);

    const never = open(`${server.ws}/echo`, { reconnect: false });
    await nextEvent(never, "open");
    const log = recordEvents(never);
    server.dropAll();
    const event = await nextEvent<CloseEvent>(never, "close");
    assert.equal(event.code, 1006);
    assert.deepEqual(log, ["error", "close"]);
  });
});

describe("EdgewireSocket: send queue and bufferedAmount", () => {
  it("queues sends while CONNECTING, counts them in bufferedAmount, and sends them in order on open", async () => {
    const socket = open(`${server.ws}/echo`);
    const received: unknown[] = [];
    socket.addEventListener("message", (event) => received.push(event.data));
    socket.send("one");
    socket.send("δύο"); // 6 UTF-8 bytes
    socket.send(new Uint8Array(10));
    assert.equal(socket.bufferedAmount, 3 + 6 + 10);
    await waitFor(() => received.length === 3);
    assert.equal(received[0], "one");
    assert.equal(received[1], "δύο");
    assert.equal(socket.bufferedAmount, 0);
  });

  it("refuses a frame that would pass maxQueueBytes with QuotaExceededError, keeping the queue as it was", async () => {
    const socket = open(`${server.ws}/echo`, { maxQueueBytes: 10 });
    socket.send("12345678");
    assert.throws(() => socket.send("abc"), { name: "QuotaExceededError" });
    assert.equal(socket.bufferedAmount, 8);
    socket.send("90"); // exactly at the bound
    assert.equal(socket.bufferedAmount, 10);
    const received: unknown[] = [];
    socket.addEventListener("message", (event) => received.push(event.data));
    await waitFor(() => received.length === 2);
    assert.deepEqual(received, ["12345678", "90"]);
    // Once OPEN on a WebSocket the socket's own buffer takes frames, as a browser's would.
    socket.send("x".repeat(100));
    await waitFor(() => received.length === 3);
  });

  it("queues sends made while reconnecting and delivers them after the new open; what the dropped connection held is gone", async () => {
    const socket = open(`${server.ws}/echo`);
    await nextEvent(socket, "open");
    const received: unknown[] = [];
    socket.addEventListener("message", (event) => received.push(event.data));
    const reconnecting = nextEvent(socket, "reconnecting");
    server.dropAll();
    await reconnecting;
    socket.send("sent while reconnecting");
    assert.equal(socket.bufferedAmount, "sent while reconnecting".length);
    await nextEvent(socket, "open");
    await waitFor(() => received.length === 1);
    assert.deepEqual(received, ["sent while reconnecting"]);
    assert.equal(socket.bufferedAmount, 0);
  });

  it("drops the queue on a deliberate close while CONNECTING", async () => {
    const port = await closedPort();
    const socket = open(`ws://127.0.0.1:${port}/echo`, { transport: "websocket" });
    socket.send("never sent");
    socket.close();
    await nextEvent(socket, "close");
    assert.equal(socket.bufferedAmount, 0);
  });

  it("counts a connect that never answers as a failed attempt (connectTimeoutMs)", async () => {
    // A TCP listener that accepts and never speaks: the upgrade hangs.
    const { createServer } = await import("node:net");
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    try {
      const socket = open(`ws://127.0.0.1:${port}/echo`, {
        transport: "websocket",
        connectTimeoutMs: 50,
        reconnect: { ...FAST, maxAttempts: 1 },
      });
      const log = recordEvents(socket);
      const event = await nextEvent<CloseEvent>(socket, "close", 3_000);
      assert.equal(event.code, 1006);
      assert.deepEqual(log, ["reconnecting", "error", "close"]);
    } finally {
      silent.close();
    }
  });
});
