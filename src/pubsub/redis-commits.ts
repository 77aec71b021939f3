/**
 * Room state transactions on a Redis fleet. Every commit is one Lua script (COMMIT) that checks the
 * state's version, sequences, stores and publishes the messages, and writes the state: both or
 * neither. Plain optimistic retries collapse under contention (instances racing on one version
 * mostly lose, each loss one more round trip), so each instance serializes a room's transactions
 * on its cached state and version and sends what queued during the last round trip as ONE commit
 * under one version check (group commit): N contending clients on an instance cost one round trip
 * per batch, not per transaction. A batch that lost the race (another instance committed first)
 * gets the fresh state in the same reply and runs again on it — its transactions are pure, so
 * running them again is safe — up to a bound, then `try_again_later`. The cache is warmed by joins
 * (the join script returns the state with the head), so a member's first commit is one round trip.
 * A batch that writes nothing (its transactions refused) is checked the same way: a refusal is
 * linearizable too, decided on the state Redis holds, never on a cache another instance outdated.
 * A fired timer's first commit carries the run's claim (redis-timers.ts) and drops it in the same
 * script; it commits in a batch of its own, so a spent claim refuses nobody else's transaction.
 */
import type { SequencedFrame } from "../protocol.ts";
import {
  BrokerUnavailableError,
  type ChangeFn,
  type Committed,
  type FiredTimer,
  framesOf,
  type RoomRef,
  TimerSpentError,
} from "./broker.ts";

/**
 * One round trip per commit. KEYS: seq, epoch, log, channel, state (a hash: v version, s JSON,
 * e the epoch it belongs to), turn, the room's timer runs (claim → lease end): the room's keys
 * only, as every room script's. ARGV: expected version, the next state ('' unchanged), the frame
 * count, a new epoch, MAXLEN, the idle TTL, refresh ('1'), this instance's id, take the turn ('1'),
 * a timer run's claim ('' none), then each frame's text before and after its seq. Another instance
 * holds the room's turn: {2}, nothing read or written. The claim is not among the room's runs any
 * more (another run of that firing committed): {3}, nothing written. A state of another epoch (the history was lost since) is no state: version 0.
 * The version does not match: {0, version, state}, nothing written (and the turn taken when asked,
 * so a batch that keeps losing commits next — no instance starves). Else {1, first seq, epoch,
 * version}, and the claim is spent.
 */
export const COMMIT = `local turn = redis.call('GET', KEYS[6])
if turn and turn ~= ARGV[8] then return {2} end
if ARGV[10] ~= '' and redis.call('HEXISTS', KEYS[7], ARGV[10]) == 0 then return {3} end
local epoch = redis.call('GET', KEYS[2])
if not epoch then epoch = ARGV[4]; redis.call('SET', KEYS[2], epoch) end
local st = redis.call('HMGET', KEYS[5], 'v', 's', 'e')
local v = 0
local s = false
if st[3] == epoch and st[1] then v = tonumber(st[1]); s = st[2] end
if v ~= tonumber(ARGV[1]) then
  if ARGV[9] == '1' then redis.call('SET', KEYS[6], ARGV[8], 'PX', 20) end
  return {0, v, s}
end
local first = 0
for i = 1, tonumber(ARGV[3]) do
  local seq = redis.call('INCR', KEYS[1])
  if i == 1 then first = seq end
  local frame = ARGV[9 + 2 * i] .. seq .. ARGV[10 + 2 * i]
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], seq .. '-0', 'f', frame)
  redis.call('PUBLISH', KEYS[4], 'm' .. seq .. ' ' .. frame)
end
local nv = v
if ARGV[2] ~= '' then
  nv = v + 1
  redis.call('HSET', KEYS[5], 'v', nv, 's', ARGV[2], 'e', epoch)
end
if ARGV[7] == '1' or first == 1 or v == 0 then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
  redis.call('PEXPIRE', KEYS[5], ARGV[6])
end
if turn then redis.call('DEL', KEYS[6]) end
if ARGV[10] ~= '' then redis.call('HDEL', KEYS[7], ARGV[10]) end
return {1, first, epoch, nv}`;

