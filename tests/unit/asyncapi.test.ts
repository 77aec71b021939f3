/**
 * The AsyncAPI document: valid AsyncAPI 3.0 (by @asyncapi/parser) for our
 * service and for a user's own routes, current in docs/asyncapi.json, and
 * complete: every error code and close code, from the one table in
 * src/protocol.ts that the source itself is checked against.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";
import { Hono } from "hono";
import * as v from "valibot";
import { ASYNCAPI_FILE, serviceAsyncApi } from "../../scripts/asyncapi-doc.ts";
import { service } from "../../service/service.ts";
import { type AsyncApiDocument, schemaOf } from "../../src/asyncapi.ts";
import { createEdgewire, defineRoom, defineRoute } from "../../src/index.ts";
import { CLOSE_CODES, CloseCode, ERROR_CODES, ErrorCode } from "../../src/protocol.ts";

const root = resolve(import.meta.dirname, "../..");
const parser = new Parser();

/** The document's error diagnostics (warnings and hints are advice, not invalidity). */
async function errorsOf(document: unknown): Promise<string[]> {
  const diagnostics = await parser.validate(JSON.stringify(document));
  return diagnostics
    .filter((d) => d.severity === DiagnosticSeverity.Error)
    .map((d) => `${d.code} at ${d.path.join(".")}: ${d.message}`);
}

async function served(app: { request(path: string): Response | Promise<Response> }, path = "/asyncapi.json") {
  const response = await app.request(path);
  assert.equal(response.status, 200);
  return (await response.json()) as AsyncApiDocument;
}

// A user's edgewire: a chat with a variant schema, a recursive schema, schemas JSON Schema cannot
// express, a raw rate-limited route, and a name that is not a valid channel key.
const chat = defineRoom({
  path: "/chat/:room",
  schema: v.variant("type", [
    v.object({
      type: v.literal("say"),
      text: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(500)),
      replyTo: v.optional(v.pipe(v.number(), v.integer())),
    }),
    v.object({ type: v.literal("typing"), typing: v.boolean() }),
  ]),
  member: () => ({}),
  binary: "relay",
});
type Tree = { label: string; children: Tree[] };
const TreeSchema: v.GenericSchema<Tree> = v.object({ label: v.string(), children: v.array(v.lazy(() => TreeSchema)) });
const outline = defineRoom({ path: "/outline/:room", schema: TreeSchema });
const rpc = defineRoute({
  path: "/rpc",
  schema: v.object({ call: v.string(), at: v.date(), check: v.custom<string>((x) => typeof x === "string") }),
});
const stamp = defineRoom({
  path: "/stamp/:room",
  schema: v.pipe(
    v.string(),
    v.transform((s) => s.length),
  ),
});
const signed = defineRoom({
  path: "/signed/:room",
  schema: v.object({ text: v.string() }),
  publishes: v.object({ text: v.string(), signedBy: v.string() }),
  message: (ctx, data) => ctx.room.publish({ ...data, signedBy: "x" }),
});
const raw = defineRoute({ path: "/raw", rateLimit: { perSecond: 10, burst: 10 } });
const nested = defineRoom({ path: "/teams/:room/board" });
const users = createEdgewire({
  routes: [chat, outline, rpc, stamp, raw, nested, signed],
  asyncapi: { title: "chat", version: "2.1.0", servers: { prod: { host: "chat.example.com", protocol: "wss" } } },
});

