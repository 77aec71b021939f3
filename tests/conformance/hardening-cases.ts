/**
 * The hardening cases: every defence tried with the attack it answers, on
 * every runtime, against tests/fixtures/hardened.ts with strict settings
 * (HARDENED_ENV). After each attack, legitimate traffic next to it must be
 * unaffected. A runtime that cannot do one says why in the capability table.
 */
import assert from "node:assert/strict";
import { sign } from "hono/utils/jwt/jwt";
import WebSocket from "ws";
import { RawSocket } from "../support/raw-socket.ts";
import type { RunningServer, RuntimeName } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { freshRoom } from "./cases.ts";

/** The HS256 secret of the hardened server. */
export const JWT_SECRET = "hardening-secret-that-is-long-enough-0123456789";
/** Its backend push token and metrics token. */
export const HARD_PUSH_TOKEN = "hardened-push-token";
export const METRICS_TOKEN = "metrics-token";

/** The hardened server's settings: every defence on, small limits so a test can reach them. */
export const HARDENED_ENV = {
  EDGEWIRE_ALLOWED_ORIGINS: "https://app.example.com, https://*.trusted.example",
  EDGEWIRE_JWT_SECRET: JWT_SECRET,
  EDGEWIRE_AUTH: "optional",
  EDGEWIRE_PUSH_TOKEN: HARD_PUSH_TOKEN,
  EDGEWIRE_METRICS_TOKEN: METRICS_TOKEN,
  EDGEWIRE_MAX_ROOM_NAME: "24",
  EDGEWIRE_MAX_ROOM_MEMBERS: "3",
  EDGEWIRE_MAX_ROOMS: "40",
  EDGEWIRE_RATE_LIMIT: "20",
  EDGEWIRE_RATE_BURST: "10",
  EDGEWIRE_MAX_CONNECTIONS_PER_ADDRESS: "6",
  EDGEWIRE_TRUSTED_PROXIES: "127.0.0.1, ::1, ::ffff:127.0.0.1",
  EDGEWIRE_MAX_BUFFERED_BYTES: "262144",
  EDGEWIRE_HEARTBEAT_MS: "2000",
  EDGEWIRE_POLL_TIMEOUT_MS: "2000",
  EDGEWIRE_CLOSE_TIMEOUT_MS: "2000",
  EDGEWIRE_PUSH_BATCH_MAX_MESSAGES: "20",
  EDGEWIRE_LOG_LEVEL: "warn",
};

type Json = Record<string, unknown>;
let clientIp = 0;
/** A distinct client address for one case, sent through the trusted proxy (so cases do not share the per-address budget). */
const asClient = () => ({ "x-forwarded-for": `198.51.100.${(clientIp++ % 250) + 1}` });
/** A short room name (the hardened server allows 24 characters). */
const room = (tag: string) => freshRoom(tag).slice(0, 24);

/** A signed HS256 token with `claims` (exp in `expIn` seconds, default an hour). */
export async function token(
  claims: Json = {},
  options: { expIn?: number; nbfIn?: number; secret?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    sub: "user-1",
    iat: now,
    exp: now + (options.expIn ?? 3600),
    ...(options.nbfIn ? { nbf: now + options.nbfIn } : {}),
    ...claims,
  };
  return sign(payload, options.secret ?? JWT_SECRET, "HS256");
}

/** Open a socket; resolves with it once open, or with the refused handshake's status and error code. */
async function attempt(url: string, protocols?: string | string[], headers: Record<string, string> = {}) {
  const socket = new TestSocket(url, protocols, headers);
  try {
    await withTimeout(socket.opened, 10_000, `connect ${url}`);
    return { socket, status: 101, code: undefined as string | undefined };
  } catch (error) {
    const e = error as { status?: number; body?: string };
    let code: string | undefined;
    try {
      code = JSON.parse(e.body ?? "{}").error?.code;
    } catch {}
    return { socket: undefined, status: e.status ?? 0, code };
  }
}

