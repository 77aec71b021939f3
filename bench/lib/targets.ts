/**
 * Every server the bench compares, how to start it, and which scenarios it can
 * serve. "edgewire-*" are this repo's adapters serving the service plus the bench's
 * broadcast room (targets/edgewire-service.ts); "raw-*" the runtime's own server (the
 * ceiling; on Node the corked `ws`, with the plain send loop beside it); socket.io and
 * crossws are what users would pick instead. "edgewire-*-msgpack" are the same servers
 * driven over edgewire.v1+msgpack.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { wranglerDev } from "../../tests/support/servers.ts";

/** repository root */
export const ROOT = resolve(import.meta.dirname, "../..");
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);

/** Offline settings wrangler needs on a machine with no network. */
export const WRANGLER_ENV = {
  CI: "true",
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

/**
 * What edgewire targets run with: the defaults, but for the limits a load test from one
 * address on one machine exceeds by design — a single publisher sends thousands of frames
 * a second (default rate limit 100/s), 10 000 connections come from 127.0.0.1 (default
 * 256 per address), a room holds 10 000 members and the publisher (default 10 000). The
 * limits' machinery still runs on every frame and connection; only the numbers are raised.
 */
export const EDGEWIRE_BENCH_ENV: Record<string, string> = {
  EDGEWIRE_RATE_LIMIT: "10000000",
  EDGEWIRE_RATE_BURST: "10000000",
  EDGEWIRE_MAX_CONNECTIONS_PER_ADDRESS: "1000000",
  EDGEWIRE_MAX_ROOM_MEMBERS: "1000000",
  EDGEWIRE_LOG_LEVEL: "warn",
};

/** What a target is, for the ratio tables. */
export type Kind = "edgewire" | "raw" | "peer" | "control";
/** The scenario families. */
export type Family = "echo" | "fanout" | "idle" | "longpoll" | "m2m";
/** What a target may refuse: a family, or many-to-many's binary relay variant alone. */
export type Refusable = Family | "m2m-binary";

/** One server under test. */
export interface Target {
  name: string;
  kind: Kind;
  runtime: "node" | "deno" | "bun" | "workerd";
  /** "ws" (edgewire.v1 JSON, or raw frames), socket.io's engine.io framing, or edgewire.v1+msgpack */
  proto: "ws" | "sio" | "mp";
  command(port: number, inspector: number, profile: boolean): [string, string[]];
  echoPath: string;
  roomPath(room: string): string;
  /**
   * many-to-many: the path of room `room` ("{}" in it is loadgen's room index) where every frame
   * reaches the room's other members — edgewire: a broadcast route, or (binary) the relay of /rooms
   */
  m2mPath?(room: string, binary: boolean): string;
  /** run only when a --targets entry starts with this (an instrumented variant, not a column of every run) */
  explicit?: string;
  /** why a scenario family (or many-to-many's binary variant) is not run on it */
  unsupported: Partial<Record<Refusable, string>>;
  startMs: number;
  /** file descriptors the server process tree spends per client connection (1 for a plain server) */
  fdsPerConn?: number;
}

// Every Node, Deno and Bun target preloads the same GC hook (SIGUSR2 → full GC).
const GC_HOOK = join(ROOT, "bench/gc-hook.js");
/** Whether a target answers SIGUSR2 with a forced GC (workerd under wrangler does not). */
export const forcesGc = (t: Target): boolean => t.runtime !== "workerd";
const nodeTs = (file: string, profile: boolean): [string, string[]] => [
  process.execPath,
  [
    ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${join(ROOT, "bench/.work/prof")}`] : []),
    "--expose-gc",
    "--import",
    GC_HOOK,
    "--import",
    "tsx",
    file,
  ],
];
const deno = (file: string): [string, string[]] => [
  bin("deno"),
  ["run", "--allow-net", "--allow-env", "--allow-read", "--v8-flags=--expose-gc", "--preload", GC_HOOK, file],
];
const bun = (file: string, profile = false): [string, string[]] => [
  bin("bun"),
  [...(profile ? ["--cpu-prof", `--cpu-prof-dir=${join(ROOT, "bench/.work/prof")}`] : []), "--preload", GC_HOOK, file],
];
const ws = (p: string) => p;
const LP_ONLY_EDGEWIRE = "has no long-polling transport of the edgewire protocol";
const noLp = { longpoll: LP_ONLY_EDGEWIRE };
/** raw servers and crossws: /m2m/:room relays every frame, text or binary, to the other members */
const relayToOthers = (r: string) => `/m2m/${r}`;
/** edgewire: JSON and MessagePack updates are the bench route's `broadcast`; binary frames the service's relay */
const edgewireM2m = (r: string, binary: boolean) => (binary ? `/rooms/${r}` : `/cast/${r}`);

/** raw-bun started with `flag` (bench/targets/raw-bun.js relaying an envelope): a peer, not the raw ceiling. */
function bunRelay(name: string, flag: string, proto: Target["proto"] = "ws"): Target {
  return {
    name,
    kind: "peer",
    runtime: "bun",
    proto,
    command: (_p, _i, prof) => {
      const [cmd, args] = bun("bench/targets/raw-bun.js", prof);
      return [cmd, [...args, flag]];
    },
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    unsupported: { ...noLp, m2m: "relays edgewire's sequenced envelope; many-to-many is measured on raw-bun" },
    startMs: 30_000,
  };
}

/** raw-bun relaying a broadcast frame `what` (started with `flag`) to the others: a many-to-many peer. */
function bunBroadcastRelay(name: string, flag: string, what: string): Target {
  return {
    name,
    kind: "peer",
    runtime: "bun",
    proto: "ws",
    command: (_p, _i, prof) => {
      const [cmd, args] = bun("bench/targets/raw-bun.js", prof);
      return [cmd, [...args, flag]];
    },
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: Object.fromEntries([
      ...(["echo", "fanout", "idle", "longpoll"] as const).map((f) => [f, `relays ${what}: many-to-many only`]),
      ["m2m-binary", "binary frames are relayed as they are: measured on raw-bun"],
    ]),
    startMs: 30_000,
  };
}

/**
 * The same edgewire server as `t`, with the load client speaking edgewire.v1+msgpack.
 * Long-polling stays with `t`: bench/lib/longpoll.ts speaks the JSON protocol only.
 */
const msgpack = (t: Target): Target => ({
  ...t,
  name: `${t.name}-msgpack`,
  proto: "mp",
  // Echo and idle carry nothing the encoding changes (/echo returns bytes as they are): measured on the JSON sibling.
  unsupported: {
    ...t.unsupported,
    echo: `/echo returns frames as they are on either encoding; measured on ${t.name}`,
    idle: `an idle connection holds no frames; measured on ${t.name}`,
    longpoll: `the bench's long-polling client speaks edgewire.v1 (JSON) only; measured on ${t.name}`,
    "m2m-binary": `relayed bytes are the same on either encoding; measured on ${t.name}`,
  },
});

