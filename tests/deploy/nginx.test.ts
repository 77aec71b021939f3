/**
 * deploy/nginx.conf, run: Debian's nginx in the foreground with that file
 * (ports, upstream addresses, certificate paths and the read timeout
 * rewritten; everything else as shipped) terminating TLS in front of two Node
 * instances on the shared Redis, no sticky sessions. Through it: echo, a room
 * spread over both instances, long-polling whose requests land on either
 * instance, a WebSocket idle past nginx's own read timeout kept alive by the
 * heartbeat, and the per-address limit counting the client's address (the
 * instances trust nginx's X-Forwarded-For) — not nginx's, and not what a
 * client writes in the header itself.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { joinRoom, type RoomClient } from "../../src/client/index.ts";
import { cleanup, requireRedis, SHARED_REDIS, testPrefix } from "../support/redis.ts";
import { freePort, ROOT, type RunningServer, startServer, stopGroup } from "../support/servers.ts";
import { withTimeout } from "../support/test-socket.ts";
import { makeCertificate } from "../support/tls.ts";

const NGINX = process.env.NGINX_PATH ?? "/usr/sbin/nginx";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cert = makeCertificate();
// nginx's read timeout in the test (the shipped file says 75 s); the instances ping every second.
const READ_TIMEOUT_S = 3;
const PER_ADDRESS = 2;

/** deploy/nginx.conf with this run's ports, paths and timeout; fails if a line it rewrites is gone. */
function template(text: string, upstreams: number[], httpPort: number, httpsPort: number): string {
  const swaps: [RegExp, string][] = [
    [/^( *)server 127\.0\.0\.1:8787 (.*)$/m, `$1server 127.0.0.1:${upstreams[0]} $2`],
    [/^( *)server 127\.0\.0\.1:8788 (.*)$/m, `$1server 127.0.0.1:${upstreams[1]} $2`],
    [/^( *)listen 80;$/m, `$1listen 127.0.0.1:${httpPort};`],
    [/^( *)listen \[::\]:80;\n/m, ""], // the sandbox may have no IPv6
    [/^( *)listen 443 ssl;$/m, `$1listen 127.0.0.1:${httpsPort} ssl;`],
    [/^( *)listen \[::\]:443 ssl;\n/m, ""],
    [/^( *)ssl_certificate +\S+;$/m, `$1ssl_certificate ${cert.certFile};`],
    [/^( *)ssl_certificate_key +\S+;$/m, `$1ssl_certificate_key ${cert.keyFile};`],
    [/^( *)proxy_read_timeout 75s;$/m, `$1proxy_read_timeout ${READ_TIMEOUT_S}s;`],
  ];
  for (const [pattern, replacement] of swaps) {
    assert.match(text, pattern, `deploy/nginx.conf lost the line the test rewrites: ${pattern}`);
    text = text.replace(pattern, replacement);
  }
  return text;
}

interface Nginx {
  https: string;
  wss: string;
  http: string;
  stop(): Promise<void>;
  log(): string;
}

async function startNginx(upstreams: number[]): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), "edgewire-nginx-"));
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, sub));
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const site = template(readFileSync(join(ROOT, "deploy/nginx.conf"), "utf8"), upstreams, httpPort, httpsPort);
  writeFileSync(join(dir, "edgewire.conf"), site);
  // The main file a distribution would ship, minus everything outside the temp dir.
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/edgewire.conf;
}
`,
  );
  let output = "";
  const child: ChildProcess = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d: Buffer) => (output += d));
  child.stderr?.on("data", (d: Buffer) => (output += d));
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  const log = () =>
    `${output}${existsSync(join(dir, "error.log")) ? readFileSync(join(dir, "error.log"), "utf8") : ""}`;
  const https = `https://127.0.0.1:${httpsPort}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited:\n${log()}`);
    try {
      if ((await cert.fetch(`${https}/healthz`, {})).ok) break;
    } catch {}
    if (i > 100) throw new Error(`nginx did not proxy /healthz:\n${log()}`);
    await sleep(100);
  }
  return {
    https,
    wss: `wss://127.0.0.1:${httpsPort}`,
    http: `http://127.0.0.1:${httpPort}`,
    stop: () => stopGroup(child, gone),
    log,
  };
}

