// What the publish script costs Redis itself: Redis's own CPU per call (from /proc/<pid>/stat, so a
// Redis on this machine) for the broker's publish script and for variants without parts of it.
// 32 calls in flight, as the fleet bench's publisher keeps. Run: node bench/redis/script-cost.mjs
// (REDIS_URL, default redis://127.0.0.1:6379/14; keys under bench:script-cost:, removed after).
import { readFileSync } from "node:fs";
import { createClient } from "@redis/client";

const URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379/14";
const N = 40_000;
const K = ["bench:script-cost:seq", "bench:script-cost:epoch", "bench:script-cost:log", "bench:script-cost:c"];
const INCR = `local seq = redis.call('INCR', KEYS[1])
local epoch = redis.call('GET', KEYS[2])
if not epoch then epoch = ARGV[3]; redis.call('SET', KEYS[2], epoch) end
local frame = ARGV[1] .. seq .. ARGV[2]
`;
const XADD = "redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'f', frame)\n";
const PUBLISH = "redis.call('PUBLISH', KEYS[4], 'm' .. seq .. ' ' .. frame)\n";
const EXPIRE = "for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end\n";
const RETURN = "return {seq, epoch}";
const variants = {
  "with 3 PEXPIRE per publish (before 2036817)": INCR + XADD + PUBLISH + EXPIRE + RETURN,
  "without them (the broker now)": INCR + XADD + PUBLISH + RETURN,
  "without XADD (no history)": INCR + PUBLISH + RETURN,
  "an empty script": "return {1, 'x'}",
};
const head = '{"type":"message","room":"bench-fanout-1000m-burst-3-12345","seq":';
const tail = ',"from":"AAAAAAAAAAAAAAAA","data":{"bt":1764640000000000,"p":"xxxxxxxxxxxxxxxx"},"ts":1764640000000}';

const client = createClient({ url: URL });
await client.connect();
const sub = client.duplicate();
await sub.connect();
await sub.subscribe(K[3], () => {});
const pid = Number(/process_id:(\d+)/.exec(await client.info("server"))?.[1]);
// utime + stime, in clock ticks (1/100 s)
const ticks = () =>
  readFileSync(`/proc/${pid}/stat`, "utf8")
    .split(") ")[1]
    .split(" ")
    .slice(11, 13)
    .reduce((a, b) => a + Number(b), 0);
for (const round of [1, 2])
  for (const [name, script] of Object.entries(variants)) {
    const sha = await client.scriptLoad(script);
    await client.del(K.slice(0, 3));
    const t0 = ticks();
    for (let i = 0; i < N; i += 32)
      await Promise.all(
        Array.from({ length: 32 }, () =>
          client.evalSha(sha, { keys: K, arguments: [head, tail, "EPOCHEPOCHEPOCH1", "1000", "600000"] }),
        ),
      );
    console.log(`round ${round}: ${name}: ${(((ticks() - t0) * 10_000) / N).toFixed(1)} µs of Redis CPU per publish`);
  }
await client.del(K.slice(0, 3));
await sub.close();
await client.close();
