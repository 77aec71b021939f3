/**
 * The live inspector (EDGEWIRE_INSPECTOR=true) on Node, Deno and Bun: its API
 * refuses requests without the metrics token (and is absent when the
 * inspector is off), and in Chromium the page shows a room with its members
 * and rate, connections, refused handshakes and close codes as charts, and
 * the room's members and last messages when the room is clicked (a screenshot
 * per runtime in test-output/). A page without the token asks for it and says
 * when a token is refused.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext } from "playwright-core";
import { launchBrowser } from "../support/browser.ts";
import { type RunningServer, type RuntimeName, startServer } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";

const output = resolve(import.meta.dirname, "../../test-output");
const TOKEN = "inspector-test-token-0123456789";
const RUNTIMES = (process.env.EDGEWIRE_RUNTIMES?.split(",") ?? ["node", "deno", "bun"]).filter(
  (r) => r !== "workerd",
) as RuntimeName[];

/** The status a handshake from a foreign page gets (the origin policy: 403 before the upgrade). */
async function foreignHandshake(ws: string): Promise<number> {
  const socket = new TestSocket(`${ws}/echo`, undefined, { origin: "https://evil.example" });
  return socket.opened.then(
    async () => {
      await socket.close();
      return 101;
    },
    (e: { status?: number }) => e.status ?? 0,
  );
}

describe("live inspector", () => {
  mkdirSync(output, { recursive: true });
  let browser: BrowserContext | undefined;
  const servers = new Map<RuntimeName, RunningServer>();
  let plain: RunningServer | undefined;
  before(async () => {
    browser = await launchBrowser();
    const env = { EDGEWIRE_INSPECTOR: "true", EDGEWIRE_METRICS_TOKEN: TOKEN };
    await Promise.all(RUNTIMES.map(async (r) => servers.set(r, await startServer(r, env))));
    plain = await startServer("node");
  });
  after(async () => {
    await browser?.close();
    await Promise.all([...servers.values(), ...(plain ? [plain] : [])].map((s) => s.stop()));
  });

  it("is absent unless EDGEWIRE_INSPECTOR is on", async () => {
    const server = plain as RunningServer;
    for (const path of ["/inspector", "/inspector/", "/inspector/api/overview"]) {
      const res = await fetch(`${server.http}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 404, path);
    }
  });

  for (const runtime of RUNTIMES) {
    const server = () => servers.get(runtime) as RunningServer;

    it(`${runtime}: the API needs the metrics token; the page holds no data and runs under a strict CSP`, async () => {
      const api = `${server().http}/inspector/api/overview`;
      for (const authorization of [undefined, "Bearer wrong", `Bearer ${TOKEN}x`, TOKEN, "Basic x"]) {
        const res = await fetch(api, authorization ? { headers: { authorization } } : {});
        assert.equal(res.status, 401, String(authorization));
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, "unauthorized");
      }
      const ok = await fetch(api, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { runtime: string }).runtime, runtime);
      const room = await fetch(`${server().http}/inspector/api/rooms/echo/x`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(room.status, 404, "echo is not a room route");
      const redirect = await fetch(`${server().http}/inspector`, { redirect: "manual" });
      assert.equal(redirect.status, 308);
      const page = await fetch(`${server().http}/inspector/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
      assert.doesNotMatch(await page.text(), new RegExp(TOKEN));
    });

    it(`${runtime}: Chromium shows rooms, rates, connections, refusals and closes, and looks into a room`, async () => {
      const room = `inspect-${runtime}-${Date.now().toString(36)}`;
      const a = new TestSocket(`${server().ws}/rooms/${room}`, "edgewire.v1");
      const b = new TestSocket(`${server().ws}/rooms/${room}`, "edgewire.v1");
      const echo = new TestSocket(`${server().ws}/echo`);
      try {
        await withTimeout(Promise.all([a.opened, b.opened, echo.opened]), 10_000, "sockets");
        await a.until("welcome");
        await b.until("welcome");
        for (const text of ["first look", "second look", "third look"]) {
          a.sendJson({ type: "publish", data: { text } });
          await b.until("message");
        }
        assert.equal(await foreignHandshake(server().ws), 403);
        const closer = new TestSocket(`${server().ws}/echo`);
        await withTimeout(closer.opened, 10_000, "closer");
        await closer.close(4000, "done");

        const page = await (browser as BrowserContext).newPage();
        await page.goto(`${server().http}/inspector/#token=${TOKEN}`);
        // The token left the address bar (kept for this tab only).
        await page.waitForFunction(() => location.hash === "");
        const row = `#rooms tr.room[data-room="${room}"]`;
        await page.waitForSelector(row, { timeout: 20_000 });
        assert.equal(await page.textContent(`${row} td:nth-child(3)`), "2");
        await page.waitForFunction(
          () => Number(document.querySelector('[data-tile="connections"] b')?.textContent) >= 3,
        );
        const connections = (await page.textContent("#connections")) ?? "";
        assert.match(connections, /room/);
        assert.match(connections, /websocket/);
        assert.ok((await page.$$("#chart-messages polyline")).length === 2, "received and sent lines");
        // Fan-out frames count as sent (each member once): the "sent" line rises somewhere.
        const sentLine = await page.getAttribute('#chart-messages polyline[data-series="sent"]', "points");
        const ys = new Set((sentLine ?? "").split(" ").map((p) => p.split(",")[1]));
        assert.ok(ys.size > 1, `the sent line is flat: ${sentLine}`);
        // The room's frames/s counts what was fanned out since the last 5-s sample, so a sample taken
        // between the publishes above and the page's poll shows 0: publish until the page shows a rate.
        let extra = 0;
        for (; Number(await page.textContent(`${row} td:nth-child(4)`)) <= 0; extra++) {
          // (the room view below lists the last 20 messages, which must still hold the three above)
          assert.ok(extra < 15, "the room's frames/s never rose above 0");
          a.sendJson({ type: "publish", data: { text: `more ${extra}` } });
          await b.until("message");
          await new Promise((r) => setTimeout(r, 2500)); // the page polls every 2 s
        }
        await page.waitForFunction(() =>
          document.getElementById("legend-refused")?.textContent?.includes("origin_not_allowed"),
        );
        await page.waitForFunction(() => document.getElementById("legend-closes")?.textContent?.includes("4000"));
        assert.ok((await page.$$("#chart-connections polyline")).length >= 1);

        await page.click(row);
        await page.waitForSelector("#room-view:not([hidden])");
        await page.waitForFunction(() => document.querySelectorAll("#room-members tr").length === 3);
        const messages = (await page.textContent("#room-messages")) ?? "";
        for (const text of ["first look", "second look", "third look"]) assert.match(messages, new RegExp(text));
        assert.match((await page.textContent("#room-meta")) ?? "", new RegExp(`seq ${3 + extra} `));
        await page.screenshot({ path: resolve(output, `inspector-${runtime}.png`), fullPage: true });

        // Another tab has no token: it asks, and says when the one given is refused.
        const other = await (browser as BrowserContext).newPage();
        await other.goto(`${server().http}/inspector/`);
        await other.waitForSelector("#login:not([hidden])");
        await other.fill("#token", "not-the-token");
        await other.click("#login button");
        await other.waitForFunction(() => document.getElementById("error")?.textContent?.includes("refused"));
        await other.close();
        await page.close();
      } finally {
        await Promise.all([a.close(), b.close(), echo.close()]);
      }
    });
  }
});
