/**
 * The fleet broker: rooms shared by every Node, Deno and Bun instance on one
 * Redis (selected by REDIS_URL). What must agree across instances lives in
 * Redis and is changed atomically, one round trip per operation:
 *
 * - a publish is one Lua script: INCR the room's counter (the `seq`), XADD the
 *   frame to the room's stream (the history, ids `seq-0`, bounded by MAXLEN),
 *   PUBLISH it on the room's channel — so every instance receives every room's
 *   messages in `seq` order, one Redis message per publish (not per member);
 * - each instance SUBSCRIBEs once per room it has members in, and fans out locally;
 * - presence is a hash and a join-ordered set per room, with each member's
 *   instance; instances heartbeat, and a crashed instance's members are removed
 *   (leave 1006) by the survivors within `instanceTtlMs` + one sweep;
 * - every room key expires after `roomIdleMs` without members or messages;
 * - a keyed push checks and stores its key (`k:<room>:<key>` → "seq fingerprint", expiring with
 *   the idempotency window) in the publish script itself, so the key exists exactly when the
 *   message does, whichever instance took the push and whether it lives on.
 *
 * Redis down: commands fail at once (no offline queue) — a publish is answered
 * with an error, never acked — the client reconnects with backoff, and on
 * reconnect every local room catches up from its stream before live delivery
 * resumes; a message published while the subscription was re-subscribing is a
 * hole in `seq`, filled from the stream before the next message — so nothing
 * acknowledged is missed.
 */
import { createClient, type RedisClientType } from "@redis/client";
import { fromBase64, randomId, toBase64 } from "../bytes.ts";
import {
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_HISTORY_MAX_AGE_MS,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  DEFAULT_ROOM_IDLE_MS,
} from "../config.ts";
import type { Logger } from "../log.ts";
import type { Member, MessageFrame, PresenceFrame, SequencedFrame } from "../protocol.ts";
import {
  type BroadcastOptions,
  type Broker,
  BrokerUnavailableError,
  broadcastText,
  type ChangeFn,
  type Committed,
  type Delivery,
  type DeliveryListener,
  type FiredTimer,
  type Fleet,
  type JoinSnapshot,
  type KeyedPublish,
  type PushKey,
  type RoomRef,
} from "./broker.ts";
import { PresencePolicy, type PresenceRoom, presenceClock } from "./presence.ts";
import { COMMIT, RedisCommits } from "./redis-commits.ts";
import { RedisTimers } from "./redis-timers.ts";

/** Options of the Redis broker. */
export interface RedisBrokerOptions {
  /** `redis://host:port/db` */
  url: string;
  /** prefix of every key and channel (default "edgewire:"), so apps and tests share a Redis */
  prefix?: string;
  /** this instance's id (default: random) */
  instanceId?: string;
  presence?: PresencePolicy;
  historyLimit?: number;
  historyMaxAgeMs?: number;
  roomIdleMs?: number;
  /** how long a push's idempotency key is kept (default a day); Redis expires each itself */
  idempotencyWindowMs?: number;
  /** how often this instance says it is alive (default 3 s) */
  heartbeatMs?: number;
  /** an instance silent this long is dead, its members removed (default 10 s) */
  instanceTtlMs?: number;
  /** how long a claimed room timer is its claimer's to run before another instance may run it (default 30 s) */
  timerLeaseMs?: number;
  log?: Logger;
  now?: () => number;
}

// One round trip per publish: the sequence, the history and the delivery, atomically. The idle
// TTLs are refreshed when ARGV[6] is '1' (nobody's heartbeat covers the room) or the room is new.
// KEYS[5] is the room's state (a stateful room's), whose TTL goes with its history's. A keyed push
// passes its key as KEYS[6] (fingerprint ARGV[7], window ARGV[8]): a key already there answers
// {0, "<seq> <fingerprint>"} and nothing is published; otherwise it is set with the message.
const PUBLISH = `if KEYS[6] then
  local prior = redis.call('GET', KEYS[6])
  if prior then return {0, prior} end
end
local seq = redis.call('INCR', KEYS[1])
local epoch = redis.call('GET', KEYS[2])
if not epoch then epoch = ARGV[3]; redis.call('SET', KEYS[2], epoch) end
local frame = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'f', frame)
redis.call('PUBLISH', KEYS[4], 'm' .. seq .. ' ' .. frame)
if ARGV[6] == '1' or seq == 1 then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
end
if KEYS[6] then redis.call('SET', KEYS[6], seq .. ' ' .. ARGV[7], 'PX', ARGV[8]) end
return {seq, epoch}`;

