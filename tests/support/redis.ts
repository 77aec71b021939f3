/**
 * Redis for the fleet tests: the machine's shared server (127.0.0.1:6379,
 * database 13, a key prefix per test, cleaned up after) and, for outages, a
 * redis-server of the test's own on a free port that the test may stop and
 * restart (the shared one is never touched). CI fails, not skips, when Redis
 * is missing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@redis/client";
import { freePort } from "./servers.ts";

/** The shared server's URL for tests: database 13. */
export const SHARED_REDIS = process.env.EDGEWIRE_TEST_REDIS ?? "redis://127.0.0.1:6379/13";

let n = 0;
/** A key prefix no other test uses. */
export const testPrefix = (tag: string) => `ewtest:${tag}:${process.pid}:${Date.now().toString(36)}:${n++}:`;

/** Delete every key under `prefix` in the database at `url`. */
export async function cleanup(url: string, prefix: string): Promise<void> {
  const client = createClient({ url });
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 }))
      if (keys.length) await client.del(keys);
  } finally {
    await client.close();
  }
}

/** Fail clearly when Redis is not there: the fleet tests need a real one. */
export async function requireRedis(url = SHARED_REDIS): Promise<void> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 3000 } });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new Error(`the fleet tests need Redis at ${url}: ${(error as Error).message}`);
  } finally {
    await client.close().catch(() => {});
  }
}

/** Wait (up to 5 s) for a redis-server just started to answer at `url`. */
export async function redisStarted(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      return await requireRedis(url);
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`redis-server at ${url} did not start`);
}

export interface OwnRedis {
  port: number;
  url: string;
  /** stop it (SIGTERM: it writes its AOF and exits) and wait */
  stop(): Promise<void>;
  /** kill it (SIGKILL: no chance to write anything more) and wait */
  kill(): Promise<void>;
  /** start it again on the same port and directory */
  start(): Promise<void>;
}

/**
 * A redis-server of the test's own on a free port, with an append-only file (fsync on every write)
 * in a temporary directory, so a restart — even after kill -9 — keeps what it acknowledged.
 */
export async function ownRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "edgewire-redis-"));
  let child: ChildProcess | undefined;
  const up = async () => {
    child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir,
      ],
      {
        stdio: "ignore",
      },
    );
    await redisStarted(`redis://127.0.0.1:${port}`);
  };
  const end = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((done) => {
      c.once("exit", () => done());
      c.kill(signal);
    });
  };
  await up();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => end("SIGTERM"),
    kill: () => end("SIGKILL"),
    start: up,
  };
}
