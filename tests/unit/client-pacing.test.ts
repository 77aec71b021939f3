/**
 * Handshake pacing (src/client/pacing.ts) with a hand-driven fake WebSocket: at
 * most N handshakes CONNECTING per host across every EdgewireSocket, the rest
 * started in order as slots free, hosts independent, and no slot leaked by a
 * close() while queued, a failed handshake or a connect timeout.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import {
  DEFAULT_MAX_HANDSHAKES_PER_HOST,
  EdgewireSocket,
  type EdgewireSocketOptions,
  maxHandshakesPerHost,
  type ReconnectingEvent,
  setMaxHandshakesPerHost,
} from "../../src/client/index.ts";
import { HandshakePacer, handshakePacer, hostKey } from "../../src/client/pacing.ts";
import { type FakeWebSocket, fakeWebSockets, nextEvent, waitFor } from "../support/client-fakes.ts";

const FAST = { minDelayMs: 10, maxDelayMs: 20, jitter: 0 };
const offline = () => Promise.reject(new TypeError("offline: the probe gets no answer"));
const sockets: EdgewireSocket[] = [];
const hostsUsed = new Set<string>();

function open(url: string, fake: ReturnType<typeof fakeWebSockets>, options: EdgewireSocketOptions = {}) {
  const socket = new EdgewireSocket(url, [], {
    WebSocket: fake.WebSocket,
    transport: "websocket",
    fetch: offline,
    reconnect: FAST,
    ...options,
  });
  sockets.push(socket);
  hostsUsed.add(hostKey(url));
  return socket;
}

const paths = (list: FakeWebSocket[]) => list.map((ws) => new URL(ws.url).pathname);
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await tick();
  // Every test ends with nothing held or queued: a leaked slot would stall the host for good.
  for (const host of hostsUsed) assert.deepEqual(handshakePacer.stats(host), { inFlight: 0, queued: 0 }, host);
  hostsUsed.clear();
});

describe("handshake pacing: EdgewireSocket", () => {
  it(`has ${DEFAULT_MAX_HANDSHAKES_PER_HOST} CONNECTING per host by default, and starts the others in order as slots free`, async () => {
    assert.equal(maxHandshakesPerHost(), 4);
    const fake = fakeWebSockets();
    const all = Array.from({ length: 10 }, (_, i) => open(`ws://one.test/r${i}`, fake));
    assert.deepEqual(paths(fake.created), ["/r0", "/r1", "/r2", "/r3"]);
    assert.deepEqual(handshakePacer.stats("ws://one.test"), { inFlight: 4, queued: 6 });
    fake.created[1]?.accept();
    assert.deepEqual(paths(fake.created), ["/r0", "/r1", "/r2", "/r3", "/r4"], "an open frees its slot at once");
    fake.created[0]?.accept();
    fake.created[2]?.accept();
    assert.deepEqual(paths(fake.connecting()), ["/r3", "/r4", "/r5", "/r6"]);
    while (fake.connecting().length > 0) {
      assert.ok(fake.connecting().length <= 4);
      fake.connecting()[0]?.accept();
    }
    assert.deepEqual(
      paths(fake.created),
      Array.from({ length: 10 }, (_, i) => `/r${i}`),
    );
    assert.ok(all.every((s) => s.readyState === EdgewireSocket.OPEN));
  });

  it("keeps hosts apart: scheme, host and port each make another host (a default port does not)", () => {
    const fake = fakeWebSockets();
    for (const url of ["ws://a.test/x", "ws://a.test:8080/x", "wss://a.test/x", "ws://b.test/x"]) {
      for (let i = 0; i < 6; i++) open(`${url}${i}`, fake, { maxHandshakesPerHost: 2 });
    }
    assert.equal(fake.created.length, 8, "2 for each of the 4 hosts");
    for (const host of ["ws://a.test", "ws://a.test:8080", "wss://a.test", "ws://b.test"]) {
      assert.deepEqual(handshakePacer.stats(host), { inFlight: 2, queued: 4 }, host);
    }
    assert.equal(hostKey("ws://a.test:80/x"), hostKey("ws://a.test/y"));
    assert.equal(hostKey("https://a.test/x").replace("https", "wss"), hostKey("wss://a.test:443/y"));
  });

  it("close() while queued leaves the queue: that socket never handshakes, the next one does", async () => {
    const fake = fakeWebSockets();
    const [, , queued, next] = [0, 1, 2, 3].map((i) =>
      open(`ws://close.test/r${i}`, fake, { maxHandshakesPerHost: 2 }),
    );
    assert.deepEqual(paths(fake.created), ["/r0", "/r1"]);
    const closed = nextEvent<CloseEvent>(queued as EdgewireSocket, "close");
    queued?.close(4000, "not needed");
    assert.deepEqual(handshakePacer.stats("ws://close.test"), { inFlight: 2, queued: 1 });
    assert.equal((await closed).code, 4000);
    fake.created[0]?.accept();
    assert.deepEqual(paths(fake.created), ["/r0", "/r1", "/r3"], "the closed socket was skipped");
    // close() of a socket still handshaking frees its slot too.
    next?.close();
    assert.ok(fake.created[2]?.closedByClient);
    assert.deepEqual(handshakePacer.stats("ws://close.test"), { inFlight: 1, queued: 0 });
    await tick();
    assert.equal(fake.created.length, 3, "nothing started after the close");
  });

  it("a failed handshake frees its slot at once; its retry queues behind the others", async () => {
    const fake = fakeWebSockets();
    const first = open("ws://fail.test/r0", fake, { maxHandshakesPerHost: 1 });
    open("ws://fail.test/r1", fake, { maxHandshakesPerHost: 1 });
    assert.deepEqual(paths(fake.created), ["/r0"]);
    const retry = nextEvent<ReconnectingEvent>(first, "reconnecting");
    fake.created[0]?.fail(1006);
    assert.deepEqual(paths(fake.created), ["/r0", "/r1"], "the next one started before the failure's probe answered");
    assert.equal((await retry).code, 1006);
    await new Promise((resolve) => setTimeout(resolve, 40)); // past the retry's 10 ms
    assert.equal(fake.created.length, 2, "the retry waits for r1's slot");
    assert.deepEqual(handshakePacer.stats("ws://fail.test"), { inFlight: 1, queued: 1 });
    fake.created[1]?.accept();
    assert.deepEqual(paths(fake.created), ["/r0", "/r1", "/r0"]);
    fake.created[2]?.accept();
    await waitFor(() => first.readyState === EdgewireSocket.OPEN, 1_000, "r0 open");
  });

  it("a connect timeout frees the slot, and counts from when the handshake starts, not from the queue", async () => {
    const fake = fakeWebSockets();
    const options = { maxHandshakesPerHost: 1, connectTimeoutMs: 150 };
    const stuck = open("ws://timeout.test/stuck", fake, options);
    const waiting = open("ws://timeout.test/waiting", fake, options);
    const retries: string[] = [];
    stuck.addEventListener("reconnecting", (e) => retries.push(`stuck: ${e.reason}`));
    waiting.addEventListener("reconnecting", (e) => retries.push(`waiting: ${e.reason}`));
    const started = Date.now();
    await waitFor(() => fake.created.length === 2, 2_000, "the queued handshake to start");
    assert.ok(Date.now() - started >= 140, "it started when the stuck one timed out");
    assert.deepEqual(paths(fake.created), ["/stuck", "/waiting"]);
    assert.deepEqual(retries, ["stuck: connect timeout"], "the queued one had not timed out while it waited");
    await new Promise((resolve) => setTimeout(resolve, 75)); // half its own timeout
    assert.equal(fake.created[1]?.readyState, 0, "still handshaking: its 150 ms began when it started");
    fake.created[1]?.accept();
    assert.equal(waiting.readyState, EdgewireSocket.OPEN);
    assert.deepEqual(retries, ["stuck: connect timeout"]);
  });

  it("paces a reconnect storm: every open socket dropped at once comes back N at a time", async () => {
    const fake = fakeWebSockets();
    const all = Array.from({ length: 8 }, (_, i) => open(`ws://storm.test/r${i}`, fake, { maxHandshakesPerHost: 3 }));
    while (fake.connecting().length > 0) fake.connecting()[0]?.accept();
    assert.ok(all.every((s) => s.readyState === EdgewireSocket.OPEN));
    const before = fake.created.length;
    for (const ws of fake.created.slice()) ws.fail(1012); // a server restart drops everyone
    await waitFor(() => fake.created.length > before, 1_000, "the first reconnects");
    await new Promise((resolve) => setTimeout(resolve, 40)); // every backoff (≤ 20 ms) has passed
    assert.equal(fake.connecting().length, 3);
    assert.deepEqual(handshakePacer.stats("ws://storm.test"), { inFlight: 3, queued: 5 });
    while (fake.connecting().length > 0) fake.connecting()[0]?.accept();
    assert.ok(all.every((s) => s.readyState === EdgewireSocket.OPEN));
  });

  it("Infinity turns pacing off; setMaxHandshakesPerHost sets the page's default for the next attempts", () => {
    const fake = fakeWebSockets();
    for (let i = 0; i < 6; i++) open(`ws://off.test/r${i}`, fake, { maxHandshakesPerHost: Number.POSITIVE_INFINITY });
    assert.equal(fake.created.length, 6);
    assert.deepEqual(handshakePacer.stats("ws://off.test"), { inFlight: 0, queued: 0 }, "unpaced: not counted");
    const previous = setMaxHandshakesPerHost(2);
    try {
      const paced = fakeWebSockets();
      for (let i = 0; i < 5; i++) open(`ws://page.test/r${i}`, paced);
      assert.equal(paced.created.length, 2);
    } finally {
      assert.equal(setMaxHandshakesPerHost(previous), 2);
    }
    assert.throws(() => setMaxHandshakesPerHost(Number.NaN), RangeError);
    assert.throws(() => open("ws://off.test/nan", fake, { maxHandshakesPerHost: Number.NaN }), RangeError);
  });

  it("does not pace long-polling: every session opens at once", async () => {
    let opens = 0;
    const fetch = (input: string | URL | Request, init?: RequestInit) => {
      if (init?.method === "POST" && String(input).endsWith("/poll")) opens += 1;
      // The server never answers; an abort rejects, as a real fetch's does.
      return new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new Error("aborted"))),
      );
    };
    for (let i = 0; i < 6; i++) {
      open(`ws://poll.test/r${i}`, fakeWebSockets(), { transport: "polling", fetch, maxHandshakesPerHost: 1 });
    }
    await waitFor(() => opens === 6, 1_000, "6 session opens");
    assert.deepEqual(handshakePacer.stats("ws://poll.test"), { inFlight: 0, queued: 0 });
  });
});

describe("handshake pacing: HandshakePacer", () => {
  it("is strictly FIFO per host, with each waiter's own limit; release is idempotent", () => {
    const pacer = new HandshakePacer();
    const log: string[] = [];
    const a = pacer.request("h", 2, () => log.push("a"));
    const b = pacer.request("h", 2, () => log.push("b"));
    const c = pacer.request("h", 1, () => log.push("c")); // waits until only 0 are in flight
    const d = pacer.request("h", 5, () => log.push("d")); // behind c, though its own limit would allow it
    assert.deepEqual(log, ["a", "b"]);
    a.release();
    a.release();
    assert.deepEqual(log, ["a", "b"], "c needs the host to itself");
    b.release();
    assert.deepEqual(log, ["a", "b", "c", "d"]);
    assert.deepEqual(pacer.stats("h"), { inFlight: 2, queued: 0 });
    c.release();
    d.release();
    assert.deepEqual(pacer.stats("h"), { inFlight: 0, queued: 0 });
  });

  it("survives a start that releases at once (a constructor that throws) and one that requests again", () => {
    const pacer = new HandshakePacer();
    const log: string[] = [];
    const held = pacer.request("h", 1, () => log.push("held"));
    pacer.request("h", 1, (ticket) => {
      log.push("throws");
      ticket.release();
    });
    let again: ReturnType<HandshakePacer["request"]> | undefined;
    pacer.request("h", 1, (ticket) => {
      log.push("requeues");
      ticket.release();
      again = pacer.request("h", 1, () => log.push("again"));
    });
    const last = pacer.request("h", 1, () => log.push("last"));
    held.release();
    assert.deepEqual(log, ["held", "throws", "requeues", "last"], "a request made again goes to the back");
    last.release();
    assert.deepEqual(log, ["held", "throws", "requeues", "last", "again"]);
    again?.release();
    assert.deepEqual(pacer.stats("h"), { inFlight: 0, queued: 0 });
  });
});
