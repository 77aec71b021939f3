/**
 * The auction example (examples/auction: room state, a view, refused bids) in Chromium on every
 * runtime: two bidders' pages show the same best bid from the room's view, a bid below the next
 * step is refused with the route's code, and the seller's close shows on both. Screenshots go to
 * test-output/.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { selectedRuntimes, withExamplePages } from "../support/browser.ts";

const output = resolve(import.meta.dirname, "../../test-output");

describe("auction example in Chromium", () => {
  mkdirSync(output, { recursive: true });
  const { server: serverOf, open } = withExamplePages("examples/auction/server.ts");

  for (const runtime of selectedRuntimes) {
    it(`${runtime}: two bidders see the view, a low bid is refused, the seller closes it`, async () => {
      const server = serverOf(runtime);
      const item = `lot-${runtime}-${Date.now().toString(36)}`;
      const ada = await open(`${server.http}/?item=${item}&name=ada`);
      const sam = await open(`${server.http}/?item=${item}&name=sam&role=seller`);
      await ada.fill("#amount", "20");
      await ada.click("button");
      await sam.waitForSelector("#best:has-text('20 by ada')");
      await sam.waitForSelector("#bidders:has-text('ada')");
      await sam.fill("#amount", "22");
      await sam.click("button");
      await sam.waitForSelector("#status:has-text('refused: bid_too_low')");
      await ada.waitForSelector("#bids:has-text('1')");
      await sam.evaluate(() =>
        (window as unknown as { room: { publish(d: unknown): Promise<unknown> } }).room.publish({ type: "close" }),
      );
      await ada.waitForSelector("#closed:has-text('closed')");
      const state = await ada.evaluate(() => (window as unknown as { room: { state: unknown } }).room.state);
      assert.deepEqual(state, { best: { amount: 20, bidder: "ada" }, bids: 1, closed: true });
      await ada.screenshot({ path: resolve(output, `auction-example-${runtime}.png`), fullPage: true });
      await Promise.all([ada.close(), sam.close()]);
    });
  }
});