// The edgewire targets serve service/service.ts as it is, plus the bench's /cast/:room (targets/edgewire-service.ts).
const EDGEWIRE_NODE: Target = {
  name: "edgewire-node",
  kind: "edgewire",
  runtime: "node",
  proto: "ws",
  command: (_p, _i, prof) => nodeTs("bench/targets/edgewire-node.ts", prof),
  echoPath: "/echo",
  roomPath: (r) => ws(`/rooms/${r}`),
  m2mPath: edgewireM2m,
  unsupported: {},
  startMs: 30_000,
};
const EDGEWIRE_DENO: Target = {
  name: "edgewire-deno",
  kind: "edgewire",
  runtime: "deno",
  proto: "ws",
  command: () => deno("bench/targets/edgewire-deno.js"),
  echoPath: "/echo",
  roomPath: (r) => `/rooms/${r}`,
  m2mPath: edgewireM2m,
  unsupported: {},
  startMs: 30_000,
};
const EDGEWIRE_BUN: Target = {
  name: "edgewire-bun",
  kind: "edgewire",
  runtime: "bun",
  proto: "ws",
  command: (_p, _i, prof) => bun("bench/targets/edgewire-bun.js", prof),
  echoPath: "/echo",
  roomPath: (r) => `/rooms/${r}`,
  m2mPath: edgewireM2m,
  unsupported: {},
  startMs: 30_000,
};
const EDGEWIRE_WORKERD: Target = {
  name: "edgewire-workerd",
  kind: "edgewire",
  runtime: "workerd",
  proto: "ws",
  // A Worker reads its configuration from vars.
  command: (port, inspector) =>
    wranglerDev(port, inspector, [
      "--config",
      join(ROOT, "bench/targets/edgewire-workerd/wrangler.toml"),
      "--log-level",
      "warn",
      ...Object.entries(EDGEWIRE_BENCH_ENV).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
    ]),
  echoPath: "/echo",
  roomPath: (r) => `/rooms/${r}`,
  m2mPath: edgewireM2m,
  unsupported: {},
  startMs: 90_000,
  // wrangler dev's proxy chain inside workerd: measured 6 descriptors per client WebSocket
  fdsPerConn: 6,
};

