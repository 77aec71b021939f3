/**
 * The browser's own WebSocket, as a page would write it, against the real
 * server under every runtime: open → send → message → close.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectedRuntimes, withBrowserAndServers } from "../support/browser.ts";

describe("browser WebSocket against every runtime", () => {
  const fixture = withBrowserAndServers();

  for (const runtime of selectedRuntimes) {
    it(`${runtime}: the plain snippet echoes and closes`, async () => {
      const server = fixture.server(runtime);
      const page = await fixture.browser().newPage();
      await page.goto(`${server.http}/healthz`);
      const result = await page.evaluate(
        (url) =>
          new Promise<{ events: string[]; echoed: unknown; code: number; readyState: number }>((resolve) => {
            const events: string[] = [];
            let echoed: unknown;
            const socket = new WebSocket(url);
            socket.onopen = () => {
              events.push("open");
              socket.send("Hello, edgewire!");
            };
            socket.onmessage = (event) => {
              events.push("message");
              echoed = event.data;
              socket.close();
            };
            socket.onerror = () => events.push("error");
            socket.onclose = (event) => {
              events.push("close");
              resolve({ events, echoed, code: event.code, readyState: socket.readyState });
            };
          }),
        `${server.ws}/echo`,
      );
      assert.deepEqual(result.events, ["open", "message", "close"]);
      assert.equal(result.echoed, "Hello, edgewire!");
      assert.equal(result.readyState, 3);
      assert.ok([1000, 1005].includes(result.code), `clean close, got ${result.code}`);
      await page.close();
    });

    it(`${runtime}: binary comes back byte-exact as an ArrayBuffer`, async () => {
      const server = fixture.server(runtime);
      const page = await fixture.browser().newPage();
      await page.goto(`${server.http}/healthz`);
      const bytes = await page.evaluate(
        (url) =>
          new Promise<number[]>((resolve, reject) => {
            const socket = new WebSocket(url);
            socket.binaryType = "arraybuffer";
            socket.onopen = () => socket.send(new Uint8Array([0, 1, 2, 253, 254, 255]));
            socket.onmessage = (event) => {
              resolve([...new Uint8Array(event.data as ArrayBuffer)]);
              socket.close();
            };
            socket.onerror = () => reject(new Error("socket error"));
          }),
        `${server.ws}/echo`,
      );
      assert.deepEqual(bytes, [0, 1, 2, 253, 254, 255]);
      await page.close();
    });
  }
});