/** A WebSocket through nginx from a chosen loopback source address; resolves once open or refused. */
function open(
  url: string,
  from = "127.0.0.1",
  headers: Record<string, string> = {},
): Promise<{ socket: WebSocket; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { ca: cert.ca, localAddress: from, headers });
    socket.once("open", () => resolve({ socket, status: 101, body: "" }));
    socket.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d));
      res.on("end", () => resolve({ socket, status: res.statusCode ?? 0, body }));
    });
    socket.once("error", reject);
  });
}

/** edgewire_connections summed over transports, read from an instance directly. */
async function connectionsOn(server: RunningServer): Promise<number> {
  const text = await (await fetch(`${server.http}/metrics`)).text();
  return [...text.matchAll(/^edgewire_connections(?:\{[^}]*\})? (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

describe("deploy/nginx.conf in front of two Node instances on Redis", { concurrency: 1, timeout: 120_000 }, () => {
  const prefix = testPrefix("nginx");
  const instances: RunningServer[] = [];
  let nginx: Nginx;

  before(async () => {
    assert.ok(existsSync(NGINX), `nginx not found at ${NGINX} (npm test installs it: scripts/ensure-system.sh)`);
    await requireRedis();
    const env = {
      REDIS_URL: SHARED_REDIS,
      EDGEWIRE_REDIS_PREFIX: prefix,
      EDGEWIRE_TRUSTED_PROXIES: "127.0.0.1",
      EDGEWIRE_MAX_CONNECTIONS_PER_ADDRESS: String(PER_ADDRESS),
      EDGEWIRE_HEARTBEAT_MS: "1000",
      EDGEWIRE_POLL_TIMEOUT_MS: "1500", // below nginx's read timeout, as the shipped file's comment asks
      EDGEWIRE_LOG_LEVEL: "warn",
    };
    instances.push(await startServer("node", env), await startServer("node", env));
    nginx = await startNginx(instances.map((s) => s.port));
  });
  after(async () => {
    await nginx?.stop();
    await Promise.all(instances.map((s) => s.stop()));
    await cleanup(SHARED_REDIS, prefix);
  });

  it("plain HTTP is sent to HTTPS", async () => {
    const res = await fetch(`${nginx.http}/healthz`, { redirect: "manual" });
    assert.equal(res.status, 308);
    assert.match(res.headers.get("location") ?? "", /^https:\/\/127\.0\.0\.1(:\d+)?\/healthz$/);
  });

  it("echo over wss:// through nginx: text and binary", async () => {
    const { socket, status } = await open(`${nginx.wss}/echo`);
    assert.equal(status, 101);
    const got: { data: Buffer; binary: boolean }[] = [];
    const two = new Promise<void>((r) =>
      socket.on("message", (data: Buffer, binary) => {
        got.push({ data, binary });
        if (got.length === 2) r();
      }),
    );
    socket.send("through the proxy");
    socket.send(Buffer.from([1, 2, 3, 250]));
    await withTimeout(two, 10_000, "two echoes");
    assert.equal(got[0]?.data.toString(), "through the proxy");
    assert.equal(got[0]?.binary, false);
    assert.deepEqual([...(got[1]?.data ?? [])], [1, 2, 3, 250]);
    socket.close();
  });

  it("a room through nginx spans both instances: one order, every member hears every message", async () => {
    const room = `nginx-${Date.now()}`;
    const members: RoomClient<{ n: number }>[] = [];
    const heard: number[][] = [];
    for (let i = 0; i < 4; i++) {
      const client = joinRoom<{ n: number }>(nginx.wss, room, { WebSocket: cert.WebSocket, transport: "websocket" });
      const mine: number[] = [];
      client.on("message", (m) => mine.push(m.seq));
      members.push(client);
      heard.push(mine);
      await withTimeout(client.ready, 10_000, "join");
    }
    try {
      // Round robin, no stickiness: both instances hold members of the room.
      const counts = await Promise.all(instances.map(connectionsOn));
      assert.ok(
        counts.every((n) => n >= 1),
        `members on both instances, got ${counts.join(" / ")}`,
      );
      const acks = [];
      for (let n = 0; n < 5; n++) acks.push((await (members[n % 4] as RoomClient<{ n: number }>).publish({ n })).seq);
      const deadline = Date.now() + 10_000;
      while (heard.some((h) => h.length < 5) && Date.now() < deadline) await sleep(20);
      for (const h of heard) assert.deepEqual(h, acks, "every member: every message, in the one order");
      assert.equal(members[0]?.count, 4, "presence counts members on both instances");
    } finally {
      for (const m of members) m.close();
    }
  });

  it("long-polling through nginx with no sticky sessions: messages both ways", async () => {
    const room = `nginx-poll-${Date.now()}`;
    const poller = joinRoom<{ text: string }>(nginx.https, room, { transport: "polling", fetch: cert.fetch });
    const ws = joinRoom<{ text: string }>(nginx.wss, room, { WebSocket: cert.WebSocket, transport: "websocket" });
    try {
      await withTimeout(Promise.all([poller.ready, ws.ready]), 15_000, "both joined");
      assert.equal(poller.transport, "polling");
      const toPoller: string[] = [];
      const toWs: string[] = [];
      poller.on("message", (m) => toPoller.push(m.data.text));
      ws.on("message", (m) => toWs.push(m.data.text));
      // Several rounds: the GETs and POSTs alternate between the instances; longer than a poll
      // timeout (1.5 s), so held GETs are answered empty and renewed through nginx too.
      for (let i = 0; i < 4; i++) {
        await ws.publish({ text: `to poller ${i}` });
        await poller.publish({ text: `from poller ${i}` });
        await sleep(600);
      }
      const deadline = Date.now() + 10_000;
      while ((toPoller.length < 8 || toWs.length < 8) && Date.now() < deadline) await sleep(20);
      const expected = [0, 1, 2, 3].flatMap((i) => [`to poller ${i}`, `from poller ${i}`]);
      assert.deepEqual(toPoller, expected);
      assert.deepEqual(toWs, expected);
    } finally {
      poller.close();
      ws.close();
    }
  });

  it(`a WebSocket idle past nginx's read timeout (${READ_TIMEOUT_S} s) stays open: the heartbeat keeps it alive`, async () => {
    const { socket } = await open(`${nginx.wss}/echo`);
    let pings = 0;
    let closed: number | undefined;
    socket.on("ping", () => pings++);
    socket.on("close", (code) => (closed = code));
    await sleep(READ_TIMEOUT_S * 1000 * 2);
    assert.equal(closed, undefined, "nginx did not close the idle connection");
    assert.ok(pings >= READ_TIMEOUT_S, `the instance pinged through nginx (${pings} pings)`);
    const echoed = new Promise<string>((r) => socket.once("message", (d: Buffer) => r(d.toString())));
    socket.send("still here");
    assert.equal(await withTimeout(echoed, 5000, "echo after idling"), "still here");
    socket.close();
  });

  it("the per-address limit counts the client's address as nginx saw it, not nginx's and not a forged header", async () => {
    // Two loopback addresses stand for two clients; nginx itself reaches the instances from 127.0.0.1.
    const held: WebSocket[] = [];
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const { socket, status, body } = await open(`${nginx.wss}/echo`, "127.0.0.2");
        statuses.push(status);
        if (status === 101) held.push(socket);
        else assert.match(body, /too_many_connections/);
      }
      // Round robin over two instances, PER_ADDRESS each: 4 of 6 open.
      assert.deepEqual(
        statuses.filter((s) => s === 101).length,
        2 * PER_ADDRESS,
        `statuses ${statuses.join(",")}: the limit applies to 127.0.0.2 on each instance`,
      );
      assert.ok(
        statuses.every((s) => s === 101 || s === 429),
        `refusals are 429, got ${statuses.join(",")}`,
      );
      // Claiming another address in X-Forwarded-For does not escape it: nginx appends the real one.
      for (let i = 0; i < 2; i++) {
        const forged = await open(`${nginx.wss}/echo`, "127.0.0.2", { "X-Forwarded-For": `198.51.100.${i + 1}` });
        assert.equal(forged.status, 429, "a forged X-Forwarded-For is not believed");
      }
      // Another client (address) is not affected by the first one's connections.
      const other = await open(`${nginx.wss}/echo`, "127.0.0.3");
      assert.equal(other.status, 101, "a second client address connects");
      held.push(other.socket);
    } finally {
      for (const s of held) s.close();
    }
  });
});
