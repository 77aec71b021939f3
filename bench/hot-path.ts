/**
 * The JavaScript a room update costs the server, in process, with no sockets: the engine with the
 * bench's `/cast/:room` route (a broadcast to the others), the service's `/rooms/:room` (a
 * sequenced publish) and MessagePack members, 50 fake members whose runtime "publish" only counts.
 * It prints ns per update for each path, so a change to the path is read in isolation from the
 * kernel and the load client (the many-to-many scenario measures the whole). Run it on the
 * runtime whose figure you read:
 *
 *   bun bench/hot-path.ts        node --import tsx bench/hot-path.ts        deno run -A bench/hot-path.ts
 */

import { Engine } from "../src/core/engine.ts";
import type { ConnRecord, Frame, Peer } from "../src/core/ports.ts";
import { encodeValue } from "../src/msgpack.ts";
import { MSGPACK_SUBPROTOCOL } from "../src/protocol.ts";
import { MemoryBroker } from "../src/pubsub/memory.ts";
import { cast } from "./targets/edgewire-service.ts";

const MEMBERS = 50;
const UPDATES = Number(process.argv.find((a) => a.startsWith("--updates="))?.slice(10) ?? 400_000);

class Member implements Peer {
  context: unknown;
  sent = 0;
  constructor(readonly record: ConnRecord) {}
  send(_frame: Frame): void {
    this.sent++;
  }
  close(): void {}
  subscribe(): void {}
  publishOthers(_topic: string, _frame: Frame): void {
    published++;
  }
}

let published = 0;
let ids = 0;

function room(packed: boolean): { engine: Engine; members: Member[] } {
  const engine = new Engine({
    routes: [cast],
    broker: new MemoryBroker(),
    publish: () => void published++,
    rate: { perSecond: 1e9, burst: 1e9 },
    log: () => {},
  });
  const members: Member[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    const record: ConnRecord = {
      v: 1,
      id: `m${String(ids++).padStart(15, "0")}`,
      route: "cast",
      room: "r0",
      protocol: packed ? MSGPACK_SUBPROTOCOL : "",
      seq: 0,
      at: Date.now(),
    };
    const m = new Member(record);
    engine.opened(m);
    members.push(m);
  }
  return { engine, members };
}

async function measure(name: string, packed: boolean): Promise<void> {
  const { engine, members } = room(packed);
  await new Promise((r) => setTimeout(r, 50)); // welcomes
  const pad = "x".repeat(24);
  const frameOf = (i: number): Frame =>
    packed
      ? encodeValue({ type: "publish", data: { bt: i, s: i % MEMBERS, p: pad } })
      : `{"type":"publish","data":{"bt":${i},"s":${i % MEMBERS},"p":"${pad}"}}`;
  const frames = Array.from({ length: 1000 }, (_, i) => frameOf(1_700_000_000_000 + i));
  // One update per task turn, as a socket's message event is: what it queued (promises) settles
  // before the next, so none pile up into garbage no server would make.
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const m = members[i % MEMBERS] as Member;
      engine.message(m, frames[i % 1000] as Frame, !packed);
      await undefined;
    }
  };
  await run(UPDATES / 4); // warm up
  await new Promise((r) => setTimeout(r, 10));
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    await run(UPDATES);
    rounds.push(((performance.now() - t) * 1e6) / UPDATES);
    await new Promise((r) => setTimeout(r, 10));
  }
  rounds.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(28)} ${rounds[2]?.toFixed(0).padStart(6)} ns per update (rounds ${rounds[0]?.toFixed(0)}–${rounds[4]?.toFixed(0)})`,
  );
}

const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7);
if (only !== "msgpack") await measure("cast (JSON broadcast)", false);
if (only !== "json") await measure("cast (MessagePack broadcast)", true);
console.log(`(${published} native publishes)`);
process.exit(0);
