/**
 * wss:// with no proxy: Node, Deno and Bun serve TLS themselves when
 * EDGEWIRE_TLS_CERT/KEY name a certificate and key. A self-signed certificate
 * is made with openssl for 127.0.0.1; the SDK (on `ws`, trusting it as a CA)
 * and Chromium (trusting its public key) run echo and a room over wss://,
 * and a client that does not trust it is refused by TLS itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { BrowserContext } from "playwright-core";
import WebSocket from "ws";
import { EdgewireSocket, joinRoom } from "../../src/client/index.ts";
import { SERVICE_ENV } from "../conformance/cases.ts";
import { launchBrowser, selectedRuntimes } from "../support/browser.ts";
import { type RunningServer, startServer } from "../support/servers.ts";
import { withTimeout } from "../support/test-socket.ts";
import { makeCertificate } from "../support/tls.ts";

const cert = makeCertificate();
const { certFile, keyFile, spki } = cert;
const Trusting = cert.WebSocket;

const tlsRuntimes = selectedRuntimes.filter((r) => r !== "workerd");

describe("wss:// served by the runtime itself (EDGEWIRE_TLS_CERT/KEY)", () => {
  const servers = new Map<string, RunningServer>();
  let browser: BrowserContext | undefined;
  before(async () => {
    browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${spki}`]);
    const env = { ...SERVICE_ENV, EDGEWIRE_TLS_CERT: certFile, EDGEWIRE_TLS_KEY: keyFile };
    await Promise.all(tlsRuntimes.map(async (r) => servers.set(r, await startServer(r, env, 60_000, cert.ca))));
  });
  after(async () => {
    await browser?.close();
    await Promise.all([...servers.values()].map((s) => s.stop()));
  });

  for (const runtime of tlsRuntimes) {
    const server = () => servers.get(runtime) as RunningServer;

    it(`${runtime}: says https:// when it listens, and hands out wss:// addresses`, () => {
      assert.match(server().output(), /listening on https:\/\/127\.0\.0\.1:\d+/);
      assert.match(server().ws, /^wss:\/\//);
    });

    it(`${runtime}: the SDK echoes text and binary over wss://`, async () => {
      const socket = new EdgewireSocket(`${server().ws}/echo`, [], { WebSocket: Trusting, transport: "websocket" });
      socket.binaryType = "arraybuffer";
      const received: unknown[] = [];
      try {
        await withTimeout(new Promise((r) => socket.addEventListener("open", r, { once: true })), 10_000, "open");
        const got = new Promise<void>((r) =>
          socket.addEventListener("message", (e) => {
            received.push(e.data);
            if (received.length === 2) r();
          }),
        );
        socket.send("over tls");
        socket.send(new Uint8Array([0, 255, 7]));
        await withTimeout(got, 10_000, "two echoes");
        assert.equal(received[0], "over tls");
        assert.deepEqual([...new Uint8Array(received[1] as ArrayBuffer)], [0, 255, 7]);
      } finally {
        socket.close();
      }
    });

    it(`${runtime}: a room over wss:// with the SDK: one member publishes, the other gets it with its seq`, async () => {
      const room = `tls-${runtime}-${Date.now()}`;
      const a = joinRoom<{ text: string }>(server().ws, room, { WebSocket: Trusting, transport: "websocket" });
      const b = joinRoom<{ text: string }>(server().ws, room, { WebSocket: Trusting, transport: "websocket" });
      try {
        await withTimeout(Promise.all([a.ready, b.ready]), 10_000, "both joined");
        const heard = new Promise<{ seq: number; data: { text: string } }>((r) => b.on("message", r));
        const ack = await withTimeout(a.publish({ text: "encrypted hello" }), 10_000, "publish ack");
        const message = await withTimeout(heard, 10_000, "the other member hears it");
        assert.equal(message.data.text, "encrypted hello");
        assert.equal(message.seq, ack.seq);
      } finally {
        a.close();
        b.close();
      }
    });

    it(`${runtime}: a client that does not trust the certificate is refused by TLS`, async () => {
      const socket = new WebSocket(`${server().ws}/echo`);
      const error = await withTimeout(
        new Promise<Error>((r) => socket.once("error", r)),
        10_000,
        "the handshake to fail",
      );
      assert.match(String((error as NodeJS.ErrnoException).code ?? error.message), /SELF_SIGNED|CERT|certificate/i);
    });

    it(`${runtime}: Chromium runs echo with its own WebSocket and a room with the SDK over wss://`, async () => {
      const page = await (browser as BrowserContext).newPage();
      try {
        await page.goto(`${server().http}/healthz`);
        const result = await page.evaluate(async (room) => {
          const echoed = await new Promise<string>((resolve, reject) => {
            const socket = new WebSocket(`${location.origin.replace(/^https/, "wss")}/echo`);
            socket.onopen = () => socket.send("from chromium");
            socket.onmessage = (event) => {
              resolve(String(event.data));
              socket.close();
            };
            socket.onerror = () => reject(new Error("echo socket failed"));
          });
          // The SDK as a page loads it from the server (/client.js).
          const sdk = "/client.js";
          const { joinRoom: join } = await import(sdk);
          const base = location.origin.replace(/^https/, "wss");
          const a = join(base, room, { transport: "websocket" });
          const b = join(base, room, { transport: "websocket" });
          await Promise.all([a.ready, b.ready]);
          const heard = new Promise<{ data: { text: string } }>((r) => b.on("message", r));
          await a.publish({ text: "browser over tls" });
          const message = await heard;
          a.close();
          b.close();
          return { echoed, text: message.data.text, protocol: location.protocol };
        }, `tls-browser-${runtime}-${Date.now()}`);
        assert.deepEqual(result, { echoed: "from chromium", text: "browser over tls", protocol: "https:" });
      } finally {
        await page.close();
      }
    });
  }
});
