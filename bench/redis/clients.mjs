// Which Redis client for the fleet broker: ioredis or node-redis, on Node, Deno and Bun.
// The broker's hot call is one Lua script per publish (INCR + XADD + PUBLISH), sent
// concurrently (pipelined), and its subscriber receives one message per publish.
// Run: node bench/redis/clients.mjs | deno run -A bench/redis/clients.mjs | bun bench/redis/clients.mjs
// (see bench/results/README.md for the figures).
import IORedis from "ioredis";
import { createClient } from "@redis/client";

const URL = globalThis.process?.env?.REDIS_URL ?? "redis://127.0.0.1:6379/14";
const N = 20000;
const SCRIPT = `local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, seq .. '-0', 'f', ARGV[1] .. seq .. ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[1] .. seq .. ARGV[2])
return seq`;
const runtime = globalThis.Bun ? "bun" : globalThis.Deno ? "deno" : "node";
const now = () => performance.now();

async function ioredis() {
  const pub = new IORedis(URL, { enableAutoPipelining: true, lazyConnect: true });
  const sub = new IORedis(URL, { lazyConnect: true });
  await pub.connect();
  await sub.connect();
  pub.defineCommand("publishSeq", { numberOfKeys: 3, lua: SCRIPT });
  let got = 0;
  let done;
  const all = new Promise((r) => (done = r));
  sub.on("message", () => {
    if (++got === N) done();
  });
  await sub.subscribe("bench:ch:io");
  const t0 = now();
  await Promise.all(Array.from({ length: N }, () => pub.publishSeq("bench:seq:io", "bench:st:io", "bench:ch:io", '{"seq":', ',"data":"x"}')));
  const t1 = now();
  await all;
  const t2 = now();
  let seqMs = now();
  for (let i = 0; i < 2000; i++) await pub.publishSeq("bench:seq:io", "bench:st:io", "bench:ch:io", "a", "b");
  seqMs = (now() - seqMs) / 2000;
  await pub.del("bench:seq:io", "bench:st:io");
  pub.disconnect();
  sub.disconnect();
  return { pipelinedPerSec: Math.round(N / ((t1 - t0) / 1000)), deliveredPerSec: Math.round(N / ((t2 - t0) / 1000)), roundTripMs: +seqMs.toFixed(3) };
}

async function nodeRedis() {
  const pub = createClient({ url: URL, scripts: {} });
  const sub = pub.duplicate();
  await pub.connect();
  await sub.connect();
  const sha = await pub.scriptLoad(SCRIPT);
  let got = 0;
  let done;
  const all = new Promise((r) => (done = r));
  await sub.subscribe("bench:ch:nr", () => {
    if (++got === N) done();
  });
  const call = () => pub.evalSha(sha, { keys: ["bench:seq:nr", "bench:st:nr", "bench:ch:nr"], arguments: ['{"seq":', ',"data":"x"}'] });
  const t0 = now();
  await Promise.all(Array.from({ length: N }, call));
  const t1 = now();
  await all;
  const t2 = now();
  let seqMs = now();
  for (let i = 0; i < 2000; i++) await call();
  seqMs = (now() - seqMs) / 2000;
  await pub.del(["bench:seq:nr", "bench:st:nr"]);
  await pub.quit();
  await sub.quit();
  return { pipelinedPerSec: Math.round(N / ((t1 - t0) / 1000)), deliveredPerSec: Math.round(N / ((t2 - t0) / 1000)), roundTripMs: +seqMs.toFixed(3) };
}

for (const [name, run] of [["ioredis", ioredis], ["redis", nodeRedis]]) {
  try {
    console.log(JSON.stringify({ runtime, client: name, ...(await run()) }));
  } catch (error) {
    console.log(JSON.stringify({ runtime, client: name, error: String(error?.message ?? error) }));
  }
}
globalThis.process?.exit?.(0);
