/**
 * The counters behind `GET /metrics` (Prometheus text format) and, later, the
 * inspector. Hot counters (frames in and out, bytes) are plain number fields
 * bumped on the hot path; rare events (refusals, closes, error frames) are
 * counted by label in small maps. Gauges (connections, rooms) are read from
 * the engine when scraped, so nothing is counted twice.
 */

/** Counts of one route. */
export class RouteStats {
  /** frames received from clients */
  messagesIn = 0;
  /** their bytes */
  bytesIn = 0;
  /** frames sent to connections (each member of a fan-out counts) */
  messagesOut = 0;
  /** their bytes (characters of text frames) */
  bytesOut = 0;
}

/** A labelled counter: label value → count. */
export class LabelledCounter {
  readonly #counts = new Map<string, number>();
  /** add `n` (default 1) for `label` */
  inc(label: string, n = 1): void {
    this.#counts.set(label, (this.#counts.get(label) ?? 0) + n);
  }
  /** the count of `label` */
  get(label: string): number {
    return this.#counts.get(label) ?? 0;
  }
  /** every label and its count */
  entries(): IterableIterator<[string, number]> {
    return this.#counts.entries();
  }
}

/** What the engine reports when scraped. */
export interface GaugeSource {
  /** open connections by route and transport */
  connections(): Map<string, Map<string, number>>;
  /** rooms with members on this instance */
  rooms(): number;
  /** long-polling sessions open */
  pollSessions(): number;
  /** 1 while draining (readiness answers 503) */
  draining(): boolean;
  /** 0 when the broker cannot reach its backend */
  brokerUp(): boolean;
  /** the process's memory, where the runtime reports it */
  memory(): { rss: number; heapUsed: number } | undefined;
}

/** Every counter of one instance. */
export class Metrics {
  /** per route name */
  readonly routes = new Map<string, RouteStats>();
  /** handshakes and sessions refused before they existed, by reason (an error code) */
  readonly refused = new LabelledCounter();
  /** connections closed, by close code */
  readonly closes = new LabelledCounter();
  /** error frames sent, by error code */
  readonly errorFrames = new LabelledCounter();
  /** frames refused by the rate limit */
  rateLimited = 0;
  /** connections closed for persistent flooding (1008) */
  floodCloses = 0;
  /** connections closed as slow consumers (1013) */
  slowConsumerCloses = 0;
  /** connections closed after missing two heartbeats */
  heartbeatTimeouts = 0;
  /** handler faults (each closed its connection with 1011) */
  faults = 0;
  /** when this instance started (ms since epoch) */
  readonly startedAt = Date.now();

  /** the counters of route `name` */
  route(name: string): RouteStats {
    let stats = this.routes.get(name);
    if (!stats) {
      stats = new RouteStats();
      this.routes.set(name, stats);
    }
    return stats;
  }

  /** the Prometheus text exposition of every counter and gauge */
  render(gauges: GaugeSource, runtime: string): string {
    const out: string[] = [];
    for (const [name, type, help, samples] of [...this.#gauges(gauges, runtime), ...this.#counters()]) {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
    }
    return `${out.join("\n")}\n`;
  }

  #gauges(gauges: GaugeSource, runtime: string): Family[] {
    const conns: Sample[] = [];
    for (const [route, byTransport] of gauges.connections()) {
      for (const [transport, n] of byTransport) conns.push([labels({ route, transport }), n]);
    }
    const memory = gauges.memory();
    return [
      ["edgewire_info", "gauge", "Runtime of this instance.", [[labels({ runtime }), 1]]],
      ["edgewire_connections", "gauge", "Open connections by route and transport.", conns],
      ["edgewire_rooms", "gauge", "Rooms with members on this instance.", [["", gauges.rooms()]]],
      ["edgewire_poll_sessions", "gauge", "Long-polling sessions open.", [["", gauges.pollSessions()]]],
      [
        "edgewire_draining",
        "gauge",
        "1 while the instance drains for shutdown (readiness fails).",
        [["", gauges.draining() ? 1 : 0]],
      ],
      [
        "edgewire_broker_up",
        "gauge",
        "0 while the broker cannot reach its backend.",
        [["", gauges.brokerUp() ? 1 : 0]],
      ],
      [
        "edgewire_start_time_seconds",
        "gauge",
        "When this instance started.",
        [["", Math.floor(this.startedAt / 1000)]],
      ],
      ...(memory
        ? ([
            ["edgewire_resident_memory_bytes", "gauge", "Resident set size of this server.", [["", memory.rss]]],
            ["edgewire_heap_used_bytes", "gauge", "JavaScript heap in use.", [["", memory.heapUsed]]],
          ] satisfies Family[])
        : []),
    ];
  }

  #counters(): Family[] {
    const per = (pick: (s: RouteStats) => number): Sample[] =>
      [...this.routes].map(([route, s]) => [labels({ route }), pick(s)]);
    const by = (c: LabelledCounter, key: string): Sample[] =>
      [...c.entries()].map(([label, n]) => [labels({ [key]: label }), n]);
    return [
      ["edgewire_messages_received_total", "counter", "Frames received from clients.", per((s) => s.messagesIn)],
      ["edgewire_received_bytes_total", "counter", "Bytes of frames received.", per((s) => s.bytesIn)],
      [
        "edgewire_messages_sent_total",
        "counter",
        "Frames sent to connections (every member of a fan-out).",
        per((s) => s.messagesOut),
      ],
      ["edgewire_sent_bytes_total", "counter", "Bytes of frames sent.", per((s) => s.bytesOut)],
      [
        "edgewire_refused_total",
        "counter",
        "Handshakes and sessions refused before the upgrade, by reason.",
        by(this.refused, "reason"),
      ],
      ["edgewire_closes_total", "counter", "Connections closed, by close code.", by(this.closes, "code")],
      ["edgewire_error_frames_total", "counter", "Error frames sent, by error code.", by(this.errorFrames, "code")],
      [
        "edgewire_rate_limited_total",
        "counter",
        "Frames refused by the per-connection rate limit.",
        [["", this.rateLimited]],
      ],
      [
        "edgewire_flood_closes_total",
        "counter",
        "Connections closed for persistent flooding (1008).",
        [["", this.floodCloses]],
      ],
      [
        "edgewire_slow_consumer_closes_total",
        "counter",
        "Connections closed as slow consumers (1013).",
        [["", this.slowConsumerCloses]],
      ],
      [
        "edgewire_heartbeat_timeouts_total",
        "counter",
        "Connections closed after missing two heartbeats.",
        [["", this.heartbeatTimeouts]],
      ],
      [
        "edgewire_handler_faults_total",
        "counter",
        "Handler exceptions (each closed its connection with 1011).",
        [["", this.faults]],
      ],
    ];
  }
}

/** One exposition line's labels and value. */
type Sample = [labels: string, value: number];
/** A metric family: name, type, help, samples. */
type Family = [name: string, type: "counter" | "gauge", help: string, samples: Sample[]];

// `{k="v",…}` with Prometheus' escapes.
const labels = (entries: Record<string, string>): string =>
  `{${Object.entries(entries)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
    .join(",")}}`;