/**
 * The same edgewire server as `t` on its `/cast-compact/:room` (broadcasts as `[1, from, data]`,
 * the route's `compactBroadcasts`): many-to-many JSON only, a peer beside `t` — what the compact
 * frame buys edgewire itself.
 */
const compact = (t: Target): Target => ({
  ...t,
  name: `${t.name}-compact`,
  kind: "peer",
  m2mPath: (r, binary) => (binary ? `/rooms/${r}` : `/cast-compact/${r}`),
  unsupported: Object.fromEntries([
    ...(["echo", "fanout", "idle", "longpoll"] as const).map((f) => [f, `broadcasts only: measured on ${t.name}`]),
    ["m2m-binary", `binary relay has no broadcast frame: measured on ${t.name}`],
  ]),
});

/**
 * edgewire-bun with its broadcast path timed in place (bench/targets/edgewire-bun-split.js writes
 * the parts to bench/.work/split.log): many-to-many only, a peer.
 */
const EDGEWIRE_BUN_SPLIT: Target = {
  ...compact(EDGEWIRE_BUN),
  name: "edgewire-bun-split",
  command: (_p, _i, prof) => bun("bench/targets/edgewire-bun-split.js", prof),
  m2mPath: edgewireM2m,
  explicit: "edgewire-bun-split",
};

