/**
 * Long-polling load (edgewire's fallback transport, docs/protocol.md): K
 * sessions on /echo, each with one GET always held and one POST at a time
 * carrying a timestamped text frame; latency is POST-to-echo-received. The
 * client is Node (HTTP + JSON; not worth a C client), so these runs are
 * usually client-bound: read them as "what one Node client gets", not as the
 * server's ceiling.
 */
import { Agent, request } from "node:http";
import { cpuSeconds } from "./proc.ts";

/** What one long-polling run measured (the same field names as loadgen where they mean the same). */
export interface PollResult {
  sessions: number;
  seconds: number;
  msgs: number;
  msgs_per_s: number;
  lat_us: { p50: number; p95: number; p99: number; max: number };
  server_cpu: number;
  client_cpu: number;
  server_us_per_msg: number;
  errors: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4096 });

function call(base: URL, method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolveCall, reject) => {
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path,
        agent,
        headers: body === undefined ? {} : { "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => resolveCall({ status: res.statusCode ?? 0, text }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

/** true when the server answers `POST /echo/poll` with a session */
export async function supportsLongPoll(http: string): Promise<boolean> {
  try {
    const res = await call(new URL(http), "POST", "/echo/poll", "");
    return res.status === 200 && typeof JSON.parse(res.text).sid === "string";
  } catch {
    return false;
  }
}

/** Run `sessions` long-polling echo sessions for `seconds` after `warmup` seconds. */
export async function runLongPoll(
  http: string,
  sessions: number,
  warmup: number,
  seconds: number,
  pids: number[],
  size: number,
): Promise<PollResult> {
  const base = new URL(http);
  const lat: number[] = [];
  let msgs = 0;
  let errors = 0;
  let measuring = false;
  let running = true;
  const pad = "x".repeat(Math.max(1, size - 20));
  const one = async () => {
    const open = await call(base, "POST", "/echo/poll", "");
    const sid = JSON.parse(open.text).sid as string;
    let cursor = 0;
    let n = 0;
    while (running) {
      const sent = process.hrtime.bigint();
      n++;
      const post = call(base, "POST", `/echo/poll/${sid}`, JSON.stringify({ n, frames: [{ t: `${sent}:${pad}` }] }));
      let got = false;
      for (let tries = 0; !got && tries < 5 && running; tries++) {
        const res = await call(base, "GET", `/echo/poll/${sid}?cursor=${cursor}`);
        if (res.status !== 200) {
          errors++;
          break;
        }
        const body = JSON.parse(res.text) as { cursor: number; frames: { t?: string }[] };
        cursor = body.cursor;
        if (body.frames.some((f) => f.t?.startsWith(`${sent}:`))) got = true;
      }
      await post;
      if (got && measuring) {
        lat.push(Number(process.hrtime.bigint() - sent) / 1000);
        msgs++;
      }
    }
    await call(base, "DELETE", `/echo/poll/${sid}?code=1000&reason=done`).catch(() => {});
  };
  const all = Array.from({ length: sessions }, () => one().catch(() => void errors++));
  await new Promise((r) => setTimeout(r, warmup * 1000));
  measuring = true;
  const c0 = process.cpuUsage();
  const s0 = cpuSeconds(pids);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const took = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  const s1 = cpuSeconds(pids);
  running = false;
  await Promise.race([Promise.all(all), new Promise((r) => setTimeout(r, 5000))]);
  lat.sort((a, b) => a - b);
  const pct = (p: number): number =>
    lat.length ? (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? -1) : -1;
  return {
    sessions,
    seconds: took,
    msgs,
    msgs_per_s: msgs / took,
    lat_us: { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: lat.at(-1) ?? -1 },
    server_cpu: (s1 - s0) / took,
    client_cpu: (c1.user + c1.system) / 1e6 / took,
    server_us_per_msg: msgs ? ((s1 - s0) * 1e6) / msgs : -1,
    errors,
  };
}
