/**
 * Room state on a fleet (examples/auction in examples/hono-app): Node, Deno and Bun instances on
 * one Redis, 30 bidders spread over them bidding as fast as they can, the instance holding the
 * seller (whose join scheduled the deadline) killed with SIGKILL halfway. What must hold: the
 * accepted bids strictly increase in seq order, every bid acknowledged to a bidder is in the
 * history, every surviving member's final view equals the state in Redis, and the deadline —
 * scheduled by the killed instance — closes the auction exactly once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@redis/client";
import { cleanup, requireRedis, SHARED_REDIS, testPrefix } from "../support/redis.ts";
import { type RunningServer, type RuntimeName, startModule } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";

const KEY = "demo-key";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type View = { best: { amount: number; bidder: string } | null; bids: number; closed: boolean };
type Frame = { type: string; id?: string; seq?: number; code?: string; view?: View; data?: { type: string } };

/** A member reading every frame: the view as of the last frame that carried one, and its bids' answers. */
class Bidder {
  view: View | undefined;
  readonly acked: { seq: number; amount: number; at: number }[] = [];
  /** refusals by code */
  readonly refused: Record<string, number> = {};
  closedSeen = 0;
  #waiting: ((frame: Frame) => void) | undefined;
  #ids = 0;
  #done = false;
  constructor(
    readonly socket: TestSocket,
    readonly name: string,
  ) {}

  static async join(s: RunningServer, item: string, name: string, query = ""): Promise<Bidder> {
    const socket = new TestSocket(`${s.ws}/realtime/auction/${item}?key=${KEY}&name=${name}${query}`, "edgewire.v1");
    await withTimeout(socket.opened, 15_000, `${name} joins`);
    const bidder = new Bidder(socket, name);
    void bidder.#read();
    return bidder;
  }

  async #read(): Promise<void> {
    for (;;) {
      let frame: Frame;
      try {
        frame = await this.socket.json<Frame>(60_000);
      } catch {
        this.#done = true;
        this.#waiting?.({ type: "gone" });
        return;
      }
      if (frame.view) this.view = frame.view;
      if (frame.type === "message" && frame.data?.type === "closed") this.closedSeen++;
      if (frame.type === "ack" || frame.type === "error") this.#waiting?.(frame);
    }
  }

  /** bid until the auction closes, the connection is gone, or `stop` says so */
  async bidAsFastAsItCan(stop: () => boolean): Promise<void> {
    while (!stop() && !this.#done && !this.view?.closed) {
      const amount = (this.view?.best?.amount ?? 0) + 5 + Math.floor(Math.random() * 3);
      const id = `${this.name}-${this.#ids++}`;
      const answer = new Promise<Frame>((resolve) => {
        this.#waiting = resolve;
      });
      try {
        this.socket.sendJson({ type: "publish", id, data: { type: "bid", amount } });
      } catch {
        return;
      }
      const frame = await answer;
      if (frame.type === "ack" && typeof frame.seq === "number")
        this.acked.push({ seq: frame.seq, amount, at: Date.now() });
      else if (frame.type === "error") this.refused[frame.code ?? "?"] = (this.refused[frame.code ?? "?"] ?? 0) + 1;
      else return;
    }
  }
}