/** All targets, in table order (each msgpack variant next to its JSON sibling). */
export const TARGETS: Target[] = [
  EDGEWIRE_NODE,
  msgpack(EDGEWIRE_NODE),
  compact(EDGEWIRE_NODE),
  EDGEWIRE_DENO,
  msgpack(EDGEWIRE_DENO),
  compact(EDGEWIRE_DENO),
  EDGEWIRE_BUN,
  msgpack(EDGEWIRE_BUN),
  compact(EDGEWIRE_BUN),
  EDGEWIRE_BUN_SPLIT,
  { ...msgpack(EDGEWIRE_BUN_SPLIT), unsupported: EDGEWIRE_BUN_SPLIT.unsupported },
  EDGEWIRE_WORKERD,
  msgpack(EDGEWIRE_WORKERD),
  {
    // The Node ceiling: `ws` corking each socket until the tick ends, as adapters/node.ts does.
    name: "raw-ws-corked",
    kind: "raw",
    runtime: "node",
    proto: "ws",
    command: (_p, _i, prof) => {
      const [cmd, args] = nodeTs("bench/targets/raw-ws.ts", prof);
      return [cmd, [...args, "--cork"]];
    },
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: noLp,
    startMs: 30_000,
  },
  {
    // The plain send loop (one write per frame): what a naive `ws` server does; the second Node column.
    name: "raw-ws",
    kind: "raw",
    runtime: "node",
    proto: "ws",
    command: (_p, _i, prof) => nodeTs("bench/targets/raw-ws.ts", prof),
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: noLp,
    startMs: 30_000,
  },
  {
    name: "raw-deno",
    kind: "raw",
    runtime: "deno",
    proto: "ws",
    command: () => deno("bench/targets/raw-deno.js"),
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: noLp,
    startMs: 30_000,
  },
  {
    name: "raw-bun",
    kind: "raw",
    runtime: "bun",
    proto: "ws",
    command: (_p, _i, prof) => bun("bench/targets/raw-bun.js", prof),
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: noLp,
    startMs: 30_000,
  },
  // raw-bun relaying edgewire's envelope (same bytes per delivery): isolates the envelope's cost;
  // without "room": what dropping the room name from message frames would buy.
  bunRelay("raw-bun-envelope", "--envelope"),
  bunRelay("raw-bun-envelope-no-room", "--envelope-no-room"),
  // the same relay on edgewire.v1+msgpack: edgewire-bun-msgpack ÷ it is edgewire's own work on that subprotocol
  bunRelay("raw-bun-envelope-msgpack", "--envelope-msgpack", "mp"),
  // Many-to-many: raw-bun relaying edgewire's broadcast frame (room and sender around the data) with ws.publish,
  // so edgewire-bun ÷ it is edgewire's own work per update and it ÷ raw-bun what the bigger frame costs.
  bunBroadcastRelay("raw-bun-broadcast-envelope", "--broadcast-envelope", "edgewire's broadcast frame"),
  // The positional broadcast [1,"from",data] (MessagePack's, as JSON): what a compact frame would buy.
  bunBroadcastRelay("raw-bun-compact-envelope", "--compact-envelope", "a compact broadcast frame"),
  {
    // A plain Worker (/echo) + one SQLite-backed Durable Object per room (Hibernation API), no framework,
    // under the same `wrangler dev` as edgewire-workerd; its own config, state in a fresh temp dir.
    name: "raw-workerd",
    kind: "raw",
    runtime: "workerd",
    proto: "ws",
    command: (port, inspector) =>
      wranglerDev(port, inspector, [
        "--config",
        join(ROOT, "bench/targets/raw-workerd/wrangler.toml"),
        "--log-level",
        "warn",
      ]),
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: noLp,
    startMs: 90_000,
    // the same wrangler dev proxy chain as edgewire-workerd
    fdsPerConn: 6,
  },
  {
    name: "socket.io-node",
    kind: "peer",
    runtime: "node",
    proto: "sio",
    command: (_p, _i, prof) => nodeTs("bench/targets/socketio.ts", prof),
    echoPath: "/socket.io/?EIO=4&transport=websocket",
    roomPath: (r) => `/socket.io/?EIO=4&transport=websocket&room=${r}`,
    unsupported: {
      longpoll: "its polling transport is engine.io's own protocol, not edgewire's; not implemented in the load client",
      m2m: "not implemented in the load client's socket.io framing (issue 25 compares raw servers and crossws)",
    },
    startMs: 30_000,
  },
  {
    name: "crossws-node",
    kind: "peer",
    runtime: "node",
    proto: "ws",
    command: (_p, _i, prof) => nodeTs("bench/targets/crossws-node.ts", prof),
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: { longpoll: "crossws has no long-polling transport (it has SSE, a different protocol)" },
    startMs: 30_000,
  },
  {
    name: "crossws-deno",
    kind: "peer",
    runtime: "deno",
    proto: "ws",
    command: () => deno("bench/targets/crossws-deno.js"),
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: { longpoll: "crossws has no long-polling transport (it has SSE, a different protocol)" },
    startMs: 30_000,
  },
  {
    name: "crossws-bun",
    kind: "peer",
    runtime: "bun",
    proto: "ws",
    command: () => bun("bench/targets/crossws-bun.js"),
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: relayToOthers,
    unsupported: { longpoll: "crossws has no long-polling transport (it has SSE, a different protocol)" },
    startMs: 30_000,
  },
  {
    // Same-vs-same control: a second, identical edgewire-node process. Its
    // ratio to edgewire-node is the noise floor of every other ratio.
    name: "edgewire-node#2",
    kind: "control",
    runtime: "node",
    proto: "ws",
    command: (_p, _i, prof) => nodeTs("bench/targets/edgewire-node.ts", prof),
    echoPath: "/echo",
    roomPath: (r) => `/rooms/${r}`,
    m2mPath: edgewireM2m,
    unsupported: {},
    startMs: 30_000,
  },
];