// Join: the member in, the room's epoch made if new, the size, the oldest members, the head.
// A stateful room's state (KEYS[6]) comes with the head it belongs to: the welcome's view is as of its seq.
const JOIN = `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local epoch = redis.call('GET', KEYS[4])
if not epoch then epoch = ARGV[4]; redis.call('SET', KEYS[4], epoch) end
for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
local ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[5]) - 1)
local members = {}
if #ids > 0 then members = redis.call('HMGET', KEYS[1], unpack(ids)) end
local st = redis.call('HMGET', KEYS[6], 'v', 's', 'e')
local v = 0
local s = false
if st[3] == epoch and st[1] then v = tonumber(st[1]); s = st[2] end
return {redis.call('HLEN', KEYS[1]), redis.call('GET', KEYS[3]) or '0', epoch, members, v, s}`;

// KEYS: members hash, room channel. ARGV: member id, entry, the update frame up to its count, the
// presence limit, announce ('1'). Replaces a member's entry only while it is in the room (a late update
// must not bring back one that has left) and, within the limit, publishes the update in the same step:
// a frame the handler sends right after (a broadcast) cannot overtake it. Returns the size, or -1.
const UPDATE = `if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local size = redis.call('HLEN', KEYS[1])
if ARGV[5] == '1' and size <= tonumber(ARGV[4]) then
  redis.call('PUBLISH', KEYS[2], 'x' .. string.char(10) .. ARGV[3] .. size .. '}')
end
return size`;

// Leave: the member out; the size, and the whole list when the room is back at the limit (sync).
const LEAVE = `local gone = redis.call('HGET', KEYS[1], ARGV[1])
if not gone then return {-1} end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local size = redis.call('HLEN', KEYS[1])
local members = {}
if size == tonumber(ARGV[2]) then
  local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
  if #ids > 0 then members = redis.call('HMGET', KEYS[1], unpack(ids)) end
end
return {size, gone, members}`;

interface Entry {
  /** the member as others see it */
  m: Member;
  /** the instance holding its connection */
  i: string;
}

/** A room this instance has members (or listeners) in. */
interface LocalRoom extends PresenceRoom {
  listeners: Set<DeliveryListener>;
  /** resolves once the channel is subscribed: a join must not read its snapshot before */
  subscribed: Promise<void>;
  /** last `seq` delivered here: catching up after a Redis reconnect starts after it */
  lastSeq: number;
  /** deliveries held while catching up */
  held: string[] | undefined;
  /** the latest member count this instance knows (for coalesced count frames) */
  known: number;
}

/** Rooms in Redis, shared by a fleet. */
export class RedisBroker implements Broker, Fleet {
  /** this instance's id */
  readonly instanceId: string;
  readonly #cmd: RedisClientType;
  readonly #sub: RedisClientType;
  readonly #p: string;
  readonly #presence: PresencePolicy;
  readonly #limit: number;
  readonly #maxAgeMs: number;
  readonly #idleMs: number;
  readonly #keyWindowMs: number;
  readonly #beatMs: number;
  readonly #ttlMs: number;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #rooms = new Map<string, LocalRoom>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #recheck: ReturnType<typeof setTimeout> | undefined;
  #up = false;
  #closed = false;
  #serve: ((payload: unknown) => Promise<unknown>) | undefined;
  readonly #waiting = new Map<string, (reply: unknown) => void>();
  /** the SHA1 of each script, once loaded: EVALSHA sends 40 bytes instead of the script */
  readonly #shas = new Map<string, string>();
  // A room's new epoch: this instance's random base and a counter, unique without a random draw per publish.
  readonly #epochBase = randomId();
  #epochs = 0;
  /** room state transactions: one script per batch of a room's commits on this instance */
  readonly #commits: RedisCommits;
  /** the rooms' timers, in Redis: any instance fires them */
  readonly timers: RedisTimers;