/** Losses in a row after which a batch takes the room's turn: the others wait (≤ 20 ms) while it commits. */
export const TURN_AFTER_LOSSES = 6;

/** How often a batch that lost the race runs again before its transactions are told to try again later. */
export const MAX_COMMIT_ATTEMPTS = 24;

/** What the committer needs of the broker: the script call, the room's keys, its settings. */
export interface CommitTarget {
  /** run COMMIT (EVALSHA); throws BrokerUnavailableError when Redis is away */
  commit(keys: string[], args: string[]): Promise<unknown>;
  /** KEYS of COMMIT for `ref` (with the timer keys a spending commit needs) */
  keys(ref: RoomRef): string[];
  /** a fresh epoch for a room that has none */
  newEpoch(): string;
  /** this instance's id (whose turn it is) */
  readonly instance: string;
  /** whether this commit refreshes the room's TTLs (nobody's heartbeat does) */
  refreshes(ref: RoomRef): boolean;
  readonly historyLimit: number;
  readonly idleMs: number;
  now(): number;
}

interface Pending {
  from: string;
  change: ChangeFn;
  /** a timer run's claim and its timer's name, spent by this commit */
  claim: { token: string; name: string } | undefined;
  resolve: (committed: Committed) => void;
  reject: (error: unknown) => void;
}

/** A room's commits on this instance: its state as last known, and what waits. */
interface RoomCommits {
  version: number;
  state: string | undefined;
  queue: Pending[];
  busy: boolean;
}

/** One transaction's run within a batch: its frames (numbered from 1 within the batch) or its refusal. */
type Outcome = { frames: SequencedFrame[] } | { error: unknown };

// A frame's JSON split around its seq, which the script puts in: `"type"` and `"room"` come first
// and a room name holds no quote, so the first `,"seq":` is the frame's own.
function around(frame: SequencedFrame): [string, string] {
  const text = JSON.stringify({ ...frame, seq: 0 });
  const at = text.indexOf(',"seq":0') + ',"seq":'.length;
  return [text.slice(0, at), text.slice(at + 1)];
}

/** The room state commits of one Redis broker instance. */
export class RedisCommits {
  readonly #target: CommitTarget;
  readonly #rooms = new Map<string, RoomCommits>();

  /** commits through `target` */
  constructor(target: CommitTarget) {
    this.#target = target;
  }

  /** what a join or a read found: the state at `version`, kept when newer than what is known */
  seen(ref: RoomRef, version: number, state: string | undefined): void {
    const room = this.#rooms.get(ref.key);
    if (!room) this.#rooms.set(ref.key, { version, state, queue: [], busy: false });
    else if (!room.busy && version >= room.version) {
      room.version = version;
      room.state = state;
    }
  }

  /** forget a room's cached state (no member here any more) unless a commit is under way */
  forget(ref: RoomRef): void {
    const room = this.#rooms.get(ref.key);
    if (room && !room.busy && room.queue.length === 0) this.#rooms.delete(ref.key);
  }

  /** commit `change` in `ref` for `from`, in this instance's order of the room's transactions; with `fired`, spending that run */
  commit(ref: RoomRef, from: string, change: ChangeFn, fired?: FiredTimer): Promise<Committed> {
    let room = this.#rooms.get(ref.key);
    if (!room) {
      // Unknown here: assumed new (version 0); the first commit's reply corrects it if not.
      room = { version: 0, state: undefined, queue: [], busy: false };
      this.#rooms.set(ref.key, room);
    }
    const queued = room;
    return new Promise((resolve, reject) => {
      const claim = fired?.token === undefined ? undefined : { token: fired.token, name: fired.timer.name };
      queued.queue.push({ from, change, claim, resolve, reject });
      if (!queued.busy) void this.#drain(ref, queued);
    });
  }

