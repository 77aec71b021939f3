/**
 * The local hub: a room's members on this instance, the join seam and the
 * fan-out. A member joining while messages flow is held in a short buffer
 * until its welcome, and frames its welcome's `seq` already covers are
 * dropped, so there is no gap and no duplicate at the seam. Each delivery is
 * encoded once per encoding the room's members speak (JSON, and MessagePack
 * only where a member speaks it); on Bun it is one native topic publish per
 * encoding. A resuming member gets what it missed from history before the live stream.
 */

import type { RouteStats } from "../metrics.ts";
import { encodeFrame, transcode } from "../msgpack.ts";
import type { Member, ResyncFrame, SequencedFrame, WelcomeFrame } from "../protocol.ts";
import type { Broker, Delivery, JoinSnapshot, RoomRef } from "../pubsub/broker.ts";
import { backendContext } from "./backend.ts";
import type { Conn, Frame, Peer, Runtime } from "./ports.ts";

/** A room's members on this instance. */
interface LocalRoom {
  ref: RoomRef;
  topic: string;
  /** the native topic of its MessagePack members */
  packedTopic: string;
  /** welcomed members by id */
  live: Map<string, Peer>;
  /** the welcomed members that speak MessagePack (`edgewire.v1+msgpack`) */
  packed: Set<Peer>;
  /** members on non-native transports, sent to one by one even where native publish exists */
  direct: Set<Peer>;
  /** members waiting for their welcome: what arrives meanwhile is kept for them */
  pending: Map<Peer, Frame[]>;
  /** frames fanned out here (messages, broadcasts, presence): the inspector's rate */
  deliveries: number;
  /** the route's counters (frames and bytes sent), from its first member */
  stats: RouteStats | undefined;
  unsubscribe: () => void;
}

/** A room as the inspector lists it. */
export interface LocalRoomInfo {
  /** the room */
  readonly ref: RoomRef;
  /** its members on this instance */
  readonly members: number;
  /** frames fanned out to it on this instance since it was first joined here */
  readonly deliveries: number;
}

// A frame held during a join that the welcome's `seq` already covers (a message, or a view change).
function alreadySeen(frame: Frame, seq: number): boolean {
  if (typeof frame !== "string" || !(frame.startsWith('{"type":"message"') || frame.startsWith('{"type":"view"')))
    return false;
  return (JSON.parse(frame) as SequencedFrame).seq <= seq;
}

/** Members of rooms on this instance, and delivery to them. */
export class Hub {
  readonly #broker: Broker;
  readonly #publish: Runtime["publish"];
  readonly #rooms = new Map<string, LocalRoom>();

  readonly #heartbeatMs: number | undefined;
  readonly #maxMessageBytes: number | undefined;
  readonly #report: (message: string, error: unknown) => void;

  /**
   * A hub over `broker`, with the runtime's native topic publish if it has one; welcomes tell
   * clients the heartbeat and the frame limit; failures that close nothing go to `report`.
   */
  constructor(
    broker: Broker,
    publish?: Runtime["publish"],
    options: {
      heartbeatMs?: number | undefined;
      maxMessageBytes?: number | undefined;
      report?: (message: string, error: unknown) => void;
    } = {},
  ) {
    this.#broker = broker;
    this.#publish = publish;
    this.#heartbeatMs = options.heartbeatMs;
    this.#maxMessageBytes = options.maxMessageBytes;
    this.#report = options.report ?? ((message, error) => console.error(message, error));
  }