describe("asyncapi", () => {
  it("docs/asyncapi.json is what the service serves (npm run docs:asyncapi)", async () => {
    const committed = readFileSync(ASYNCAPI_FILE, "utf8");
    assert.ok(committed === (await serviceAsyncApi()), "docs/asyncapi.json is behind the code: run `npm run docs`");
  });

  it("our service's document is valid AsyncAPI 3.0", async () => {
    const document = await served(service.app);
    assert.equal(document.asyncapi, "3.0.0");
    assert.deepEqual(await errorsOf(document), []);
    assert.deepEqual(Object.keys(document.channels), ["echo", "room"]);
    assert.equal(document.channels.room?.address, "/rooms/{room}");
    for (const [key, operation] of Object.entries(document.operations)) {
      assert.match(key, /\.(receive|send)$/);
      assert.ok((operation.messages as unknown[]).length > 0, `${key} has messages`);
    }
  });

  it("a user's edgewire: valid, its schemas in it, the inexpressible marked instead of crashing", async () => {
    const document = await served(users.app);
    assert.deepEqual(await errorsOf(document), []);
    const { document: parsed, diagnostics } = await parser.parse(JSON.stringify(document));
    assert.ok(parsed, diagnostics.map((d) => d.message).join("\n"));
    assert.equal(parsed.info().title(), "chat");
    assert.equal(parsed.servers().get("prod")?.protocol(), "wss");

    const publish = parsed.channels().get("chat")?.messages().get("publish")?.payload()?.json();
    const data = JSON.stringify((publish as { properties: { data: unknown } }).properties.data);
    for (const field of ['"say"', '"typing"', '"text"', '"replyTo"', '"maxLength":500', '"type":"integer"'])
      assert.ok(data.includes(field), `chat's publish data lacks ${field}: ${data}`);
    const message = JSON.stringify(parsed.channels().get("chat")?.messages().get("message")?.payload()?.json());
    assert.ok(message.includes('"replyTo"'), "the message frame's data is the route's schema too");
    const sends = parsed
      .operations()
      .get("chat.send")
      ?.messages()
      .all()
      .map((m) => m.id());
    assert.ok(sends?.includes("binary"), "a relaying room sends binary frames");
    for (const frame of ["welcome", "resync", "message", "broadcast", "presence", "ack", "pong", "error"])
      assert.ok(sends?.includes(frame), `chat.send lacks ${frame}`);

    // v.lazy: the definitions live in components, and the references reach them.
    assert.ok(document.components.schemas["outline.input.0"], Object.keys(document.components.schemas).join());
    assert.doesNotMatch(JSON.stringify(document), /#\/\$defs\//);

    const rpcMessage = document.channels.rpc?.messages as Record<string, { payload: Record<string, unknown> }>;
    assert.match(String(rpcMessage.message?.payload["x-edgewire-partial"]), /date|custom/);
    const stampOut = JSON.stringify(document.channels.stamp?.messages);
    assert.match(stampOut, /x-edgewire-partial/, "a type-changing transform is marked on the output side");
    assert.equal(document.channels["teams-board"]?.address, "/teams/{room}/board");
    // publishes: members receive its shape, clients still send the message schema's.
    const signedMessages = document.channels.signed?.messages as Record<string, { payload: unknown }>;
    assert.match(JSON.stringify(signedMessages.message?.payload), /signedBy/, "the message frame's data is publishes");
    assert.doesNotMatch(JSON.stringify(signedMessages.publish?.payload), /signedBy/, "publish is the client's schema");
    assert.ok(JSON.stringify(document.channels.raw?.messages).includes("components/messages/error"));
  });

  it("a stateful room's view: its viewSchema (or its room state) on the message frame and a view message", async () => {
    const lot = defineRoom({
      path: "/lot/:item",
      roomState: v.object({ best: v.optional(v.number(), 0), secret: v.optional(v.string(), "") }),
      view: (state) => ({ best: state.best }),
      viewSchema: v.object({ best: v.number() }),
    });
    const whole = defineRoom({ path: "/whole/:room", roomState: v.object({ n: v.optional(v.number(), 0) }) });
    const document = await served(createEdgewire({ routes: [lot, whole] }).app);
    assert.deepEqual(await errorsOf(document), []);
    const lotMessages = JSON.stringify(document.channels.lot?.messages);
    assert.match(lotMessages, /"best"/, "the view's schema");
    assert.doesNotMatch(lotMessages, /secret/, "not the state the view hides");
    assert.match(
      JSON.stringify(document.channels.whole?.messages),
      /"n"/,
      "no view: the room state is what members see",
    );
    const lotFrames = (document.channels.lot?.messages ?? {}) as Record<string, unknown>;
    assert.ok(lotFrames.view, "the view frame");
    // The welcome carries the view too: described by the same schema, on this route's own welcome.
    const welcomeView = (lotFrames.welcome as { payload?: { properties?: { view?: unknown } } }).payload?.properties
      ?.view;
    assert.match(JSON.stringify(welcomeView), /"best"/, "the welcome's view has the view's schema");
    assert.doesNotMatch(JSON.stringify(welcomeView), /secret/);
    assert.match(
      JSON.stringify(((document.channels.whole?.messages ?? {}) as Record<string, unknown>).welcome),
      /"n"/,
      "the room state's schema on a route without a view",
    );
  });

  it("a route with compactBroadcasts: its broadcast message is the positional [1, from, data], still valid AsyncAPI", async () => {
    const cursors = defineRoom({
      path: "/cursors/:room",
      schema: v.object({ x: v.number(), y: v.number() }),
      compactBroadcasts: true,
      message: (ctx, data) => ctx.room.broadcast(data),
    });
    const plain = defineRoom({ path: "/plain/:room", message: (ctx, data) => ctx.room.broadcast(data) });
    const document = await served(createEdgewire({ routes: [cursors, plain] }).app);
    assert.deepEqual(await errorsOf(document), []);
    type Messages = Record<string, { payload: Record<string, unknown> }>;
    const broadcastOf = (channel: string) =>
      ((document.channels[channel]?.messages ?? {}) as Messages).broadcast?.payload;
    const compact = broadcastOf("cursors");
    assert.equal(compact?.type, "array");
    assert.match(JSON.stringify(compact?.items), /"x"/, "the data's schema in the third place");
    const full = broadcastOf("plain");
    assert.equal(full?.type, "object");
  });

  it("every error code and close code is in the document, from the one table", async () => {
    const document = await served(service.app);
    assert.deepEqual(Object.keys(ERROR_CODES).sort(), Object.values(ErrorCode).sort(), "ERROR_CODES = ErrorCode");
    const text = document.info.description;
    for (const code of Object.values(ErrorCode)) {
      assert.ok(document["x-edgewire-error-codes"][code], `x-edgewire-error-codes lacks ${code}`);
      assert.ok(text.includes(`| \`${code}\` |`), `the description's table lacks ${code}`);
    }
    const closes = document["x-edgewire-close-codes"] as Record<string, string>;
    for (const code of [...Object.values(CloseCode), ...Object.keys(CLOSE_CODES).map(Number)]) {
      assert.ok(closes[code], `x-edgewire-close-codes lacks ${code}`);
      assert.ok(text.includes(`| ${code} |`), `the description's table lacks close code ${code}`);
    }
    const error = document.components.schemas.error as { properties: { code: { anyOf: { enum?: string[] }[] } } };
    const inFrames = error.properties.code.anyOf[0]?.enum ?? [];
    for (const [code, info] of Object.entries(ERROR_CODES))
      assert.equal(inFrames.includes(code), info.frame === true, `error frames' code enum and ${code}`);
  });

  it("served under a mount prefix, on by default, off with asyncapi: false", async () => {
    const app = new Hono().route("/realtime", users.app);
    const mounted = await served(app, "/realtime/asyncapi.json");
    assert.equal(mounted.channels.chat?.address, "/realtime/chat/{room}");
    assert.equal((await served(users.app)).channels.chat?.address, "/chat/{room}", "the cached document is unchanged");
    const off = createEdgewire({ routes: [chat], asyncapi: false });
    assert.equal((await off.app.request("/asyncapi.json")).status, 404);
  });

  it("schemaOf never throws, and says what it could not express", () => {
    const custom = schemaOf(
      v.custom(() => true),
      "input",
    );
    assert.equal(typeof custom["x-edgewire-partial"], "string");
    assert.deepEqual(schemaOf(v.object({ n: v.number() }), "input"), {
      type: "object",
      properties: { n: { type: "number" } },
      required: ["n"],
    });
  });
});

// ---- The source uses no error or close code the table lacks. ----

/** Snake_case string literals in server code that name other things than error codes (tables, a query key, resync reasons, valibot actions). */
const NOT_CODES = new Set([
  ...["ew_rooms", "ew_messages", "access_token", "epoch_changed", "history_truncated"],
  ...["trim_start", "trim_end", "to_lower_case", "to_upper_case"],
]);

function serverFiles(dir = "src"): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (path === join("src", "client") || path.endsWith(".gen.ts")) return []; // the SDK's own RoomError codes
    return statSync(join(root, path)).isDirectory() ? serverFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** Codes `source` uses that the lists lack: snake_case literals (error codes) and 1000–1015 (close codes). */
function unlistedCodes(source: string, errors: ReadonlySet<string>, closes: ReadonlySet<number>): string[] {
  const code = source.replace(/^\s*(\/\/|\*|\/\*\*).*$/gm, "");
  const found: string[] = [];
  for (const [, literal] of code.matchAll(/["'`]([a-z][a-z0-9]*(?:_[a-z0-9]+)+)["'`]/g))
    if (!errors.has(literal as string) && !NOT_CODES.has(literal as string) && !literal?.startsWith("edgewire_"))
      found.push(literal as string);
  for (const [number] of code.matchAll(/\b10(?:0\d|1[0-5])\b/g)) if (!closes.has(Number(number))) found.push(number);
  return found;
}

describe("codes in the source", () => {
  const errors = new Set<string>(Object.keys(ERROR_CODES));
  const closes = new Set(Object.keys(CLOSE_CODES).map(Number));

  it("every error code and close code src/ uses is in ERROR_CODES / CLOSE_CODES (src/protocol.ts)", () => {
    for (const file of serverFiles()) {
      const unlisted = unlistedCodes(readFileSync(join(root, file), "utf8"), errors, closes);
      assert.deepEqual(unlisted, [], `${relative(root, join(root, file))} uses codes src/protocol.ts does not list`);
    }
  });

  it("the check finds a code the table lacks", () => {
    const source = 'ctx.error("made_up_code", "no");\npeer.close(1003, "unsupported");\n// 1014 in a comment is fine';
    assert.deepEqual(unlistedCodes(source, errors, closes), ["made_up_code", "1003"]);
    const withoutRateLimited = new Set([...errors].filter((c) => c !== "rate_limited"));
    assert.deepEqual(unlistedCodes('return "rate_limited";', withoutRateLimited, closes), ["rate_limited"]);
  });
});
