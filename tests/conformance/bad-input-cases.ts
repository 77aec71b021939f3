/**
 * The bad-input suite, on every runtime: malformed and hostile frames, bad
 * handshakes, garbage on the raw TCP socket, and a seeded, reproducible fuzz
 * run (fast-check). After each: the server still serves new clients, and the
 * other members of the room saw only legitimate messages.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { frame, RawSocket, upgradeRequest } from "../support/raw-socket.ts";
import type { RunningServer } from "../support/servers.ts";
import { type TestSocket, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { connect, freshRoom, joinPair } from "./cases.ts";

/** The fuzz run's seed: a failure names it, and the same seed replays the same frames. */
export const FUZZ_SEED = Number(process.env.EDGEWIRE_FUZZ_SEED ?? 20261201);

/** The server still serves: a new echo client gets its frame back. */
async function stillServes(s: RunningServer): Promise<void> {
  const probe = await connect(`${s.ws}/echo`);
  probe.send("alive?");
  assert.equal((await probe.next()).data, "alive?", "the server serves new clients");
  await probe.close();
}

/** Everything `socket` receives for `ms`, parsed. */
async function drain(socket: TestSocket, ms: number): Promise<{ type: string; [k: string]: unknown }[]> {
  const got: { type: string }[] = [];
  for (;;) {
    const f = await socket.next(ms).catch(() => undefined);
    if (!f) return got as { type: string; [k: string]: unknown }[];
    if (!f.binary) got.push(JSON.parse(f.data as string));
  }
}

// Near-valid and invalid room frames: the envelope's fields with wrong types, extra or missing.
const hostileFrame = fc.oneof(
  fc.json(),
  fc.string(),
  fc.uint8Array({ maxLength: 512 }),
  fc.record(
    {
      type: fc.oneof(fc.constantFrom("publish", "ping", "welcome", "message", "__proto__"), fc.string(), fc.integer()),
      data: fc.anything(),
      id: fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.constant(null)),
    },
    { requiredKeys: [] },
  ),
);