  /**
   * Join the context's connection to its room: presence, welcome, then the live
   * stream with no gap. A connection resuming after `seq` of the room's epoch
   * first gets every message after it from history, in order, once; when the
   * epoch changed or history no longer reaches back, it is told (`resync`).
   */
  async join(ctx: Conn): Promise<void> {
    const { peer } = ctx;
    const record = peer.record;
    const ref = ctx.ref as RoomRef;
    const local = this.#local(ref);
    local.stats ??= ctx.stats;
    local.pending.set(peer, []);
    try {
      const joined = ctx.member();
      const snapshot = await this.#broker.join(ref, joined);
      // Closed while joining: leave() has already undone the membership.
      if (!local.pending.has(peer)) return;
      this.#caughtUp(ctx, joined);
      const resume = record.resume;
      let replay: SequencedFrame[] = [];
      const resyncs: ResyncFrame[] = [];
      // Where the stream starts for this member: its welcome's seq, then every message after it.
      let from = snapshot.seq;
      if (resume) {
        const behind = snapshot.seq - resume.seq;
        if (resume.epoch !== snapshot.epoch || behind < 0) {
          // The history it resumed from is gone (a restart, a forgotten room): what it missed of the
          // old epoch is lost, but it has seen nothing of the new one — that follows from its start,
          // as far as history keeps it (pushes the new instance took before the member came back).
          replay = snapshot.seq > 0 ? await this.#broker.history(ref, 0, snapshot.seq) : [];
          if (!local.pending.has(peer)) return;
          from = (replay[0]?.seq ?? snapshot.seq + 1) - 1;
          // A stateful room's view is known at its start (the initial state) and now, not in between:
          // when the new epoch's start is gone, the member starts now, with the view of now.
          if (from > 0 && ctx.route.roomState) {
            replay = [];
            from = snapshot.seq;
          }
          resyncs.push(this.#resync(ref, snapshot, from, "epoch_changed", resume.seq + 1, undefined));
          if (from > 0) resyncs.push(this.#resync(ref, snapshot, from, "history_truncated", 1, from));
        } else if (behind > 0) {
          replay = await this.#broker.history(ref, resume.seq, behind);
          if (!local.pending.has(peer)) return;
          if (replay[0]?.seq !== resume.seq + 1 || replay.length < behind) {
            resyncs.push(this.#resync(ref, snapshot, snapshot.seq, "history_truncated", resume.seq + 1, snapshot.seq));
            replay = [];
          } else from = resume.seq;
        } else from = resume.seq;
      }
      record.seq = snapshot.seq;
      record.resume = undefined;
      peer.save?.();
      const resumed = resume !== undefined && resyncs.length === 0;
      const view = this.#viewAt(ctx, snapshot, from);
      const welcome: WelcomeFrame = {
        type: "welcome",
        id: record.id,
        room: ref.name,
        protocol: record.protocol,
        seq: from,
        members: snapshot.members,
        count: snapshot.count,
        epoch: snapshot.epoch,
        ...(resumed ? { resumed: true } : {}),
        ...(this.#heartbeatMs ? { heartbeatMs: this.#heartbeatMs } : {}),
        ...(this.#maxMessageBytes ? { maxMessageBytes: this.#maxMessageBytes } : {}),
        ...view,
      };
      ctx.frame(welcome);
      for (const resync of resyncs) ctx.frame(resync);
      for (const frame of replay) if (frame.seq <= snapshot.seq) ctx.frame(frame);
      const held = local.pending.get(peer) ?? [];
      for (const frame of held) if (!alreadySeen(frame, snapshot.seq)) ctx.delivered(frame);
      local.pending.delete(peer);
      this.#live(local, ctx);
      // The broker's count after this join, atomic with it: exactly one joiner sees the room go from 0 to 1.
      if (snapshot.count === 1) this.#hook(ctx, "occupied");
    } catch (error) {
      local.pending.delete(peer);
      throw error;
    }
  }

  // The view at the welcome's seq: now's when the stream starts now; the initial state's when it
  // starts at the epoch's beginning; none on an exact resume (the client holds the view at its seq,
  // and the replayed frames carry every change since).
  #viewAt(ctx: Conn, snapshot: JoinSnapshot, from: number): { view?: unknown } {
    const handling = ctx.route.roomState;
    if (!handling) return {};
    const room = (ctx.ref as RoomRef).name;
    if (from === snapshot.seq) return { view: handling.view(snapshot.state, room) };
    if (from === 0) return { view: handling.view(undefined, room) };
    return {};
  }

  // A handler may change the member's state while its join is in flight (a client that publishes
  // before its welcome): a broker that stores the member only once the join lands (Redis) ignored
  // that update and then stored the info of before it. Store what the member shows now.
  #caughtUp(ctx: Conn, joined: Member): void {
    if (!ctx.route.showsMember) return;
    const now = ctx.member();
    if (JSON.stringify(now.info) === JSON.stringify(joined.info)) return;
    void Promise.resolve(this.#broker.update(ctx.ref as RoomRef, now, ctx.route.announcesMember)).catch(
      (error: unknown) => this.#report(`edgewire: presence update of ${now.id} after its join failed`, error),
    );
  }

  // `seq`: where the stream goes on (messages after it follow); `from`..`to`: what may never arrive,
  // in the old epoch for epoch_changed (whose end is unknown: `to` absent).
  #resync(
    ref: RoomRef,
    snapshot: JoinSnapshot,
    seq: number,
    reason: ResyncFrame["reason"],
    from: number,
    to: number | undefined,
  ): ResyncFrame {
    return {
      type: "resync",
      room: ref.name,
      epoch: snapshot.epoch,
      seq,
      reason,
      from,
      ...(to === undefined ? {} : { to }),
    };
  }

  /** remove the context's connection from its room and tell the others how it ended */
  async leave(ctx: Conn, code?: number, reason?: string): Promise<void> {
    const { peer } = ctx;
    const ref = ctx.ref as RoomRef;
    const id = peer.record.id;
    const local = this.#rooms.get(ref.key);
    if (local) {
      local.pending.delete(peer);
      if (local.live.get(id) === peer) local.live.delete(id);
      local.direct.delete(peer);
      local.packed.delete(peer);
      if (local.live.size === 0 && local.pending.size === 0) {
        local.unsubscribe();
        this.#rooms.delete(ref.key);
      }
    }
    const remaining = await this.#broker.leave(ref, id, code, reason);
    if (remaining === 0) this.#hook(ctx, "vacated");
  }

  // A lifecycle hook of the route, run on the room as the server; not awaited by the member's join
  // or leave, and a failure is logged, never the member's.
  #hook(ctx: Conn, hook: "occupied" | "vacated"): void {
    const run = ctx.route[hook];
    if (!run) return;
    const ref = ctx.ref as RoomRef;
    void Promise.resolve()
      .then(() => run(backendContext(this.#broker, ctx.route, ref)))
      .catch((error: unknown) => this.#report(`edgewire: ${hook} of room ${ref.key} failed`, error));
  }

  /**
   * Re-attach a connection that survived while its state did not (a Durable
   * Object woken from hibernation): rooms and presence come back, nobody is told.
   */
  restore(ctx: Conn): void {
    const ref = ctx.ref as RoomRef;
    this.#broker.restore(ref, ctx.member());
    const local = this.#local(ref);
    // The route's counters, as a join sets them: a woken Durable Object counts its fan-out too.
    local.stats ??= ctx.stats;
    this.#live(local, ctx);
  }

  /** rooms with members (or members joining) on this instance */
  get roomCount(): number {
    return this.#rooms.size;
  }

  /** the rooms with members on this instance (the inspector's list) */
  *rooms(): IterableIterator<LocalRoomInfo> {
    for (const local of this.#rooms.values())
      yield { ref: local.ref, members: local.live.size, deliveries: local.deliveries };
  }

  /** number of members of the room with `key` connected to this instance */
  localMembers(key: string): number {
    return this.#rooms.get(key)?.live.size ?? 0;
  }

  #local(ref: RoomRef): LocalRoom {
    let local = this.#rooms.get(ref.key);
    if (!local) {
      const created: LocalRoom = {
        ref,
        topic: `room:${ref.key}`,
        packedTopic: `room:${ref.key}#mp`,
        live: new Map(),
        packed: new Set(),
        direct: new Set(),
        pending: new Map(),
        deliveries: 0,
        stats: undefined,
        unsubscribe: () => {},
      };
      created.unsubscribe = this.#broker.subscribe(ref, (d) => this.#fanout(created, d));
      this.#rooms.set(ref.key, created);
      local = created;
    }
    return local;
  }

  #live(local: LocalRoom, ctx: Conn): void {
    const peer = ctx.peer;
    local.live.set(peer.record.id, peer);
    if (ctx.msgpack) local.packed.add(peer);
    if (this.#publish && peer.subscribe) peer.subscribe(ctx.msgpack ? local.packedTopic : local.topic);
    else local.direct.add(peer);
  }

  // One encoded frame per encoding for every member: native topic publish where the runtime
  // has it, else a plain loop. Never re-encoded per member; MessagePack only when a member speaks it.
  #fanout(local: LocalRoom, delivery: Delivery): void {
    const { frame, except } = delivery;
    local.deliveries++;
    const sender = except === undefined ? undefined : local.live.get(except);
    const packedMembers = local.packed.size;
    // Once per delivery, not per member.
    const packed = packedMembers > 0 ? (delivery.value ? encodeFrame(delivery.value) : transcode(frame)) : undefined;
    if (local.stats) {
      // Every member but the excluded one receives it: counted without a loop, as native publish has none.
      const packedTo = packedMembers - (sender !== undefined && local.packed.has(sender) ? 1 : 0);
      const jsonTo = local.live.size - packedMembers - (sender !== undefined && !local.packed.has(sender) ? 1 : 0);
      local.stats.messagesOut += jsonTo + packedTo;
      local.stats.bytesOut += jsonTo * (typeof frame === "string" ? frame.length : frame.byteLength);
      if (packed) local.stats.bytesOut += packedTo * packed.byteLength;
    }
    for (const [peer, held] of local.pending) if (peer.record.id !== except) held.push(frame);
    if (this.#publish) {
      // The sender is left out by publishing from its own socket, on its encoding's topic.
      const native = sender?.publishOthers && !local.direct.has(sender) ? sender : undefined;
      const senderPacked = native !== undefined && local.packed.has(native);
      if (local.live.size > packedMembers) {
        if (native && !senderPacked) native.publishOthers?.(local.topic, frame);
        else this.#publish(local.topic, frame);
      }
      if (packed) {
        if (native && senderPacked) native.publishOthers?.(local.packedTopic, packed);
        else this.#publish(local.packedTopic, packed);
      }
    }
    for (const peer of local.direct) {
      if (peer.record.id !== except) peer.send(packed && local.packed.has(peer) ? packed : frame);
    }
  }
}
