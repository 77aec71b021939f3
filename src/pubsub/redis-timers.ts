/**
 * Room timers on a Redis fleet: the schedule lives in Redis, so a timer fires even when the
 * instance that scheduled it was killed, and one instance fires it. Every instance polls (every
 * 250 ms) with one script that claims the due timers: moved from the schedule to a lease (30 s by
 * default), atomically, so no two instances take the same one, and recorded among its room's
 * runs. The claim travels with the run's first commit, and the commit script — which touches the
 * room's keys only — drops it from the room's runs in the same step as the state and messages; a
 * commit that finds it gone (another run of that firing committed) is refused. A claimer that dies
 * mid-run leaves a lease that expires: if its run had committed, the next claim finds the run
 * spent and drops the lease; if not, another instance runs the timer again, and its commit is the
 * one. So a timer takes effect once. Keys: `<p>timers` (schedule: member → due time),
 * `<p>timer-leases` (member → lease end), `<p>td:<room>` (a room's timers by name → member),
 * `<p>r:<room>:runs` (the room's runs not yet spent: member → lease end); a member is the JSON
 * `[room key, name, at, data]`, so a claim carries what it runs. The claim script spans rooms (it
 * finds the room's keys from the member and ARGV's prefix), as the schedule does.
 */
import type { RedisClientType } from "@redis/client";
import type { RoomRef, RoomTimer, TimerRunner, TimerStore } from "./broker.ts";

/** How often an instance looks for due timers. */
export const TIMER_POLL_MS = 250;
/** How long a claimed timer is an instance's to run before another may take it (default). */
export const TIMER_LEASE_MS = 30_000;

// KEYS: schedule, leases, the room's timers. ARGV: name, member, at. Replaces a pending timer of that
// name; one that is running runs on (its lease is its own), as after cancel.
const SCHEDULE = `local old = redis.call('HGET', KEYS[3], ARGV[1])
if old then redis.call('ZREM', KEYS[1], old) end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1`;

// KEYS: schedule, the room's timers. ARGV: name. 1 when one was pending (a running one runs on).
const CANCEL = `local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], old)`;

// KEYS: schedule, leases. ARGV: now, lease end, most, the key prefix. Due timers, leased to the
// caller and recorded among their room's runs; expired leases whose run was not spent, leased again
// (one that was spent — committed, its claimer gone before it said so — is dropped, with its entry).
const CLAIM = `local function room(m)
  local timer = cjson.decode(m)
  return ARGV[4] .. 'r:' .. timer[1] .. ':runs', ARGV[4] .. 'td:' .. timer[1], timer[2]
end
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZADD', KEYS[2], ARGV[2], m)
  redis.call('HSET', (room(m)), m, ARGV[2])
  out[#out + 1] = m
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])) do
  local runs, timers, name = room(m)
  if redis.call('HEXISTS', runs, m) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[2], m)
    redis.call('HSET', runs, m, ARGV[2])
    out[#out + 1] = m
  else
    redis.call('ZREM', KEYS[2], m)
    if redis.call('HGET', timers, name) == m then redis.call('HDEL', timers, name) end
  end
end
return out`;

// KEYS: leases, the room's timers, the room's runs. ARGV: member, name. Ran: the lease and the run
// go, and the timer's entry unless it was replaced meanwhile.
const DONE = `redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1`;

/** What the timers need of the broker: its command client, script call and key prefix. */
export interface TimerTarget {
  readonly client: RedisClientType;
  readonly prefix: string;
  eval(script: string, keys: string[], args: string[]): Promise<unknown>;
  now(): number;
  /** failures that fire nothing (a poll while Redis is away) */
  warn(message: string, error: unknown): void;
  /** how long a claim is the claimer's (default TIMER_LEASE_MS) */
  readonly leaseMs?: number;
}

/** Room timers in Redis, fired by whichever instance claims them first. */
export class RedisTimers implements TimerStore {
  /** the scripts, for the broker to load with its own */
  static readonly scripts = [SCHEDULE, CANCEL, CLAIM, DONE];
  readonly #t: TimerTarget;
  #poll: ReturnType<typeof setInterval> | undefined;
  #polling = false;

  /** timers through `target` */
  constructor(target: TimerTarget) {
    this.#t = target;
  }

  #room(ref: RoomRef): string {
    return `${this.#t.prefix}td:${ref.key}`;
  }

  get #schedule(): string {
    return `${this.#t.prefix}timers`;
  }

  /** the room's runs not yet spent (claim → lease end): the key a commit spends a run from */
  runsKey(ref: RoomRef): string {
    return `${this.#t.prefix}r:${ref.key}:runs`;
  }

  get #leases(): string {
    return `${this.#t.prefix}timer-leases`;
  }

  async schedule(ref: RoomRef, timer: RoomTimer): Promise<void> {
    const member = JSON.stringify([ref.key, timer.name, timer.at, timer.data ?? null]);
    await this.#t.eval(
      SCHEDULE,
      [this.#schedule, this.#leases, this.#room(ref)],
      [timer.name, member, String(timer.at)],
    );
  }

  async cancel(ref: RoomRef, name: string): Promise<boolean> {
    return Number(await this.#t.eval(CANCEL, [this.#schedule, this.#room(ref)], [name])) === 1;
  }

  async list(ref: RoomRef): Promise<RoomTimer[]> {
    // Pending ones only, as every store lists them: a timer whose run is under way is not.
    const [members, running] = await Promise.all([
      this.#t.client.hVals(this.#room(ref)),
      this.#t.client.hKeys(this.runsKey(ref)),
    ]);
    const runs = new Set(running);
    return members
      .filter((m) => !runs.has(m))
      .map((m) => timerOf(m)[1])
      .sort((a, b) => a.at - b.at);
  }

  start(run: TimerRunner): void {
    if (this.#poll !== undefined) return;
    this.#poll = setInterval(() => void this.#claim(run), TIMER_POLL_MS);
  }

  stop(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
  }

  // One claim at a time per instance; each claimed timer runs, then its lease and entry go.
  async #claim(run: TimerRunner): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const now = this.#t.now();
      const claimed = (await this.#t.eval(
        CLAIM,
        [this.#schedule, this.#leases],
        [String(now), String(now + (this.#t.leaseMs ?? TIMER_LEASE_MS)), "100", this.#t.prefix],
      )) as string[];
      await Promise.all(
        claimed.map(async (member) => {
          const [ref, timer] = timerOf(member);
          await run(ref, { timer, token: member });
          await this.#t.eval(DONE, [this.#leases, this.#room(ref), this.runsKey(ref)], [member, timer.name]);
        }),
      );
    } catch (error) {
      this.#t.warn("room timers: a claim failed (Redis away?)", error);
    } finally {
      this.#polling = false;
    }
  }
}

// A member back into its room and timer.
function timerOf(member: string): [RoomRef, RoomTimer] {
  const [key, name, at, data] = JSON.parse(member) as [string, string, number, unknown];
  const ref: RoomRef = { key, name: key.slice(key.indexOf(":") + 1) };
  return [ref, { name, at, ...(data === null ? {} : { data }) }];
}