/**
 * The same service from another checkout of this repository (EDGEWIRE_BENCH_BASELINE=<its directory>,
 * e.g. a `git worktree` of the commit before a change): `baseline-node`, `-deno`, `-bun`, run beside
 * today's code in the same rounds, so a change's cost is read against the code before it. The
 * checkout needs its node_modules (a symlink to this one's will do); older ones keep their entry
 * files in main/, newer ones in service/.
 */
function baselines(dir: string | undefined): Target[] {
  if (!dir) return [];
  // A checkout with the bench's entries serves /cast/:room as today's targets do; an older one its service only.
  const benchEntry = (runtime: string) =>
    join(dir, "bench/targets", `edgewire-${runtime}.${runtime === "node" ? "ts" : "js"}`);
  const bench = existsSync(benchEntry("node"));
  const entry = (runtime: string) =>
    bench
      ? benchEntry(runtime)
      : existsSync(join(dir, "service", `${runtime}.ts`))
        ? join(dir, "service", `${runtime}.ts`)
        : join(dir, "main", `${runtime}.ts`);
  const base = {
    kind: "peer" as const,
    proto: "ws" as const,
    echoPath: "/echo",
    ...(bench ? { m2mPath: edgewireM2m } : {}),
    unsupported: bench ? {} : { m2m: "this checkout has no bench/targets/edgewire-service.ts (no /cast/:room)" },
    startMs: 30_000,
  };
  return [
    {
      ...base,
      name: "baseline-node",
      runtime: "node",
      command: (_p, _i, prof) => nodeTs(entry("node"), prof),
      roomPath: (r) => `/rooms/${r}`,
    },
    {
      ...base,
      name: "baseline-deno",
      runtime: "deno",
      command: () => deno(entry("deno")),
      roomPath: (r) => `/rooms/${r}`,
    },
    {
      ...base,
      name: "baseline-bun",
      runtime: "bun",
      command: (_p, _i, prof) => bun(entry("bun"), prof),
      roomPath: (r) => `/rooms/${r}`,
    },
  ];
}
TARGETS.push(...baselines(process.env.EDGEWIRE_BENCH_BASELINE));

/** the raw runtime server for an edgewire runtime (on Node the corked `ws`, as the adapter corks) */
export const RAW_OF: Record<string, string | undefined> = {
  node: "raw-ws-corked",
  deno: "raw-deno",
  bun: "raw-bun",
  workerd: "raw-workerd",
};
/** the peers an edgewire runtime is compared with */
export const PEERS_OF: Record<string, string[]> = {
  node: ["crossws-node", "socket.io-node"],
  deno: ["crossws-deno"],
  bun: ["crossws-bun"],
  workerd: [],
};
/** the plain-loop raw server where one differs from RAW_OF: Node's `ws` without corking, the second Node column */
export const NAIVE_RAW_OF: Record<string, string | undefined> = { node: "raw-ws" };
/** RAW_OF, or for a run from before raw-ws-corked existed (re-rendered with --render) its plain `ws` */
export const rawOf = (runtime: string, present: ReadonlySet<string>): string | undefined => {
  const raw = RAW_OF[runtime];
  return raw && !present.has(raw) && NAIVE_RAW_OF[runtime] ? NAIVE_RAW_OF[runtime] : raw;
};
