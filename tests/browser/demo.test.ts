/**
 * The demo page and the SDK in Chromium against every runtime: two pages chat
 * (a screenshot is written to test-output/), and a page without WebSocket falls
 * back to long-polling and chats with a WebSocket member of the same room.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { selectedRuntimes, withBrowserAndServers } from "../support/browser.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";

const output = resolve(import.meta.dirname, "../../test-output");

async function openDemo(browser: BrowserContext, url: string, init?: () => void): Promise<Page> {
  const page = await browser.newPage();
  if (init) await page.addInitScript(init);
  await page.goto(url);
  await page.waitForSelector('#state[data-state="open"]', { timeout: 20_000 });
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#text", text);
  await page.click("#send");
}

describe("demo page and SDK in Chromium", () => {
  mkdirSync(output, { recursive: true });
  const fixture = withBrowserAndServers();

  for (const runtime of selectedRuntimes) {
    it(`${runtime}: two pages chat in the demo room`, async () => {
      const server = fixture.server(runtime);
      const browser = fixture.browser();
      const room = `demo-${runtime}-${Date.now().toString(36)}`;
      const ada = await openDemo(browser, `${server.http}/?room=${room}&name=Ada&autojoin`);
      const bob = await openDemo(browser, `${server.http}/?room=${room}&name=Bob&autojoin`);
      await ada.waitForFunction(() => document.getElementById("count")?.textContent === "2");
      await say(ada, "hello from Ada");
      await bob.waitForSelector("#messages li:has-text('hello from Ada')");
      await say(bob, "hi Ada, Bob here");
      await ada.waitForSelector("#messages li:has-text('Bob here')");
      assert.equal(await ada.textContent("#transport"), "websocket");
      assert.match((await ada.textContent("#runtime")) ?? "", new RegExp(runtime === "workerd" ? "workerd" : runtime));
      // Both pages show one order: the same seq for the same text.
      const order = (p: Page) => p.$$eval("#messages li:not(.system)", (li) => li.map((l) => l.textContent));
      assert.deepEqual(await order(ada), await order(bob));
      await ada.screenshot({ path: resolve(output, `demo-${runtime}.png`), fullPage: true });
      await bob.close();
      await ada.waitForSelector("#messages li:has-text('Bob left')");
      await ada.close();
    });

    it(`${runtime}: without window.WebSocket the SDK falls back to long-polling`, async () => {
      const server = fixture.server(runtime);
      const browser = fixture.browser();
      const room = `fallback-${runtime}-${Date.now().toString(36)}`;
      const member = new TestSocket(`${server.ws}/rooms/${room}`, "edgewire.v1");
      await withTimeout(member.opened, 10_000, "websocket member");
      await member.until("welcome");
      const page = await openDemo(browser, `${server.http}/?room=${room}&name=Poller&autojoin`, () => {
        // A browser (or proxy setup) without WebSocket.
        delete (window as { WebSocket?: unknown }).WebSocket;
      });
      assert.equal(await page.textContent("#transport"), "polling");
      assert.equal(await page.evaluate(() => typeof WebSocket), "undefined");
      assert.equal((await member.until<{ event: string }>("presence")).event, "join");
      await say(page, "sent over long-polling");
      const heard = await member.until<{ data: { text: string } }>("message");
      assert.equal(heard.data.text, "sent over long-polling");
      member.sendJson({ type: "publish", data: { name: "Socket", text: "sent over a WebSocket" } });
      await page.waitForSelector("#messages li:has-text('sent over a WebSocket')");
      await page.screenshot({ path: resolve(output, `fallback-${runtime}.png`), fullPage: true });
      await page.close();
      await member.close();
    });
  }
});
