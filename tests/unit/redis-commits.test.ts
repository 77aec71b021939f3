/**
 * The Redis fleet's commit loop (src/pubsub/redis-commits.ts) against a scripted Redis: a batch that
 * loses the race runs again on the state that won, a batch that keeps losing takes the room's turn
 * and then gives up after a bound — and the client it was for gets `try_again_later` with its
 * publish's id, no ack and no message: never a silent loss. (Real Redis races are in
 * tests/conformance/redis-room-state.test.ts; here the losses are forced, so the bounds are reached.)
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { type AnyRoute, defineRoom } from "../../src/index.ts";
import { BrokerUnavailableError, type ChangeFn, type Committed, roomRef } from "../../src/pubsub/broker.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import {
  type CommitTarget,
  MAX_COMMIT_ATTEMPTS,
  RedisCommits,
  TURN_AFTER_LOSSES,
} from "../../src/pubsub/redis-commits.ts";
import { engineWith, FakePeer, record, settle } from "../support/fakes.ts";

/** A scripted COMMIT: each call gets the reply `answer` makes of its arguments; every call is kept. */
function scripted(answer: (args: string[], call: number) => unknown): CommitTarget & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    commit: async (_keys, args) => {
      calls.push(args);
      return answer(args, calls.length);
    },
    keys: (ref) => [ref.key],
    newEpoch: () => "e1",
    instance: "i1",
    refreshes: () => false,
    historyLimit: 100,
    idleMs: 60_000,
    now: () => 1,
  };
}

/** "+1" on a JSON counter; counts its runs. */
function adder(): { change: ChangeFn; runs: () => number } {
  let runs = 0;
  const change: ChangeFn = (stored) => {
    runs++;
    const n = stored === undefined ? 0 : (JSON.parse(stored) as { n: number }).n;
    return { state: JSON.stringify({ n: n + 1 }), messages: [{ n: n + 1 }] };
  };
  return { change, runs: () => runs };
}

const ref = roomRef("counter", "r");
// ARGV of COMMIT: [0] the expected version, [1] the next state, [8] take the turn.
const EXPECTED = 0;
const NEXT = 1;
const TAKE_TURN = 8;

describe("Redis commits (scripted)", { timeout: 20_000 }, () => {
  it("a batch that lost the race runs again on the state that won, and commits under its version", async () => {
    const target = scripted((args, call) =>
      call === 1 ? [0, 7, JSON.stringify({ n: 41 })] : [1, 12, "e1", Number(args[EXPECTED]) + 1],
    );
    const commits = new RedisCommits(target);
    const add = adder();
    const committed = await commits.commit(ref, "a", add.change);
    assert.deepEqual(
      target.calls.map((a) => [a[EXPECTED], a[NEXT]]),
      [
        ["0", '{"n":1}'],
        ["7", '{"n":42}'],
      ],
      "the second run is on the winner's state and version",
    );
    assert.equal(add.runs(), 2, "the transaction ran again: it may run more than once");
    assert.equal(committed.frames[0]?.seq, 12);
  });

  it("a batch that keeps losing takes the room's turn after a few losses, then gives up after the bound", async () => {
    let version = 0;
    const target = scripted(() => [0, ++version, JSON.stringify({ n: version })]);
    const commits = new RedisCommits(target);
    const add = adder();
    const outcome = await commits.commit(ref, "a", add.change).then(
      (c: Committed) => c,
      (e: unknown) => e,
    );
    assert.ok(outcome instanceof BrokerUnavailableError, `gave up: ${String(outcome)}`);
    assert.equal(target.calls.length, MAX_COMMIT_ATTEMPTS, "bounded");
    assert.equal(add.runs(), MAX_COMMIT_ATTEMPTS);
    assert.deepEqual(
      target.calls.map((a) => a[TAKE_TURN]),
      Array.from({ length: MAX_COMMIT_ATTEMPTS }, (_, i) => (i + 1 > TURN_AFTER_LOSSES ? "1" : "0")),
      "the turn is asked for after TURN_AFTER_LOSSES losses in a row",
    );
  });

  it("a room another instance holds the turn of forever: waited out a bounded while, then given up", async () => {
    const target = scripted(() => [2]);
    const commits = new RedisCommits(target);
    const outcome = await commits.commit(ref, "a", adder().change).then(
      () => "committed",
      (e: unknown) => e,
    );
    assert.ok(outcome instanceof BrokerUnavailableError);
    assert.equal(target.calls.length, 201, "200 waits, then no more calls");
  });

  it("through the route: the member whose transaction gave up gets try_again_later with its id — no ack, no message", async () => {
    let version = 0;
    const target = scripted(() => [0, ++version, JSON.stringify({ n: version })]);
    const commits = new RedisCommits(target);
    // The memory broker for everything else; its commits go through the scripted Redis loop.
    const broker = new (class extends MemoryBroker {
      override commit(r: typeof ref, from: string, change: ChangeFn): Promise<Committed> {
        return commits.commit(r, from, change);
      }
    })();
    const counter = defineRoom({
      path: "/counter/:room",
      roomState: v.object({ n: v.optional(v.number(), 0) }),
      message: (ctx) => ctx.room.transact((state) => ({ state: { n: state.n + 1 }, publish: [{ n: state.n + 1 }] })),
    });
    const engine = engineWith({ routes: [counter as AnyRoute], broker });
    const peer = new FakePeer(record(counter.name, "r"));
    engine.opened(peer);
    await settle();
    engine.message(peer, JSON.stringify({ type: "publish", id: "p1", data: {} }));
    for (let i = 0; i < 50 && peer.ofType("error").length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      peer.ofType<{ code: string; id: string }>("error").map((e) => [e.code, e.id]),
      [["try_again_later", "p1"]],
    );
    assert.deepEqual(peer.ofType("ack"), [], "not acknowledged: nothing was stored");
    assert.deepEqual(peer.ofType("message"), []);
    assert.equal(peer.closed, undefined, "the connection stays open: the client publishes again");
  });
});