  async #drain(ref: RoomRef, room: RoomCommits): Promise<void> {
    room.busy = true;
    try {
      while (room.queue.length > 0) await this.#batch(ref, room, joining([], room.queue));
    } finally {
      room.busy = false;
    }
  }

  // Run the batch on the known state and commit it under that version; again on the fresh state
  // when another instance committed first.
  async #batch(ref: RoomRef, room: RoomCommits, batch: Pending[]): Promise<void> {
    const t = this.#target;
    const claim = batch[0]?.claim;
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      // A batch that writes nothing (every transaction refused, or changed nothing) still goes to
      // Redis: its version check is what says the refusals were decided on the latest state — the
      // cache follows this instance's commits and joins, not the others'.
      const { outcomes, state, changed, count } = runBatch(ref, batch, room.state, t.now());
      const texts = outcomes.flatMap((o) => ("frames" in o ? o.frames.flatMap(around) : []));
      const args = [
        String(room.version),
        changed ? (state as string) : "",
        String(count),
        t.newEpoch(),
        String(t.historyLimit),
        String(t.idleMs),
        t.refreshes(ref) ? "1" : "0",
        t.instance,
        attempt > TURN_AFTER_LOSSES ? "1" : "0",
        claim?.token ?? "",
        ...texts,
      ];
      let reply: [number, number, string | null, number?];
      try {
        reply = (await t.commit(t.keys(ref), args)) as typeof reply;
      } catch (error) {
        for (const p of batch) p.reject(error);
        return;
      }
      if (Number(reply[0]) === 1) {
        room.version = Number(reply[3]);
        room.state = state;
        return settle(batch, outcomes, Number(reply[1]) - 1);
      }
      if (Number(reply[0]) === 3) {
        for (const p of batch) p.reject(new TimerSpentError(ref.key, claim?.name ?? ""));
        return;
      }
      if (Number(reply[0]) === 2) {
        // Another instance's turn (it lost too often): wait it out, then run on what it left. Not a
        // loss; bounded all the same (a turn lasts at most 20 ms).
        attempt--;
        if (++waited > 200) {
          for (const p of batch) p.reject(new BrokerUnavailableError("redis: the room stayed busy: transact again"));
          return;
        }
        await new Promise((r) => setTimeout(r, 1));
        joining(batch, room.queue);
        continue;
      }
      // Lost the race: the reply holds the state that won; run the batch on it.
      room.version = Number(reply[1]);
      room.state = typeof reply[2] === "string" ? reply[2] : undefined;
      if (attempt >= MAX_COMMIT_ATTEMPTS) {
        const busy = new BrokerUnavailableError(
          `redis: the room's state changed under ${attempt} commits in a row (contention): transact again`,
        );
        for (const p of batch) p.reject(busy);
        return;
      }
      // Instances that retry at once collide again (each one's retry meets the others'): after a loss,
      // wait a random moment growing with the losses, and take what queued meanwhile into the batch —
      // a larger batch under one version check is what keeps round trips per commit near one.
      if (attempt > 1) await new Promise((r) => setTimeout(r, Math.random() * Math.min(8, attempt)));
      joining(batch, room.queue);
    }
  }
}

// The batch's transactions in order, each on the state the one before it left; the frames are
// numbered from 1 within the batch.
function runBatch(ref: RoomRef, batch: Pending[], known: string | undefined, ts: number) {
  let state = known;
  let changed = false;
  let count = 0;
  const outcomes: Outcome[] = batch.map((p) => {
    try {
      const made = p.change(state);
      const frames = framesOf(ref.name, p.from, ts, count, made);
      count += frames.length;
      if (made.state !== undefined) {
        state = made.state;
        changed = true;
      }
      return { frames };
    } catch (error) {
      return { error };
    }
  });
  return { outcomes, state, changed, count };
}

// `batch` with what queued after it: a timer run's commit goes alone, so its claim (spent or not)
// is no other transaction's concern.
function joining(batch: Pending[], queue: Pending[]): Pending[] {
  if (batch[0]?.claim) return batch;
  let n = 0;
  while (n < queue.length && !queue[n]?.claim) n++;
  if (n === 0 && batch.length === 0) n = 1;
  batch.push(...queue.splice(0, n));
  return batch;
}

// Resolve each transaction with its frames, their seqs now known (`base` + their place in the
// batch), or reject it with its refusal.
function settle(batch: Pending[], outcomes: Outcome[], base: number): void {
  batch.forEach((p, i) => {
    const o = outcomes[i] as Outcome;
    if ("error" in o) p.reject(o.error);
    else p.resolve({ frames: o.frames.map((f) => ({ ...f, seq: base + f.seq })) });
  });
}
