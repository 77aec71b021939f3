/**
 * EdgewireSocket's WebSocket API surface against a fake echo server: constants,
 * properties, events and their order, every send() type, binaryType, and the
 * browser's validation of the constructor and close().
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { EdgewireSocket, type EdgewireSocketOptions } from "../../src/client/index.ts";
import { type FakeServer, nextEvent, startFakeServer, waitFor } from "../support/client-fakes.ts";

let server: FakeServer;
const sockets: EdgewireSocket[] = [];

function open(path: string, protocols?: string | string[], options: EdgewireSocketOptions = {}): EdgewireSocket {
  const socket = new EdgewireSocket(`${server.ws}${path}`, protocols, { WebSocket, ...options });
  sockets.push(socket);
  return socket;
}

/** the next message's data */
async function nextData(socket: EdgewireSocket): Promise<unknown> {
  return (await nextEvent<MessageEvent>(socket, "message")).data;
}

before(async () => {
  server = await startFakeServer();
});
after(async () => {
  for (const s of sockets) s.close();
  await server.stop();
});

describe("EdgewireSocket: the WebSocket API", () => {
  it("has the constants, static and on instances, and the initial properties", async () => {
    assert.deepEqual(
      [EdgewireSocket.CONNECTING, EdgewireSocket.OPEN, EdgewireSocket.CLOSING, EdgewireSocket.CLOSED],
      [0, 1, 2, 3],
    );
    const socket = open("/echo");
    assert.deepEqual([socket.CONNECTING, socket.OPEN, socket.CLOSING, socket.CLOSED], [0, 1, 2, 3]);
    assert.equal(socket.readyState, EdgewireSocket.CONNECTING);
    assert.equal(socket.url, `${server.ws}/echo`);
    assert.equal(socket.binaryType, "blob");
    assert.equal(socket.protocol, "");
    assert.equal(socket.extensions, "");
    assert.equal(socket.bufferedAmount, 0);
    assert.equal(socket.transport, "websocket");
    assert.ok(socket instanceof EventTarget);
    await nextEvent(socket, "open");
    assert.equal(socket.readyState, EdgewireSocket.OPEN);
    assert.equal(socket.protocol, "", "no protocol offered, none chosen");
  });

  it("runs the seed's snippet unchanged: onopen → send, onmessage, onclose, in that order", async () => {
    const socket = open("/echo", "edgewire.v1");
    const log: string[] = [];
    const closed = new Promise<CloseEvent>((resolve) => {
      socket.onopen = function (this: EdgewireSocket, event) {
        assert.equal(this, socket);
        assert.equal(event.type, "open");
        log.push("open");
        socket.send("Hello WebSockets!");
      };
      socket.onmessage = (event) => {
        log.push(`message:${event.data}`);
        socket.close();
      };
      socket.onerror = () => log.push("error");
      socket.onclose = (event) => {
        log.push("close");
        resolve(event);
      };
    });
    const event = await closed;
    assert.deepEqual(log, ["open", "message:Hello WebSockets!", "close"]);
    assert.equal(socket.protocol, "edgewire.v1");
    assert.equal(socket.readyState, EdgewireSocket.CLOSED);
    assert.equal(event.wasClean, true);
    assert.equal(event.code, 1005, "close() without a code: no status, as in browsers");
    assert.equal(event.target, socket);
  });

  it("calls on<event> handlers and listeners in registration order, and replacing a handler keeps its place", async () => {
    const socket = open("/echo");
    const log: string[] = [];
    socket.addEventListener("open", () => log.push("listener 1"));
    socket.onopen = () => log.push("handler A");
    socket.addEventListener("open", () => log.push("listener 2"));
    socket.onopen = () => log.push("handler B");
    await nextEvent(socket, "open");
    assert.deepEqual(log, ["listener 1", "handler B", "listener 2"]);
    socket.onopen = null;
    assert.equal(socket.onopen, null);
  });

  it("sends strings, ArrayBuffers, views (offset respected), DataViews and Blobs, in order", async () => {
    const socket = open("/echo");
    socket.binaryType = "arraybuffer";
    const received: unknown[] = [];
    socket.addEventListener("message", (event) => received.push(event.data));
    await nextEvent(socket, "open");
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]).buffer;
    socket.send("text é");
    socket.send(new Uint8Array([1, 2]).buffer);
    socket.send(new Uint8Array(backing, 2, 3));
    socket.send(new Blob([new Uint8Array([7, 7])])); // read asynchronously: later frames must wait
    socket.send(new DataView(backing, 1, 2));
    socket.send("after blob");
    await waitFor(() => received.length === 6, 5_000, "six echoes");
    const bytes = (data: unknown) => [...new Uint8Array(data as ArrayBuffer)];
    assert.equal(received[0], "text é");
    assert.deepEqual(bytes(received[1]), [1, 2]);
    assert.deepEqual(bytes(received[2]), [1, 2, 3]);
    assert.deepEqual(bytes(received[3]), [7, 7]);
    assert.deepEqual(bytes(received[4]), [9, 1]);
    assert.equal(received[5], "after blob");
    for (const i of [1, 2, 3, 4]) assert.ok(received[i] instanceof ArrayBuffer);
  });

  it("delivers binary as Blob by default, and as ArrayBuffer after binaryType = 'arraybuffer'", async () => {
    const socket = open("/echo");
    await nextEvent(socket, "open");
    socket.send(new Uint8Array([1, 2, 3]));
    const blob = await nextData(socket);
    assert.ok(blob instanceof Blob);
    assert.deepEqual([...new Uint8Array(await blob.arrayBuffer())], [1, 2, 3]);
    socket.binaryType = "arraybuffer";
    socket.send(new Uint8Array([4]));
    const buffer = await nextData(socket);
    assert.ok(buffer instanceof ArrayBuffer);
    socket.binaryType = "nonsense" as BinaryType;
    assert.equal(socket.binaryType, "arraybuffer", "values outside the enum are ignored, as in browsers");
  });

  it("snapshots bytes at send(): changing the buffer afterwards changes nothing", async () => {
    const socket = open("/echo");
    socket.binaryType = "arraybuffer";
    const bytes = new Uint8Array([1, 2, 3]);
    socket.send(bytes); // CONNECTING: queued
    bytes[0] = 99;
    const data = await nextData(socket);
    assert.deepEqual([...new Uint8Array(data as ArrayBuffer)], [1, 2, 3]);
  });

  it("validates close() like the browser: InvalidAccessError for codes, SyntaxError for long reasons", async () => {
    const socket = open("/echo");
    await nextEvent(socket, "open");
    for (const code of [0, 999, 1001, 1005, 1006, 2999, 5000, 1000.5]) {
      assert.throws(() => socket.close(code), { name: "InvalidAccessError" }, `code ${code}`);
    }
    assert.throws(() => socket.close(1000, "é".repeat(62)), { name: "SyntaxError" }, "124 UTF-8 bytes");
    assert.equal(socket.readyState, EdgewireSocket.OPEN, "a refused close() changes nothing");
    const closed = nextEvent<CloseEvent>(socket, "close");
    socket.close(4000, `${"é".repeat(61)}a`); // 123 bytes: allowed
    assert.equal(socket.readyState, EdgewireSocket.CLOSING);
    const event = await closed;
    assert.equal(event.code, 4000);
    assert.equal(event.reason, `${"é".repeat(61)}a`);
    assert.equal(event.wasClean, true);
    socket.close(); // already closed: nothing happens
    socket.send("dropped"); // discarded silently, as in browsers
    assert.equal(socket.readyState, EdgewireSocket.CLOSED);
  });

  it("the server sees the client's close code and reason", async () => {
    const socket = open("/echo");
    await nextEvent(socket, "open");
    const before = server.closes.length;
    socket.close(3001, "see you");
    await nextEvent(socket, "close");
    await waitFor(() => server.closes.length > before);
    const seen = server.closes.at(-1);
    assert.equal(seen?.code, 3001);
    assert.equal(seen?.reason, "see you");
  });

  it("validates the constructor like the browser: SyntaxError for bad URLs and protocols", () => {
    assert.throws(() => new EdgewireSocket("ftp://127.0.0.1/echo", [], { WebSocket }), { name: "SyntaxError" });
    assert.throws(() => new EdgewireSocket("not a url", [], { WebSocket }), { name: "SyntaxError" });
    assert.throws(() => new EdgewireSocket(`${server.ws}/echo#frag`, [], { WebSocket }), { name: "SyntaxError" });
    assert.throws(() => new EdgewireSocket(`${server.ws}/echo`, ["a", "a"], { WebSocket }), { name: "SyntaxError" });
    assert.throws(() => new EdgewireSocket(`${server.ws}/echo`, "two words", { WebSocket }), { name: "SyntaxError" });
    assert.throws(() => new EdgewireSocket(`${server.ws}/echo`, [], { WebSocket: null, transport: "websocket" }), {
      name: "NotSupportedError",
    });
  });

  it("accepts http(s) URLs and maps them to ws(s), as browsers now do", async () => {
    const mapped = new EdgewireSocket(`${server.http}/echo?x=1`, [], { WebSocket });
    sockets.push(mapped);
    assert.equal(mapped.url, `${server.ws}/echo?x=1`);
    await nextEvent(mapped, "open");
    mapped.send("ok");
    assert.equal(await nextData(mapped), "ok");
  });

  it("close() while CONNECTING ends at once with that code, no reconnect and no error event", async () => {
    const upgrades = server.upgrades;
    const socket = open("/echo");
    const log: string[] = [];
    socket.onopen = () => log.push("open");
    socket.onerror = () => log.push("error");
    socket.close(4002, "changed my mind");
    assert.equal(socket.readyState, EdgewireSocket.CLOSING);
    const event = await nextEvent<CloseEvent>(socket, "close");
    assert.deepEqual([event.code, event.reason, event.wasClean], [4002, "changed my mind", false]);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(log, []);
    assert.ok(server.upgrades <= upgrades + 1);
  });
});