  /** a broker on `options.url`; call `start()` before use */
  constructor(options: RedisBrokerOptions) {
    this.instanceId = options.instanceId ?? randomId();
    this.#p = options.prefix ?? "edgewire:";
    this.#presence = options.presence ?? new PresencePolicy();
    this.#limit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    this.#maxAgeMs = options.historyMaxAgeMs ?? DEFAULT_HISTORY_MAX_AGE_MS;
    this.#idleMs = options.roomIdleMs ?? DEFAULT_ROOM_IDLE_MS;
    this.#keyWindowMs = options.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
    this.#ttlMs = options.instanceTtlMs ?? 10_000;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    // Fail fast while Redis is away (no offline queue: nothing is acked that was not stored);
    // reconnect with capped exponential backoff.
    const client = {
      url: options.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: (retries: number) => Math.min(2000, 50 * 2 ** retries), connectTimeout: 5000 },
    };
    this.#cmd = createClient(client) as RedisClientType;
    this.#sub = this.#cmd.duplicate() as RedisClientType;
    for (const [name, c] of [
      ["commands", this.#cmd],
      ["subscriber", this.#sub],
    ] as const) {
      c.on("error", (error: Error) => {
        if (this.#up) this.#log?.warn(`redis ${name} connection lost`, { error: error.message });
        this.#up = false;
      });
      c.on("ready", () => {
        const was = this.#up;
        this.#up = this.#cmd.isReady && this.#sub.isReady;
        if (this.#up && !was) this.#log?.info("redis connected", { instance: this.instanceId });
        if (name !== "subscriber" || this.#closed) return;
        void this.#catchUpAll();
        // "ready" can come before the client has re-subscribed: what is published in between reaches no
        // one live. A later message shows the hole (#dispatch fills it); a second read covers the tail.
        if (this.#recheck !== undefined) clearTimeout(this.#recheck);
        this.#recheck = setTimeout(() => {
          this.#recheck = undefined;
          if (!this.#closed) void this.#catchUpAll();
        }, 1000);
      });
    }
    this.#commits = new RedisCommits({
      commit: (keys, args) => this.#call("commit", () => this.#eval(COMMIT, keys, args)),
      keys: (ref) => [
        this.#k(ref, "seq"),
        this.#k(ref, "epoch"),
        this.#k(ref, "log"),
        this.#channel(ref),
        this.#k(ref, "st"),
        this.#k(ref, "turn"),
        this.timers.runsKey(ref),
      ],
      instance: this.instanceId,
      newEpoch: () => this.#newEpoch(),
      refreshes: (ref) => this.#refreshes(ref),
      historyLimit: this.#limit,
      idleMs: this.#idleMs,
      now: this.#now,
    });
    this.timers = new RedisTimers({
      client: this.#cmd,
      prefix: this.#p,
      eval: (script, keys, args) => this.#call("timer", () => this.#eval(script, keys, args)),
      now: this.#now,
      warn: (message, error) => this.#log?.warn(message, { error: (error as Error).message }),
      leaseMs: options.timerLeaseMs,
    });
    const beat = options.heartbeatMs ?? 3000;
    this.#beatMs = beat;
    this.#timers.push(setInterval(() => void this.#heartbeat(), beat));
    this.#timers.push(setInterval(() => void this.#sweep(), Math.max(500, Math.floor(this.#ttlMs / 4))));
  }

  /** connect both clients, and listen for requests and replies addressed to this instance */
  async start(): Promise<void> {
    await Promise.all([this.#cmd.connect(), this.#sub.connect()]);
    await this.#sub.subscribe(`${this.#p}rpc:${this.instanceId}`, (m: string) => void this.#request(m));
    await this.#sub.subscribe(`${this.#p}rpc-reply:${this.instanceId}`, (m: string) => {
      const { c, r } = JSON.parse(m) as { c: string; r: unknown };
      this.#waiting.get(c)?.(r);
    });
    await this.#loadScripts();
    this.#up = true;
    await this.#heartbeat();
  }

  /** the fleet it is an instance of: itself (it carries the requests between instances) */
  get fleet(): Fleet {
    return this;
  }

  /** answer requests other instances address to this one (the long-polling sessions it holds) */
  serveRequests(handler: (payload: unknown) => Promise<unknown>): void {
    this.#serve = handler;
  }

  /**
   * Ask instance `to` to run `payload` (a long-polling operation on a session it
   * holds); its answer, or undefined when no such instance listens or it did not answer in time.
   */
  async request(to: string, payload: unknown, timeoutMs: number): Promise<unknown | undefined> {
    const c = randomId();
    const answer = new Promise<unknown | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(c);
        resolve(undefined);
      }, timeoutMs);
      this.#waiting.set(c, (reply) => {
        clearTimeout(timer);
        this.#waiting.delete(c);
        resolve(reply);
      });
    });
    const listeners = await this.#call("request", () =>
      this.#cmd.publish(`${this.#p}rpc:${to}`, JSON.stringify({ c, from: this.instanceId, p: payload })),
    );
    if (listeners === 0) {
      this.#waiting.get(c)?.(undefined);
      return undefined;
    }
    return answer;
  }

  async #request(message: string): Promise<void> {
    const { c, from, p } = JSON.parse(message) as { c: string; from: string; p: unknown };
    if (!this.#serve) return;
    const r = await this.#serve(p);
    await this.#cmd.publish(`${this.#p}rpc-reply:${from}`, JSON.stringify({ c, r })).catch(() => {});
  }

  async #loadScripts(): Promise<void> {
    for (const script of [PUBLISH, JOIN, UPDATE, LEAVE, COMMIT])
      this.#shas.set(script, await this.#cmd.scriptLoad(script));
  }

  // EVALSHA; a Redis that lost its script cache (restarted, SCRIPT FLUSH) gets the script itself once more.
  async #eval(script: string, keys: string[], args: string[]): Promise<unknown> {
    const sha = this.#shas.get(script);
    if (sha !== undefined) {
      try {
        return await this.#cmd.evalSha(sha, { keys, arguments: args });
      } catch (error) {
        if (!(error as Error).message.startsWith("NOSCRIPT")) throw error;
      }
    }
    return this.#cmd.eval(script, { keys, arguments: args });
  }

  // A room with members here has its TTLs refreshed by this instance's heartbeat; refreshing them on
  // every publish too cost Redis three PEXPIREs (0.5–2 of its 7–13 µs per publish: bench/redis/script-cost.mjs).
  #refreshes(ref: RoomRef): boolean {
    return !this.#rooms.has(ref.key) || this.#idleMs < 2 * this.#beatMs;
  }

  #newEpoch(): string {
    return `${this.#epochBase}${(++this.#epochs).toString(36)}`;
  }

  /** whether both connections to Redis are up (readiness, /metrics) */
  get up(): boolean {
    return this.#up;
  }

  // Every command that can fail because Redis is away says so the same way.
  async #call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new BrokerUnavailableError(`redis: ${what} failed (${(error as Error).message})`);
    }
  }

  #k(ref: RoomRef, part: string): string {
    return `${this.#p}r:${ref.key}:${part}`;
  }

  #channel(ref: RoomRef): string {
    return `${this.#p}c:${ref.key}`;
  }

  async publish(ref: RoomRef, from: string, data: unknown): Promise<MessageFrame> {
    const published = await this.#publish(ref, from, data, undefined);
    // Only a keyed publish can find a prior one.
    if (published.kind !== "published") throw new Error("edgewire: an unkeyed publish found a key");
    return published.frame;
  }

  publishKeyed(ref: RoomRef, from: string, data: unknown, key: PushKey): Promise<KeyedPublish> {
    return this.#publish(ref, from, data, key);
  }

  async #publish(ref: RoomRef, from: string, data: unknown, key: PushKey | undefined): Promise<KeyedPublish> {
    const ts = this.#now();
    // The frame around its seq: Redis puts the number in, so one script orders, stores and sends it.
    const head = `{"type":"message","room":${JSON.stringify(ref.name)},"seq":`;
    const tail = `,"from":${JSON.stringify(from)},"data":${JSON.stringify(data) ?? "null"},"ts":${ts}}`;
    const keys = [
      this.#k(ref, "seq"),
      this.#k(ref, "epoch"),
      this.#k(ref, "log"),
      this.#channel(ref),
      this.#k(ref, "st"),
    ];
    const args = [
      head,
      tail,
      this.#newEpoch(),
      String(this.#limit),
      String(this.#idleMs),
      this.#refreshes(ref) ? "1" : "0",
    ];
    // Keys live beside the room's keys, not among them: they outlive an idle room (the window is a day).
    if (key) {
      keys.push(`${this.#p}k:${ref.key}:${key.key}`);
      args.push(key.fingerprint, String(this.#keyWindowMs));
    }
    const [seq, second] = (await this.#call("publish", () => this.#eval(PUBLISH, keys, args))) as [number, string];
    if (Number(seq) === 0) {
      const space = second.indexOf(" ");
      const first = Number(second.slice(0, space));
      return { kind: second.slice(space + 1) === key?.fingerprint ? "repeat" : "reused", seq: first };
    }
    return { kind: "published", frame: { type: "message", room: ref.name, seq: Number(seq), from, data, ts } };
  }

  /** a transaction: one script per batch of this instance's commits in the room, under one version check */
  commit(ref: RoomRef, from: string, change: ChangeFn, fired?: FiredTimer): Promise<Committed> {
    return this.#commits.commit(ref, from, change, fired);
  }

  broadcast(ref: RoomRef, from: string, data: unknown, options: BroadcastOptions = {}): Promise<void> {
    return this.#send(ref, options.except, broadcastText(ref, from, data, options.compact));
  }

  relay(ref: RoomRef, from: string, bytes: Uint8Array): Promise<void> {
    return this.#send(ref, from, bytes);
  }

  // An unsequenced delivery, as text: 'x' (a text frame) or 'b' (bytes, in base64: relays are
  // ephemeral and rare next to messages), the member it skips, a newline, the frame.
  async #send(ref: RoomRef, except: string | undefined, frame: string | Uint8Array): Promise<void> {
    const message = typeof frame === "string" ? `x${except ?? ""}\n${frame}` : `b${except ?? ""}\n${toBase64(frame)}`;
    await this.#cmd.publish(this.#channel(ref), message);
  }

  async join(ref: RoomRef, member: Member): Promise<JoinSnapshot> {
    const room = this.#room(ref);
    await this.#call("subscribe", () => room.subscribed);
    const entry: Entry = { m: member, i: this.instanceId };
    const [size, seq, epoch, listed, version, stored] = (await this.#call("join", () =>
      this.#eval(
        JOIN,
        [
          this.#k(ref, "m"),
          this.#k(ref, "t"),
          this.#k(ref, "seq"),
          this.#k(ref, "epoch"),
          this.#k(ref, "log"),
          this.#k(ref, "st"),
        ],
        [
          member.id,
          JSON.stringify(entry),
          String(member.joinedAt),
          this.#newEpoch(),
          String(this.#presence.limit),
          String(this.#idleMs),
        ],
      ),
    )) as [number, string, string, (string | null)[], number, string | null];
    await this.#call("join", () => this.#cmd.sAdd(`${this.#p}i:${this.instanceId}:rooms`, ref.key));
    room.known = Number(size);
    this.#presence.joined(room, member);
    const members = listed.filter((v): v is string => v !== null).map((v) => (JSON.parse(v) as Entry).m);
    const state = typeof stored === "string" ? stored : undefined;
    this.#commits.seen(ref, Number(version), state);
    return { members, count: Number(size), seq: Number(seq), epoch, ...(state === undefined ? {} : { state }) };
  }

  restore(ref: RoomRef, member: Member): void {
    // Nothing hibernates on a fleet instance; a restored member is re-added as a join would.
    void this.join(ref, member).catch(() => {});
  }

  async update(ref: RoomRef, member: Member, announce: boolean): Promise<void> {
    const entry = JSON.stringify({ m: member, i: this.instanceId } satisfies Entry);
    const prefix = this.#presence.updatePrefix(ref, member);
    const args = [member.id, entry, prefix, String(this.#presence.limit), announce ? "1" : "0"];
    const size = Number(await this.#eval(UPDATE, [this.#k(ref, "m"), this.#channel(ref)], args));
    const room = this.#rooms.get(ref.key);
    if (room && size >= 0) room.known = size;
  }

  async leave(ref: RoomRef, memberId: string, code?: number, reason?: string): Promise<number | undefined> {
    return this.#remove(ref, memberId, code === undefined ? {} : { code, reason: reason ?? "" });
  }

  // How many members remain (the script's count, atomic with the removal), undefined when it was not one.
  async #remove(
    ref: RoomRef,
    memberId: string,
    ending: { code?: number; reason?: string },
  ): Promise<number | undefined> {
    const [size, gone, all] = (await this.#eval(
      LEAVE,
      [this.#k(ref, "m"), this.#k(ref, "t")],
      [memberId, String(this.#presence.limit)],
    )) as [number, string | undefined, (string | null)[] | undefined];
    if (Number(size) < 0 || gone === undefined) return undefined;
    const member = (JSON.parse(gone) as Entry).m;
    const list = (all ?? []).filter((v): v is string => v !== null).map((v) => (JSON.parse(v) as Entry).m);
    // The policy decides the frame from this view: the room's size now and, for a sync, its members.
    const view = this.#rooms.get(ref.key) ?? this.#detached(ref);
    view.known = Number(size);
    const members = view.members;
    view.members = () => list;
    this.#presence.left(view, member, ending);
    view.members = members;
    return Number(size);
  }

  // A room's local state, not subscribed: as is, for presence frames about a room this instance has no
  // members in (a dead instance's); #room subscribes it.
  #detached(ref: RoomRef): LocalRoom {
    const room: LocalRoom = {
      ref,
      clock: presenceClock(),
      listeners: new Set(),
      subscribed: Promise.resolve(),
      lastSeq: 0,
      held: undefined,
      known: 0,
      members: () => [],
      size: () => room.known,
      deliver: (d) => void this.#deliverVia(ref, d),
    };
    return room;
  }

  async snapshot(ref: RoomRef): Promise<JoinSnapshot> {
    // One MULTI: the seq, epoch and state read together (a state read apart could be a commit newer than its seq).
    const [ids, seq, epoch, st] = (await this.#cmd
      .multi()
      .zRange(this.#k(ref, "t"), 0, -1)
      .get(this.#k(ref, "seq"))
      .get(this.#k(ref, "epoch"))
      .hmGet(this.#k(ref, "st"), ["v", "s", "e"])
      .exec()) as unknown as [string[], string | null, string | null, (string | null)[]];
    const values = ids.length ? await this.#cmd.hmGet(this.#k(ref, "m"), ids) : [];
    const members = values.filter((v): v is string => typeof v === "string").map((v) => (JSON.parse(v) as Entry).m);
    // A state of another epoch is the lost history's: none.
    const state = st[2] === epoch && typeof st[1] === "string" ? st[1] : undefined;
    return {
      members,
      count: members.length,
      seq: Number(seq ?? 0),
      epoch: epoch ?? "",
      ...(state === undefined ? {} : { state }),
    };
  }

  async count(ref: RoomRef): Promise<number> {
    return this.#cmd.hLen(this.#k(ref, "m"));
  }

  async history(ref: RoomRef, after: number, limit: number): Promise<SequencedFrame[]> {
    const entries = await this.#call("history", () =>
      this.#cmd.xRange(this.#k(ref, "log"), `(${after}-0`, "+", { COUNT: limit }),
    );
    const oldest = this.#now() - this.#maxAgeMs;
    return entries.map((e) => JSON.parse(String(e.message.f)) as SequencedFrame).filter((f) => f.ts >= oldest);
  }

  subscribe(ref: RoomRef, listener: DeliveryListener): () => void {
    const room = this.#room(ref);
    room.listeners.add(listener);
    return () => {
      room.listeners.delete(listener);
      if (room.listeners.size > 0) return;
      this.#rooms.delete(ref.key);
      this.#commits.forget(ref);
      this.#presence.stop(room.clock);
      void this.#sub.unsubscribe(this.#channel(ref)).catch(() => {});
      void this.#cmd.sRem(`${this.#p}i:${this.instanceId}:rooms`, ref.key).catch(() => {});
    };
  }

  #room(ref: RoomRef): LocalRoom {
    const room = this.#rooms.get(ref.key);
    if (room) return room;
    const created = this.#detached(ref);
    created.subscribed = this.#sub.subscribe(this.#channel(ref), (message: string) => this.#received(created, message));
    // The join waits on this; a failed subscribe fails the join (the client retries), never a silent room.
    created.subscribed.catch(() => {});
    this.#rooms.set(ref.key, created);
    return created;
  }

  // Presence frames go through the channel, so every instance's members get them.
  async #deliverVia(ref: RoomRef, delivery: Delivery): Promise<void> {
    try {
      await this.#send(ref, delivery.except, delivery.frame);
    } catch (error) {
      this.#log?.warn("presence frame not sent (redis)", { room: ref.key, error: (error as Error).message });
    }
  }

  #received(room: LocalRoom, message: string): void {
    if (room.held) {
      room.held.push(message);
      return;
    }
    this.#dispatch(room, message);
  }

  #dispatch(room: LocalRoom, message: string): void {
    const type = message.charCodeAt(0);
    let delivery: Delivery;
    if (type === 0x6d) {
      // 'm<seq> <frame>': a sequenced message; a seq already delivered (a catch-up overlap) is skipped.
      const space = message.indexOf(" ");
      const seq = Number(message.slice(1, space));
      if (seq <= room.lastSeq) return;
      if (room.lastSeq > 0 && seq > room.lastSeq + 1) {
        // A hole: messages this subscription never saw (published while it was re-subscribing after a
        // reconnect; Pub/Sub does not redeliver). They are in the stream: read them before this one.
        room.held = [message];
        void this.#fill(room);
        return;
      }
      room.lastSeq = seq;
      delivery = { frame: message.slice(space + 1) };
    } else {
      const nl = message.indexOf("\n");
      const except = message.slice(1, nl) || undefined;
      const body = message.slice(nl + 1);
      delivery = { frame: type === 0x62 ? fromBase64(body) : body, except };
      if (type === 0x78) this.#noteCount(room, body);
    }
    for (const listener of room.listeners) listener(delivery);
  }

  // Count frames from other instances keep this instance's idea of the room's size current.
  #noteCount(room: LocalRoom, frame: string): void {
    if (!frame.startsWith('{"type":"presence"')) return;
    const count = (JSON.parse(frame) as PresenceFrame).count;
    if (typeof count === "number") room.known = count;
  }

  // After a reconnect, each local room reads what it missed from its stream before live delivery resumes.
  async #catchUpAll(): Promise<void> {
    for (const room of this.#rooms.values()) {
      // A room already filling a hole reads the stream anyway.
      if (room.lastSeq === 0 || room.held) continue;
      room.held = [];
      await this.#fill(room);
    }
  }

  // Deliver a held room's missed messages from its stream, then what was held meanwhile. A read that
  // fails (Redis still away) is retried while the room holds; after ~10 s the hole is given up, logged,
  // and live delivery goes on (its members' resumes then meet the history as it is).
  async #fill(room: LocalRoom): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        for (const frame of await this.history(room.ref, room.lastSeq, 100_000)) {
          if (frame.seq <= room.lastSeq) continue;
          room.lastSeq = frame.seq;
          const delivery: Delivery = { frame: JSON.stringify(frame) };
          for (const listener of room.listeners) listener(delivery);
        }
        break;
      } catch (error) {
        if (this.#closed || attempt >= 40) {
          this.#log?.warn("catch-up from the stream failed", { room: room.ref.key, error: (error as Error).message });
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    // What the stream does not hold (trimmed, or unreadable) stays a hole: step past it, so the held
    // message does not open it again (and a resuming member is told by its resync).
    const first = room.held?.[0];
    if (first?.charCodeAt(0) === 0x6d) {
      const seq = Number(first.slice(1, first.indexOf(" ")));
      if (seq > room.lastSeq + 1) room.lastSeq = seq - 1;
    }
    const held = room.held ?? [];
    room.held = undefined;
    for (let i = 0; i < held.length; i++) {
      // Another hole among the held messages holds the room again: the rest wait behind it, in order.
      // (dispatch may set it again: TypeScript cannot see that through the call)
      const again = room.held as string[] | undefined;
      if (again) {
        again.push(...held.slice(i));
        break;
      }
      this.#dispatch(room, held[i] as string);
    }
  }

  // Alive: the instance registry, and the TTL of every room this instance has members in.
  async #heartbeat(): Promise<void> {
    if (!this.#up) return;
    try {
      const now = this.#now();
      await this.#cmd.zAdd(`${this.#p}instances`, { score: now, value: this.instanceId });
      for (const room of this.#rooms.values()) {
        for (const part of ["m", "t", "seq", "epoch", "log", "st"])
          void this.#cmd.pExpire(this.#k(room.ref, part), this.#idleMs);
      }
    } catch {}
  }

  // Survivors remove a dead instance's members (leave 1006), one sweeper per dead instance (a lock).
  async #sweep(): Promise<void> {
    if (!this.#up || this.#closed) return;
    try {
      const dead = await this.#cmd.zRangeByScore(`${this.#p}instances`, 0, this.#now() - this.#ttlMs);
      for (const id of dead) {
        if (id === this.instanceId) continue;
        const locked = await this.#cmd.set(`${this.#p}sweep:${id}`, this.instanceId, { NX: true, PX: this.#ttlMs });
        if (locked === null) continue;
        const rooms = await this.#cmd.sMembers(`${this.#p}i:${id}:rooms`);
        for (const key of rooms) {
          const colon = key.indexOf(":");
          const ref: RoomRef = { key, name: key.slice(colon + 1) };
          const all = await this.#cmd.hGetAll(this.#k(ref, "m"));
          let remaining: number | undefined;
          for (const [memberId, value] of Object.entries(all)) {
            if ((JSON.parse(value) as Entry).i === id)
              remaining = (await this.#remove(ref, memberId, { code: 1006, reason: "instance lost" })) ?? remaining;
          }
          // The lost instance held the room's last members: nobody's leave will say the room emptied.
          if (remaining === 0) for (const listener of this.#vacated) listener(ref);
        }
        await this.#cmd.del(`${this.#p}i:${id}:rooms`);
        await this.#cmd.zRem(`${this.#p}instances`, id);
        this.#log?.warn("removed the members of a lost instance", { instance: id, rooms: rooms.length });
      }
    } catch (error) {
      this.#log?.debug("sweep failed", { error: (error as Error).message });
    }
  }

  readonly #vacated: ((room: RoomRef) => void)[] = [];

  onVacated(listener: (room: RoomRef) => void): void {
    this.#vacated.push(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.timers.stop();
    for (const t of this.#timers) clearInterval(t);
    if (this.#recheck !== undefined) clearTimeout(this.#recheck);
    for (const room of this.#rooms.values()) this.#presence.stop(room.clock);
    try {
      // A clean stop: this instance's members are gone already (their sockets closed); say so at once.
      await this.#cmd.zRem(`${this.#p}instances`, this.instanceId);
      await this.#cmd.del(`${this.#p}i:${this.instanceId}:rooms`);
    } catch {}
    await Promise.allSettled([this.#sub.close(), this.#cmd.close()]);
  }
}
