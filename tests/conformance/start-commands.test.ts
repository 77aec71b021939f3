/**
 * The documented start commands themselves (`npm start`, `bun run start`,
 * `deno task start`, `npm run dev:cf`) each serve /echo and /rooms/:room and
 * print the one line that says where they listen.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { freePort, WRANGLER_ENV } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";

const root = resolve(import.meta.dirname, "../..");
const bin = (name: string) => resolve(root, "node_modules/.bin", name);

// As typed in a terminal: `npm test` leaves npm_* variables that bun would
// inherit (its npm_config_user_agent would then claim npm).
const shellEnv = () => Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("npm_")));

const commands: { name: string; cmd: string; args: (port: number, inspector: number) => string[]; line: RegExp }[] = [
  {
    name: "npm start",
    cmd: "npm",
    args: () => ["start"],
    line: /edgewire \(node\) listening on http:\/\/127\.0\.0\.1:\d+/,
  },
  { name: "bun run start", cmd: bin("bun"), args: () => ["run", "start"], line: /edgewire \(bun\) listening/ },
  { name: "deno task start", cmd: bin("deno"), args: () => ["task", "start"], line: /edgewire \(deno\) listening/ },
  {
    name: "npm run dev:cf",
    cmd: "npm",
    args: (port, inspector) => ["run", "dev:cf", "--", "--port", String(port), "--inspector-port", String(inspector)],
    line: /Ready on http:\/\/127\.0\.0\.1:\d+/,
  },
];

describe("start commands", () => {
  for (const c of commands) {
    it(`${c.name} serves /echo and /rooms/:room`, { timeout: 90_000 }, async () => {
      const port = await freePort();
      const child = spawn(c.cmd, c.args(port, await freePort()), {
        cwd: root,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...shellEnv(), ...WRANGLER_ENV, DENO_NO_UPDATE_CHECK: "1", PORT: String(port) },
      });
      let output = "";
      const listening = new Promise<void>((ok, fail) => {
        const seen = (d: Buffer) => {
          output += d.toString();
          if (c.line.test(output)) ok();
        };
        child.stdout?.on("data", seen);
        child.stderr?.on("data", seen);
        child.once("exit", (code) => fail(new Error(`${c.name} exited (${code}):\n${output}`)));
      });
      try {
        await withTimeout(listening, 60_000, c.name);
        const echo = new TestSocket(`ws://127.0.0.1:${port}/echo`);
        await withTimeout(echo.opened, 10_000, "open /echo");
        echo.ws.send("ping");
        assert.equal((await echo.next()).data, "ping");
        await echo.close();
        const room = new TestSocket(`ws://127.0.0.1:${port}/rooms/start-check`, "edgewire.v1");
        assert.equal((await room.json()).type, "welcome");
        await room.close();
      } finally {
        const exited = new Promise((r) => (child.exitCode !== null ? r(0) : child.once("exit", r)));
        try {
          process.kill(-(child.pid as number), "SIGTERM");
        } catch {}
        await withTimeout(exited, 10_000, "stop").catch(() => {
          try {
            process.kill(-(child.pid as number), "SIGKILL");
          } catch {}
        });
      }
    });
  }
});