describe("auction on a Redis fleet", { timeout: 180_000 }, () => {
  const prefix = testPrefix("auction-fleet");
  const servers = new Map<RuntimeName, RunningServer>();
  before(async () => {
    await requireRedis();
    const env = {
      REDIS_URL: SHARED_REDIS,
      EDGEWIRE_REDIS_PREFIX: prefix,
      EDGEWIRE_LOG_LEVEL: "warn",
      // Every bid of the run stays in history, so each acknowledged one can be found there.
      EDGEWIRE_HISTORY_LIMIT: "100000",
      EDGEWIRE_RATE_LIMIT: "100000",
      EDGEWIRE_RATE_BURST: "100000",
    };
    for (const r of ["node", "deno", "bun"] as const)
      servers.set(r, await startModule(r, { entry: "examples/hono-app/app.ts", health: "/realtime/healthz", env }));
  });
  after(async () => {
    await Promise.all([...servers.values()].map((s) => s.stop()));
    await cleanup(SHARED_REDIS, prefix);
  });

  it("30 bidders on three instances, one killed halfway: bids strictly increase, nothing acknowledged lost, every view is Redis's, the deadline closes it once", async () => {
    const item = `lot-${Date.now().toString(36)}`;
    const victim = servers.get("bun") as RunningServer;
    // The seller joins the instance that will be killed: its join schedules the deadline, in Redis.
    const seller = await Bidder.join(victim, item, "seller", "&role=seller&closeIn=10000");
    const started = Date.now();
    const bidders: Bidder[] = [];
    for (const [r, s] of servers) for (let i = 0; i < 10; i++) bidders.push(await Bidder.join(s, item, `${r}${i}`));
    const running = bidders.map((b) => b.bidAsFastAsItCan(() => Date.now() - started > 15_000));
    await sleep(5000);
    const killedAt = Date.now();
    victim.signal("SIGKILL");
    await victim.exited;
    await Promise.all(running);
    // Past the deadline (10 s) and a timer poll: the auction is closed, by a survivor.
    await sleep(Math.max(0, started + 11_500 - Date.now()));

    const redis = createClient({ url: SHARED_REDIS });
    await redis.connect();
    const entries = await redis.xRange(`${prefix}r:auction:${item}:log`, "-", "+");
    const state = JSON.parse((await redis.hGet(`${prefix}r:auction:${item}:st`, "s")) ?? "null") as View & {
      offers: unknown;
    };
    await redis.quit();
    const history = entries.map(
      (e) =>
        JSON.parse(String(e.message.f)) as { seq: number; data: { type: string; amount: number | null }; view: View },
    );
    const bids = history.filter((f) => f.data.type === "bid");
    const closes = history.filter((f) => f.data.type === "closed");
    assert.equal(closes.length, 1, "the deadline closed the auction exactly once");
    assert.ok(state.closed, "closed in Redis");
    for (let i = 1; i < bids.length; i++) {
      assert.ok((bids[i]?.seq ?? 0) > (bids[i - 1]?.seq ?? 0));
      assert.ok(
        (bids[i]?.data.amount ?? 0) >= (bids[i - 1]?.data.amount ?? 0) + 5,
        `bid ${bids[i]?.seq} beats ${bids[i - 1]?.seq} by the increment`,
      );
    }
    const bySeq = new Map(history.map((f) => [f.seq, f]));
    const acked = bidders.flatMap((b) => b.acked);
    for (const a of acked)
      assert.equal(bySeq.get(a.seq)?.data.amount, a.amount, `acknowledged bid ${a.seq} is in the history`);
    const view = { best: state.best, bids: state.bids, closed: state.closed };
    const survivors = bidders.filter((b) => !b.name.startsWith("bun"));
    await sleep(500);
    for (const b of survivors) assert.deepEqual(b.view, view, `${b.name}'s view is the state in Redis`);
    assert.equal(state.bids, bids.length, "the state counts exactly the bids in history");
    // The fleet went on bidding: acknowledged bids in number, and from the survivors after the kill.
    assert.ok(acked.length >= 100, `bids were acknowledged (${acked.length})`);
    const afterKill = acked.filter((a) => a.at > killedAt + 1000).length;
    assert.ok(afterKill >= 10, `the survivors went on acknowledging bids after the kill (${afterKill})`);
    const refused: Record<string, number> = {};
    for (const b of bidders)
      for (const [code, n] of Object.entries(b.refused)) refused[code] = (refused[code] ?? 0) + n;
    const unexpected = Object.keys(refused).filter(
      (c) => !["bid_too_low", "auction_closed", "try_again_later"].includes(c),
    );
    assert.deepEqual(unexpected, [], "refused only as too low, closed, or try again later");
    console.log(
      `auction fleet: ${bids.length} bids accepted, ${acked.length} of them acknowledged to their bidders (all in history; ${afterKill} after the kill), refused ${JSON.stringify(refused)}; closed once, at seq ${closes[0]?.seq}`,
    );
    for (const b of [...survivors, seller]) await b.socket.close().catch(() => {});
  });
});