/** The cases (run against the service). */
export const badInputCases: Case[] = (
  [
    {
      name: "bad input: invalid JSON, wrong types, unknown types, oversized ids — error frames, the socket stays usable, the others see nothing",
      async run(s) {
        const r = freshRoom("badinput");
        const { a, b } = await joinPair(s, r);
        const hostile = [
          "{nope",
          "[1,2]",
          '"just a string"',
          "null",
          "42",
          '{"type":5}',
          '{"type":"publish"}',
          '{"type":"shout","data":1}',
          '{"type":"publish","data":1,"id":123}',
          `{"type":"publish","data":1,"id":"${"x".repeat(65)}"}`,
          '{"type":"ping","id":{}}',
        ];
        for (const text of hostile) a.socket.send(text);
        const errors: string[] = [];
        while (errors.length < hostile.length) errors.push((await a.socket.until<{ code: string }>("error")).code);
        assert.ok(
          errors.every((c) => c === "invalid_json" || c === "invalid_message"),
          errors.join(","),
        );
        a.socket.sendJson({ type: "publish", id: "ok", data: "legit" });
        assert.equal((await a.socket.until<{ id: string }>("ack")).id, "ok");
        const seen = (await drain(b.socket, 1000)).filter((f) => f.type === "message");
        assert.deepEqual(
          seen.map((f) => f.data),
          ["legit"],
          "the other member saw only the legitimate message",
        );
        await Promise.all([a, b].map((m) => m.socket.close()));
        await stillServes(s);
      },
    },
    {
      name: "bad input: an oversized frame closes only its connection (1009); invalid UTF-8 in a text frame closes it with 1007",
      note: (r) =>
        r === "deno"
          ? "Deno drops the connection without a Close frame (1006) on invalid UTF-8"
          : r === "workerd"
            ? "wrangler dev's local proxy in front of workerd does not validate UTF-8: the text arrives with U+FFFD for the bad bytes, the socket stays open"
            : undefined,
      async run(s) {
        const r = freshRoom("oversize");
        const { a, b } = await joinPair(s, r);
        a.socket.send("z".repeat(1024 * 1024 + 1));
        assert.equal((await withTimeout(a.socket.ended, 10_000, "1009")).code, 1009);
        const raw = await RawSocket.upgrade(s.port, `/rooms/${r}`, { "Sec-WebSocket-Protocol": "edgewire.v1" });
        raw.write(frame(1, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))); // {"\xff\xfe"}
        if (s.runtime === "workerd") {
          // Decoded lossily by the runtime before any handler sees it: answered as what it became.
          await raw.until(() => raw.frames.filter((f) => f.opcode === 1).length >= 2, 5000);
          assert.equal(raw.ended, false, "workerd keeps the socket");
        } else assert.equal(await raw.closeCode(), s.runtime === "deno" ? 1006 : 1007);
        raw.destroy();
        b.socket.sendJson({ type: "publish", id: "after", data: "after" });
        assert.equal((await b.socket.until<{ id: string }>("ack")).id, "after");
        await b.socket.close();
        await stillServes(s);
      },
    },
    {
      name: "bad input: non-WebSocket and malformed upgrade requests are refused with an HTTP error, nothing upgraded",
      note: (r) =>
        r === "workerd"
          ? "wrangler dev's local proxy upgrades a malformed key itself and opens its own handshake to workerd"
          : undefined,
      async run(s) {
        const cases: [string, Record<string, string>][] = [
          ["h2c upgrade", { Upgrade: "h2c", Connection: "Upgrade, HTTP2-Settings" }],
          ["no key", { "Sec-WebSocket-Key": "" }],
          ["bad key", { "Sec-WebSocket-Key": "too-short" }],
          ["old version", { "Sec-WebSocket-Version": "7" }],
        ];
        for (const [what, headers] of cases) {
          const raw = await RawSocket.open(s.port);
          raw.write(upgradeRequest("/echo", headers));
          await raw.until(() => raw.response !== "" || raw.ended, 10_000);
          const status = Number(raw.response.split(" ")[1] ?? 0);
          if (s.runtime === "workerd" && what === "bad key" && status === 101) {
            raw.destroy();
            continue; // the proxy's handshake, not the Worker's (see the note)
          }
          assert.ok(
            raw.response === "" || (status >= 400 && status < 500),
            `${what}: ${raw.response.split("\r\n")[0]}`,
          );
          raw.destroy();
        }
        const post = await RawSocket.open(s.port);
        post.write(upgradeRequest("/echo").replace(/^GET/, "POST"));
        await post.until(() => post.response !== "" || post.ended, 10_000);
        assert.doesNotMatch(post.response, /^HTTP\/1\.1 101/, "a POST is never upgraded");
        post.destroy();
        await stillServes(s);
      },
    },
    {
      name: "bad input: garbage on the raw TCP socket before the handshake and after it drops that connection only",
      async run(s) {
        const r = freshRoom("garbage");
        const { a, b } = await joinPair(s, r);
        for (const garbage of [
          randomBytes(4096),
          Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\n${"X-Long: y\r\n".repeat(2000)}`),
          Buffer.from("\r\n\r\n\r\n"),
        ]) {
          const raw = await RawSocket.open(s.port);
          raw.write(garbage);
          await raw.until(() => raw.ended || raw.response !== "", 5000);
          raw.destroy();
        }
        // After a handshake: random bytes as frames (unmasked, reserved bits, bogus lengths).
        const raw = await RawSocket.upgrade(s.port, `/rooms/${r}`, { "Sec-WebSocket-Protocol": "edgewire.v1" });
        raw.write(randomBytes(2048));
        const code = await raw.closeCode(10_000);
        assert.ok([1002, 1006, 1007, 1009].includes(code), `closed with ${code}`);
        raw.destroy();
        a.socket.sendJson({ type: "publish", id: "after", data: "after garbage" });
        assert.equal((await a.socket.until<{ id: string }>("ack")).id, "after");
        const seen = (await drain(b.socket, 800)).filter((f) => f.type === "message");
        assert.deepEqual(
          seen.map((f) => f.data),
          ["after garbage"],
        );
        await Promise.all([a, b].map((m) => m.socket.close()));
        await stillServes(s);
      },
    },
    {
      name: `bad input: seeded fuzz (fast-check, seed ${FUZZ_SEED}) of 300 frames and JSON values into a room — answered or closed, never a crash; the other member sees only valid publishes`,
      async run(s) {
        const r = freshRoom("fuzz");
        const { a: fuzzer, b: observer } = await joinPair(s, r);
        const frames = fc.sample(hostileFrame, { seed: FUZZ_SEED, numRuns: 300 });
        // What the server must publish: exactly the frames that are valid publishes, in order.
        const expected: unknown[] = [];
        for (const f of frames) {
          if (f instanceof Uint8Array) {
            fuzzer.socket.send(Buffer.from(f));
            continue;
          }
          const text = typeof f === "string" ? f : JSON.stringify(f);
          if (text === undefined) continue;
          fuzzer.socket.send(text);
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            continue;
          }
          const p = parsed as { type?: unknown; data?: unknown; id?: unknown };
          const validId = p?.id === undefined || (typeof p.id === "string" && p.id.length <= 64);
          if (p && typeof p === "object" && !Array.isArray(p) && p.type === "publish" && "data" in p && validId)
            expected.push(p.data);
        }
        fuzzer.socket.sendJson({ type: "publish", id: "end", data: "end of fuzz" });
        expected.push("end of fuzz");
        const seen: unknown[] = [];
        for (;;) {
          const f = await observer.socket.until<{ data: unknown; from: string }>("message", 20_000);
          assert.equal(f.from, fuzzer.welcome.id, "only the fuzzer published");
          seen.push(f.data);
          if (f.data === "end of fuzz") break;
        }
        assert.deepEqual(seen, expected, `seed ${FUZZ_SEED}: the observer saw exactly the valid publishes, in order`);
        await Promise.all([fuzzer, observer].map((m) => m.socket.close()));
        await stillServes(s);
      },
    },
  ] satisfies Case[]
).map((c) => ({ clients: ["ws"] as const, ...c }));
