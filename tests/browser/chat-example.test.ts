/**
 * The chat example (examples/chat: a user's typed room route, its page and the
 * browser SDK) in Chromium on every runtime: two pages chat — one in
 * MessagePack, one in JSON — one sees the other typing, and both show the same order. Screenshots go to test-output/.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import type { Page } from "playwright-core";
import { selectedRuntimes, withExamplePages } from "../support/browser.ts";

const output = resolve(import.meta.dirname, "../../test-output");

describe("chat example in Chromium", () => {
  mkdirSync(output, { recursive: true });
  const { server: serverOf, open } = withExamplePages("examples/chat/server.ts");

  for (const runtime of selectedRuntimes) {
    it(`${runtime}: two pages chat with names, typing and one order, one of them in MessagePack`, async () => {
      const server = serverOf(runtime);
      const room = `chat-${runtime}-${Date.now().toString(36)}`;
      // ada's page speaks MessagePack, bob's JSON: one room, one order.
      const ada = await open(`${server.http}/?room=${room}&name=ada&codec=msgpack`);
      const bob = await open(`${server.http}/?room=${room}&name=bob`);
      const protocol = (p: Page) =>
        p.evaluate(() => (window as { room?: { socket: { protocol: string } } }).room?.socket.protocol);
      assert.deepEqual([await protocol(ada), await protocol(bob)], ["edgewire.v1+msgpack", "edgewire.v1"]);
      await ada.fill("#text", "hel");
      await ada.dispatchEvent("#text", "input");
      await bob.waitForSelector("#typing:has-text('ada is typing')");
      await ada.fill("#text", "hello from ada");
      await ada.click("button");
      await bob.waitForSelector("#log p:has-text('ada: hello from ada')");
      await bob.fill("#text", "hi ada");
      await bob.click("button");
      await ada.waitForSelector("#log p:has-text('bob: hi ada')");
      const lines = (p: Page) => p.$$eval("#log p", (ps) => ps.map((e) => e.textContent));
      assert.deepEqual(await lines(ada), await lines(bob));
      assert.deepEqual(await lines(ada), ["#1 ada: hello from ada", "#2 bob: hi ada"]);
      await bob.screenshot({ path: resolve(output, `chat-example-${runtime}.png`), fullPage: true });
      await Promise.all([ada.close(), bob.close()]);
    });
  }
});