/** A member of `r` on `route` (default the rooms route), after its welcome. */
async function member(s: RunningServer, r: string, headers: Record<string, string> = asClient(), path = "/rooms") {
  const socket = new TestSocket(`${s.ws}${path}/${r}`, "edgewire.v1", headers);
  await withTimeout(socket.opened, 10_000, "join");
  const welcome = await socket.json<{ type: string; id: string }>();
  assert.equal(welcome.type, "welcome");
  return { socket, id: welcome.id };
}

const onlyWorkerd = (reason: string) => (r: RuntimeName) => (r === "workerd" ? reason : undefined);

/** The cases (run against the hardened server). */
export const hardeningCases: Case[] = (
  [
    {
      name: "origin: a foreign Origin is refused (403) before the upgrade and before a polling session; listed, wildcard and non-browser clients pass; CORS follows the list",
      async run(s) {
        const r = room("origin");
        const evil = await attempt(`${s.ws}/rooms/${r}`, "edgewire.v1", {
          origin: "https://evil.example",
          ...asClient(),
        });
        assert.deepEqual([evil.status, evil.code], [403, "origin_not_allowed"]);
        const sameHostButUnlisted = await attempt(`${s.ws}/echo`, undefined, { origin: s.http, ...asClient() });
        assert.equal(sameHostButUnlisted.status, 403, "an allow-list replaces the same-host default");
        for (const origin of ["https://app.example.com", "https://eu.trusted.example", undefined]) {
          const ok = await attempt(`${s.ws}/echo`, undefined, { ...(origin ? { origin } : {}), ...asClient() });
          assert.equal(ok.status, 101, `origin ${origin ?? "(none)"} is admitted`);
          await ok.socket?.close();
        }
        const open = await fetch(`${s.http}/rooms/${r}/poll`, {
          method: "POST",
          headers: { origin: "https://evil.example", ...asClient() },
        });
        assert.equal(open.status, 403);
        assert.equal(((await open.json()) as { error: Json }).error.code, "origin_not_allowed");
        const preflight = await fetch(`${s.http}/rooms/${r}/poll`, {
          method: "OPTIONS",
          headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
        });
        assert.equal(preflight.status, 204);
        assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example.com");
        const badPreflight = await fetch(`${s.http}/rooms/${r}/poll`, {
          method: "OPTIONS",
          headers: { origin: "https://evil.example" },
        });
        assert.equal(badPreflight.status, 403);
        assert.equal(badPreflight.headers.get("access-control-allow-origin"), null);
        const allowed = await fetch(`${s.http}/rooms/${r}/poll`, {
          method: "POST",
          headers: { origin: "https://app.example.com", ...asClient() },
        });
        assert.equal(allowed.status, 200);
        assert.equal(allowed.headers.get("access-control-allow-origin"), "https://app.example.com");
        const { sid } = (await allowed.json()) as { sid: string };
        await fetch(`${s.http}/rooms/${r}/poll/${sid}`, {
          method: "DELETE",
          headers: { origin: "https://app.example.com" },
        });
      },
    },
    {
      name: "auth: missing, malformed, forged, expired and not-yet-valid tokens get 401, a token for another room 403, all before the upgrade; header, subprotocol and query tokens work; claims reach the handler",
      async run(s) {
        const r = room("vault");
        const url = `${s.ws}/vault/${r}`;
        const refused = async (
          headers: Record<string, string>,
          protocols: string | string[] = "edgewire.v1",
          query = "",
        ) => {
          const a = await attempt(`${url}${query}`, protocols, { ...headers, ...asClient() });
          return [a.status, a.code];
        };
        assert.deepEqual(await refused({}), [401, "unauthorized"], "a route that requires a token");
        assert.deepEqual(await refused({ authorization: "Bearer not-a-jwt" }), [401, "unauthorized"]);
        assert.deepEqual(
          await refused({
            authorization: `Bearer ${await token({}, { secret: "someone-elses-secret-0123456789-abcdef" })}`,
          }),
          [401, "unauthorized"],
        );
        assert.deepEqual(await refused({ authorization: `Bearer ${await token({}, { expIn: -60 })}` }), [
          401,
          "unauthorized",
        ]);
        assert.deepEqual(await refused({ authorization: `Bearer ${await token({}, { nbfIn: 600 })}` }), [
          401,
          "unauthorized",
        ]);
        assert.deepEqual(await refused({ authorization: `Bearer ${await token({ rooms: ["vault:other-*"] })}` }), [
          403,
          "forbidden",
        ]);
        const allowed = await token({ rooms: [`vault:${r}`] });
        const byHeader = await attempt(url, "edgewire.v1", { authorization: `Bearer ${allowed}`, ...asClient() });
        assert.equal(byHeader.status, 101, "Authorization header");
        const bySubprotocol = await attempt(url, ["edgewire.v1", `edgewire.bearer.${allowed}`], asClient());
        assert.equal(bySubprotocol.status, 101, "subprotocol entry");
        assert.equal(bySubprotocol.socket?.protocol, "edgewire.v1", "the token entry is never echoed as the protocol");
        // Offered alone, the token is still never answered as the protocol (Bun picked the first offer by itself).
        // A raw handshake: `ws` fails a handshake whose answer names no protocol when it offered one; browsers do not.
        const tokenOnly = await RawSocket.upgrade(s.port, `/vault/${r}`, {
          "Sec-WebSocket-Protocol": `edgewire.bearer.${allowed}`,
          ...asClient(),
        });
        assert.doesNotMatch(
          tokenOnly.response,
          /sec-websocket-protocol/i,
          "no subprotocol in the answer, not the token",
        );
        tokenOnly.socket.destroy();
        const byQuery = await attempt(`${url}?access_token=${allowed}`, "edgewire.v1", asClient());
        assert.equal(byQuery.status, 101, "query parameter");
        await Promise.all([byHeader, bySubprotocol, byQuery].map((a) => a.socket?.close()));
        // Claims and address reach the route's handlers.
        const who = new TestSocket(`${s.ws}/whoami`, undefined, {
          authorization: `Bearer ${await token({ team: "blue" })}`,
          ...asClient(),
        });
        const seen = await who.json<{ claims: Json; address: string }>();
        assert.equal(seen.claims.team, "blue");
        assert.equal(seen.claims.sub, "user-1");
        await who.close();
        // A publish claim limits where the holder may publish, without closing the connection.
        const reader = await token({ rooms: [`vault:${r}`], publish: ["vault:elsewhere"] });
        const ro = await attempt(url, "edgewire.v1", { authorization: `Bearer ${reader}`, ...asClient() });
        const sock = ro.socket as TestSocket;
        await sock.until("welcome");
        sock.sendJson({ type: "publish", id: "p1", data: "hi" });
        const denied = await sock.until<{ code: string; id: string }>("error");
        assert.deepEqual([denied.code, denied.id], ["forbidden", "p1"]);
        sock.sendJson({ type: "ping", id: "still" });
        assert.equal((await sock.until<{ id: string }>("pong")).id, "still");
        await sock.close();
        // Where auth is optional, anonymous clients still join ordinary rooms.
        const anon = await member(s, room("anon"));
        await anon.socket.close();
      },
    },
    {
      name: "backend push: refused without a credential (401) or with a JWT lacking a push claim (403); the token or a push claim works; a refused body is not left unread",
      clients: ["ws"],
      async run(s) {
        const r = room("push");
        const m = await member(s, r);
        // The status, with the body when it is not the one expected (a failure should say why).
        const post = async (headers: Record<string, string>, expected: number) => {
          const res = await fetch(`${s.http}/rooms/${r}/messages`, {
            method: "POST",
            body: JSON.stringify({ n: 1 }),
            headers,
          });
          const body = await res.text();
          assert.equal(res.status, expected, body);
        };
        await post({}, 401);
        await post({ authorization: "Bearer wrong" }, 401);
        await post({ authorization: `Bearer ${await token({ push: ["rooms:elsewhere"] })}` }, 403);
        await post({ authorization: `Bearer ${await token({})}` }, 403);
        await post({ authorization: `Bearer ${HARD_PUSH_TOKEN}` }, 200);
        await post({ authorization: `Bearer ${await token({ push: true })}` }, 200);
        for (let i = 0; i < 2; i++) assert.equal((await m.socket.until<{ from: string }>("message")).from, "server");
        // A refused push leaves its connection usable: the next request on it (fetch reuses it) works.
        for (let i = 0; i < 10; i++) {
          await post({ authorization: "Bearer wrong" }, 401);
          await post({ authorization: `Bearer ${HARD_PUSH_TOKEN}` }, 200);
          assert.equal((await m.socket.until<{ from: string }>("message")).from, "server");
        }
        await m.socket.close();
        await new Promise((done) => setTimeout(done, 300));
        assert.doesNotMatch(s.output(), /Can't read from request stream/, "workerd: the refused body was cancelled");
      },
    },
    {
      name: "limits: room name length (400), members per room (503 room_full), before the upgrade; the room keeps working",
      async run(s) {
        const long = await attempt(`${s.ws}/rooms/${"n".repeat(25)}`, "edgewire.v1", asClient());
        assert.deepEqual([long.status, long.code], [400, "invalid_room"]);
        const r = room("full");
        const members = [await member(s, r), await member(s, r), await member(s, r)];
        const fourth = await attempt(`${s.ws}/rooms/${r}`, "edgewire.v1", asClient());
        assert.deepEqual([fourth.status, fourth.code], [503, "room_full"]);
        members[0]?.socket.sendJson({ type: "publish", data: "the room still works" });
        for (const m of members)
          assert.equal((await m.socket.until<{ data: string }>("message")).data, "the room still works");
        await Promise.all(members.map((m) => m.socket.close()));
      },
    },
    {
      name: "limits: rooms per instance (503 too_many_rooms for a new room past the limit)",
      unsupported: onlyWorkerd("each room is its own Durable Object: there is no instance holding many rooms"),
      async run(s) {
        const held: TestSocket[] = [];
        let refusedAt = -1;
        for (let i = 0; i < 45 && refusedAt < 0; i++) {
          const a = await attempt(`${s.ws}/rooms/${room(`many${i}`)}`, "edgewire.v1", {
            "x-forwarded-for": `203.0.113.${i + 1}`,
          });
          if (a.socket) held.push(a.socket);
          else {
            assert.deepEqual([a.status, a.code], [503, "too_many_rooms"]);
            refusedAt = i;
          }
        }
        assert.equal(refusedAt, 40, "the 41st room is refused (EDGEWIRE_MAX_ROOMS=40)");
        await Promise.all(held.map((h) => h.close()));
      },
    },
    {
      name: "connections per address: 429 past the limit, the address taken from X-Forwarded-For only when a trusted proxy sends it",
      unsupported: onlyWorkerd(
        "each Worker isolate admits only a share of the connections: use Cloudflare's rate-limiting rules",
      ),
      async run(s) {
        const ip = { "x-forwarded-for": "192.0.2.77" };
        const open: TestSocket[] = [];
        for (let i = 0; i < 6; i++) {
          const a = await attempt(`${s.ws}/echo`, undefined, ip);
          assert.equal(a.status, 101, `connection ${i + 1} of 6`);
          open.push(a.socket as TestSocket);
        }
        const seventh = await attempt(`${s.ws}/echo`, undefined, ip);
        assert.deepEqual([seventh.status, seventh.code], [429, "too_many_connections"]);
        const polling = await fetch(`${s.http}/echo/poll`, { method: "POST", headers: ip });
        assert.equal(polling.status, 429, "polling sessions count too");
        const other = await attempt(`${s.ws}/echo`, undefined, { "x-forwarded-for": "192.0.2.78" });
        assert.equal(other.status, 101, "another client behind the same proxy is not affected");
        await other.socket?.close();
        await open.pop()?.close();
        await new Promise((done) => setTimeout(done, 200));
        const again = await attempt(`${s.ws}/echo`, undefined, ip);
        assert.equal(again.status, 101, "a closed connection gives its slot back");
        open.push(again.socket as TestSocket);
        // From an address that is not a trusted proxy, X-Forwarded-For is ignored: the peer is the client.
        const direct = new WebSocket(`${s.ws}/whoami`, {
          localAddress: "127.0.0.2",
          headers: { "x-forwarded-for": "192.0.2.77" },
        });
        const seen = await new Promise<{ address: string }>((resolve, reject) => {
          direct.once("message", (d) => resolve(JSON.parse(String(d))));
          direct.once("error", reject);
        });
        assert.match(seen.address, /127\.0\.0\.2$/, "the untrusted peer's own address, not the header's");
        direct.close();
        await Promise.all(open.map((o) => o.close()));
      },
    },
    {
      name: "rate limit: a flood of 30 000 publishes at once is answered rate_limited with retryAfterMs (at most a burst of answers), then closed 1008 rate_limited: flooding; the others see only what was accepted; a paced member is unaffected",
      async run(s) {
        const r = room("flood");
        const flooder = await member(s, r);
        const victim = await member(s, r);
        const paced = await member(s, r);
        await flooder.socket.until("presence");
        await flooder.socket.until("presence");
        const started = Date.now();
        for (let i = 0; i < 30_000; i++) flooder.socket.sendJson({ type: "publish", id: `f${i}`, data: { i } });
        const limited = await flooder.socket.until<{ code: string; retryAfterMs: number; id: string }>("error");
        assert.equal(limited.code, "rate_limited");
        assert.ok(limited.retryAfterMs > 0 && limited.retryAfterMs <= 1000, `retryAfterMs ${limited.retryAfterMs}`);
        assert.match(limited.id, /^f\d+$/, "the refusal names the publish it refused");
        const ended = await withTimeout(flooder.socket.ended, 15_000, "flooder closed");
        assert.deepEqual(
          [ended.code, ended.reason],
          [1008, "rate_limited: flooding"],
          "persistent flooding closes with 1008",
        );
        assert.ok(Date.now() - started < 15_000, "closed while the flood was still arriving, not after answering it");
        // Every frame it got before the close: the welcome, presence, acks of the accepted burst, and at
        // most a burst (10) of refusals — not one answer per frame of the flood.
        let errors = 1;
        for (
          let f = await flooder.socket.next(0).catch(() => undefined);
          f;
          f = await flooder.socket.next(0).catch(() => undefined)
        )
          if (typeof f.data === "string" && f.data.includes('"type":"error"')) errors++;
        assert.ok(errors <= 10, `${errors} error frames for 30 000 frames`);
        // The victim received the accepted burst and nothing else.
        const seen: number[] = [];
        for (;;) {
          const f = await victim.socket.next(1500).catch(() => undefined);
          if (!f) break;
          const j = JSON.parse(f.data as string) as { type: string; data?: { i: number } };
          if (j.type === "message") seen.push(j.data?.i as number);
        }
        assert.ok(seen.length >= 10 && seen.length <= 30, `${seen.length} accepted (burst 10 + refill)`);
        assert.deepEqual(
          seen,
          [...seen].sort((a, b) => a - b),
          "in order",
        );
        for (let i = 0; i < 5; i++) {
          paced.socket.sendJson({ type: "publish", id: `p${i}`, data: "paced" });
          assert.equal((await paced.socket.until<{ id: string; seq: number }>("ack")).id, `p${i}`);
          await new Promise((done) => setTimeout(done, 60));
        }
        await Promise.all([victim, paced].map((m) => m.socket.close()));
      },
    },
    {
      name: "slow consumer: a member that stops reading is closed (the room sees 1013), the server does not buffer without bound, the others keep receiving",
      note: (r) => (r === "bun" ? "Bun closes it at backpressureLimit itself and reports 1006, not why" : undefined),
      unsupported: onlyWorkerd(
        "a Durable Object's WebSocket reports no bufferedAmount; an object's memory is bounded by the isolate limit (128 MB), past which workerd resets the object",
      ),
      async run(s) {
        const r = room("slow");
        const sleeper = await member(s, r);
        const reader = await member(s, r);
        await sleeper.socket.until("presence");
        // Stop reading: the kernel buffers fill, then the server's outbound buffer.
        (sleeper.socket.ws as unknown as { _socket: { pause(): void } })._socket.pause();
        const chunk = JSON.stringify("x".repeat(100 * 1024));
        let left = false;
        const watch = (async () => {
          for (;;) {
            const p = await reader.socket.until<{ event: string; code?: number; member: { id: string } }>(
              "presence",
              60_000,
            );
            if (p.event === "leave" && p.member.id === sleeper.id) {
              // Bun closes a socket past backpressureLimit itself, abruptly, and reports 1006.
              assert.equal(p.code, s.runtime === "bun" ? 1006 : 1013);
              left = true;
              return;
            }
          }
        })();
        for (let i = 0; i < 400 && !left; i++) {
          const res = await fetch(`${s.http}/rooms/${r}/messages`, {
            method: "POST",
            body: chunk,
            headers: { authorization: `Bearer ${HARD_PUSH_TOKEN}` },
          });
          assert.equal(res.status, 200);
        }
        await withTimeout(watch, 20_000, "the slow member's leave");
        reader.socket.sendJson({ type: "publish", data: "after" });
        let f: { data: unknown };
        do f = await reader.socket.until<{ data: unknown }>("message", 20_000);
        while (f.data !== "after");
        sleeper.socket.ws.terminate();
        await reader.socket.close();
      },
    },
    {
      name: "heartbeat: an idle client is pinged within the interval; one that never answers is closed and leaves the room with 1006",
      async run(s) {
        const r = room("heartbeat");
        const watcher = await member(s, r);
        if (s.runtime !== "workerd") {
          // Protocol pings from the server (Node, Bun: the engine's heartbeat; Deno: its idleTimeout).
          const idle = new WebSocket(`${s.ws}/echo`, { headers: asClient() });
          const pinged = await withTimeout(
            new Promise<number>((resolve) => {
              const at = Date.now();
              idle.once("ping", () => resolve(Date.now() - at));
            }),
            8000,
            "a ping",
          );
          assert.ok(pinged <= 4500, `pinged after ${pinged} ms (heartbeat 2000 ms)`);
          idle.close();
        }
        // A dead peer: answers no ping (ws's autoPong off) and sends nothing, not even the SDK's app ping.
        const dead = new WebSocket(`${s.ws}/rooms/${r}`, "edgewire.v1", {
          autoPong: false,
          headers: asClient(),
        } as WebSocket.ClientOptions);
        const deadId = await new Promise<string>((resolve) =>
          dead.once("message", (d) => resolve(JSON.parse(String(d)).id)),
        );
        await watcher.socket.until("presence");
        const started = Date.now();
        // The watcher stays alive as the SDK does: an application ping per second (a Durable Object answers it without waking).
        const keepAlive = setInterval(() => watcher.socket.sendJson({ type: "ping" }), 1000);
        for (;;) {
          const p = await watcher.socket.until<{ event: string; code?: number; member: { id: string } }>(
            "presence",
            20_000,
          );
          if (p.event === "leave" && p.member.id === deadId) {
            assert.equal(p.code, 1006);
            break;
          }
        }
        clearInterval(keepAlive);
        const took = Date.now() - started;
        assert.ok(took < 12_000, `closed after ${took} ms`);
        dead.terminate();
        await watcher.socket.close();
      },
    },
    {
      name: "handler fault in a user route: 1011 for that connection only, logged with the route; the route serves the next client",
      async run(s) {
        const bystander = new TestSocket(`${s.ws}/faulty`, undefined, asClient());
        await withTimeout(bystander.opened, 10_000, "open");
        for (const boom of ["boom", "async boom"]) {
          const victim = new TestSocket(`${s.ws}/faulty`, undefined, asClient());
          await withTimeout(victim.opened, 10_000, "open");
          victim.send(boom);
          const ended = await withTimeout(victim.ended, 10_000, "fault close");
          assert.deepEqual([ended.code, ended.reason], [1011, "internal_error"]);
        }
        bystander.send("still here");
        assert.equal((await bystander.next()).data, "still here");
        await bystander.close();
        const fresh = new TestSocket(`${s.ws}/faulty`, undefined, asClient());
        await withTimeout(fresh.opened, 10_000, "open");
        fresh.send("hello");
        assert.equal((await fresh.next()).data, "hello");
        await fresh.close();
        if (s.runtime !== "workerd") assert.match(s.output(), /handler fault on route \\"faulty\\"/);
      },
    },
    {
      name: "metrics: /metrics needs its token; it counts refusals by reason, closes by code, messages and rate limiting",
      async run(s) {
        assert.equal((await fetch(`${s.http}/metrics`)).status, 401);
        const wrong = await fetch(`${s.http}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } });
        assert.equal(wrong.status, 401, "a wrong token is refused");
        const basic = await fetch(`${s.http}/metrics`, { headers: { authorization: `Basic ${METRICS_TOKEN}` } });
        assert.equal(basic.status, 401, "another scheme is refused");
        const lower = await fetch(`${s.http}/metrics`, { headers: { authorization: `bearer ${METRICS_TOKEN}` } });
        assert.equal(lower.status, 200, "the scheme is case-insensitive, as for the push API");
        await lower.text();
        const evil = await attempt(`${s.ws}/echo`, undefined, { origin: "https://evil.example", ...asClient() });
        assert.equal(evil.status, 403);
        const open = await attempt(`${s.ws}/echo`, undefined, asClient());
        const res = await fetch(`${s.http}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
        await open.socket?.close();
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
        const text = await res.text();
        assert.match(text, /# TYPE edgewire_refused_total counter/);
        assert.match(text, /edgewire_refused_total\{reason="origin_not_allowed"\} [1-9]/);
        if (s.runtime === "workerd") return; // the Worker's own counters: connections live in the objects
        assert.match(text, /edgewire_closes_total\{code="1011"\} [1-9]/);
        assert.match(text, /edgewire_rate_limited_total [1-9]/);
        assert.match(text, /edgewire_messages_received_total\{route="room"\} [1-9]/);
        assert.match(text, /edgewire_messages_sent_total\{route="room"\} [1-9]/);
        assert.match(text, /edgewire_sent_bytes_total\{route="room"\} [1-9]/);
        assert.match(text, /edgewire_connections\{route="echo",transport="websocket"\} [1-9]/);
        assert.match(text, /edgewire_heap_used_bytes [1-9]\d*/, "the runtime's memory");
        const ready = await fetch(`${s.http}/readyz`);
        assert.deepEqual([ready.status, ((await ready.json()) as Json).ready], [200, true]);
      },
    },
    {
      name: "metrics per room: on Cloudflare /rooms/:room/metrics is the room object's own counters (behind the token); elsewhere 404 pointing to /metrics",
      async run(s) {
        const r = room("counted");
        const url = `${s.http}/rooms/${r}/metrics`;
        const auth = { headers: { authorization: `Bearer ${METRICS_TOKEN}` } };
        if (s.runtime !== "workerd") {
          const res = await fetch(url, auth);
          assert.equal(res.status, 404);
          assert.match(((await res.json()) as { error: { message: string } }).error.message, /\/metrics/);
          return;
        }
        for (const authorization of [undefined, "Bearer wrong"]) {
          const res = await fetch(url, authorization ? { headers: { authorization } } : {});
          assert.equal(res.status, 401, String(authorization));
        }
        const a = await member(s, r);
        const b = await member(s, r);
        a.socket.sendJson({ type: "publish", id: "1", data: "counted" });
        await b.socket.until("message");
        await a.socket.until("ack");
        const text = await (await fetch(url, auth)).text();
        assert.match(text, /edgewire_info\{runtime="workerd"\} 1/);
        assert.match(text, /edgewire_connections\{route="room",transport="websocket"\} 2/);
        assert.match(text, /edgewire_rooms 1/);
        assert.match(text, /edgewire_messages_received_total\{route="room"\} 1/);
        // Two welcomes, b's presence news of… a join, the message to both, the ack: at least five.
        const sent = Number(/edgewire_messages_sent_total\{route="room"\} (\d+)/.exec(text)?.[1]);
        assert.ok(sent >= 5, `sent ${sent}`);
        const other = await (await fetch(`${s.http}/rooms/${room("elsewhere")}/metrics`, auth)).text();
        assert.match(other, /edgewire_connections\{route="room",transport="websocket"\} 0|edgewire_rooms 0/);
        await Promise.all([a.socket.close(), b.socket.close()]);
      },
    },
  ] satisfies Case[]
).map((c) => ({ clients: ["ws"] as const, ...c, server: "hardened" as const }));
