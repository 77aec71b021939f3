/**
 * Headless Chromium for browser tests: Debian's chromium driven by
 * playwright-core (`npx playwright install` cannot download here). The flags
 * keep it off the network it cannot reach anyway.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { RUNTIMES, type RunningServer, type RuntimeName, startModule, startServer } from "./servers.ts";

/** Where Debian installs chromium (scripts/ensure-system.sh). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** A fresh browser profile in a temporary directory; `extraArgs` add flags (e.g. a trusted certificate). */
export async function launchBrowser(extraArgs: string[] = []): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), "edgewire-chromium-"));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
}

/** The runtimes a browser test file covers (`EDGEWIRE_RUNTIMES=node,bun` narrows them). */
export const selectedRuntimes = (process.env.EDGEWIRE_RUNTIMES?.split(",") ?? [...RUNTIMES]) as RuntimeName[];

/**
 * Inside a describe(): one browser and one server per selected runtime for the
 * whole block, started before and stopped after it.
 */
export function withBrowserAndServers(
  start: (runtime: RuntimeName) => Promise<RunningServer> = (r) => startServer(r),
): { browser(): BrowserContext; server(runtime: RuntimeName): RunningServer } {
  let browser: BrowserContext | undefined;
  const servers = new Map<RuntimeName, RunningServer>();
  before(async () => {
    browser = await launchBrowser();
    await Promise.all(selectedRuntimes.map(async (r) => servers.set(r, await start(r))));
  });
  after(async () => {
    await browser?.close();
    await Promise.all([...servers.values()].map((s) => s.stop()));
  });
  return {
    browser: () => browser as BrowserContext,
    server: (runtime) => servers.get(runtime) as RunningServer,
  };
}

/**
 * Inside a describe(): an example (`entry`, serving its page at `/` with `window.room`) on every
 * selected runtime, and `open(url)`, which loads a page and waits until its room has joined.
 */
export function withExamplePages(entry: string) {
  const both = withBrowserAndServers((r) => startModule(r, { entry }));
  const open = async (url: string): Promise<Page> => {
    const page = await both.browser().newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as { room?: { id?: string } }).room?.id !== undefined, undefined, {
      timeout: 20_000,
    });
    return page;
  };
  return { server: both.server, open };
}
