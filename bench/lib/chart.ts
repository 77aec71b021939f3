/**
 * The at-a-glance chart: one panel per scenario, one horizontal bar per target
 * (its median headline number), coloured by kind, edgewire's ratio to the raw
 * runtime printed beside its bar. Drawn as SVG and rasterised to PNG offline
 * with @resvg/resvg-js (system fonts; the SVG is kept too).
 */
import { aggregate, clientBound, type Meta, type RunRecord, type Scenario } from "./report.ts";
import { rawOf, type Target } from "./targets.ts";

const COLORS: Record<string, string> = { edgewire: "#2563eb", raw: "#6b7280", peer: "#f59e0b", control: "#93c5fd" };
const colorOf = (t: Target): string => (t.name.startsWith("socket.io") ? "#dc2626" : (COLORS[t.kind] ?? "#000"));
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function fmt(v: number, family: string): string {
  if (!Number.isFinite(v)) return "–";
  if (family === "idle") return `${(v / 1024).toFixed(1)} KB/conn`;
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)} M/s` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k/s` : `${v.toFixed(0)}/s`;
}

/** SVG text of the chart and, when the rasteriser loads, its PNG. */
export async function renderChart(
  meta: Meta,
  scenarios: Scenario[],
  targets: Target[],
  records: RunRecord[],
): Promise<{ svg: string; png?: Buffer; error?: string }> {
  const cols = 2;
  const panelW = 800;
  const rowH = 19;
  const panelH = 56 + targets.length * rowH;
  const headH = 78;
  const rows = Math.ceil(scenarios.length / cols);
  const W = cols * panelW + 20;
  const H = headH + rows * (panelH + 14) + 10;
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif">`,
  );
  o.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  o.push(
    `<text x="14" y="30" font-size="21" font-weight="bold" fill="#111">edgewire vs raw runtime servers vs socket.io / crossws (${esc(meta.mode)} run)</text>`,
  );
  o.push(
    `<text x="14" y="52" font-size="13" fill="#444">${esc(`${meta.date.slice(0, 10)} · ${meta.machine.cpu} · node ${meta.versions.node} · ${(meta.versions.deno ?? "").split(" ").slice(0, 2).join(" ")} · bun ${meta.versions.bun} · workerd ${meta.versions.workerd} · median of ${meta.rounds} rounds`)}</text>`,
  );
  // legend
  let lx = 14;
  const legend: [string, string][] = [
    ["edgewire", "#2563eb"],
    ["raw runtime", "#6b7280"],
    ["crossws", "#f59e0b"],
    ["socket.io", "#dc2626"],
    ["control (2nd edgewire-node)", "#93c5fd"],
  ];
  for (const [label, color] of legend) {
    o.push(
      `<rect x="${lx}" y="60" width="12" height="12" fill="${color}"/><text x="${lx + 16}" y="71" font-size="12" fill="#333">${esc(label)}</text>`,
    );
    lx += 30 + label.length * 7.2;
  }
  o.push(
    `<text x="${lx + 10}" y="71" font-size="12" fill="#333">faded bar + † = client-bound (server &lt; 90 % CPU) · ×raw = edgewire ÷ raw, same runtime</text>`,
  );

  scenarios.forEach((s, i) => {
    const px = 10 + (i % cols) * panelW;
    const py = headH + Math.floor(i / cols) * (panelH + 14);
    const aggs = aggregate(s, records);
    const names = new Set(targets.map((x) => x.name));
    o.push(`<rect x="${px}" y="${py}" width="${panelW - 10}" height="${panelH}" fill="#f8fafc" stroke="#e2e8f0"/>`);
    const unit =
      s.family === "idle"
        ? "RSS per connection, lower is better"
        : s.family === "fanout" || s.family === "m2m"
          ? "deliveries/s, higher is better"
          : "messages/s, higher is better";
    o.push(`<text x="${px + 10}" y="${py + 20}" font-size="14" font-weight="bold" fill="#111">${esc(s.id)}</text>`);
    o.push(`<text x="${px + 10}" y="${py + 37}" font-size="11.5" fill="#555">${esc(`${s.title} — ${unit}`)}</text>`);
    const vals = targets.map((t) => aggs.get(t.name)?.main ?? Number.NaN).filter((v) => Number.isFinite(v) && v > 0);
    const max = vals.length ? Math.max(...vals) : 1;
    const labelW = 140;
    const barMax = panelW - 10 - labelW - 190;
    targets.forEach((t, j) => {
      const y = py + 48 + j * rowH;
      const a = aggs.get(t.name);
      o.push(
        `<text x="${px + labelW}" y="${y + 13}" font-size="12" text-anchor="end" fill="#222">${esc(t.name)}</text>`,
      );
      if (!a || a.unsupported || !Number.isFinite(a.main) || a.main <= 0) {
        const why = a?.unsupported ? "not supported" : a?.errors.length ? "failed" : "not run";
        o.push(`<text x="${px + labelW + 8}" y="${y + 13}" font-size="11.5" fill="#999">${why}</text>`);
        return;
      }
      const w = Math.max(2, (a.main / max) * barMax);
      const cb = clientBound(s, a);
      o.push(
        `<rect x="${px + labelW + 8}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" fill="${colorOf(t)}" opacity="${cb ? 0.45 : 1}"/>`,
      );
      let label = fmt(a.main, s.family) + (cb ? " †" : "");
      if ((s.family === "fanout" || s.family === "m2m") && Number.isFinite(a.p95))
        label += ` · p95 ${a.p95 >= 1000 ? `${(a.p95 / 1000).toFixed(a.p95 >= 10_000 ? 0 : 1)} ms` : `${a.p95.toFixed(0)} µs`}`;
      const raw = rawOf(t.runtime, names);
      if (t.kind === "edgewire" && raw && aggs.get(raw)?.main)
        label += `  ${(a.main / (aggs.get(raw)?.main as number)).toFixed(2)}×raw`;
      o.push(`<text x="${px + labelW + 14 + w}" y="${y + 13}" font-size="11.5" fill="#222">${esc(label)}</text>`);
    });
  });
  o.push("</svg>");
  const svg = o.join("\n");
  try {
    const { Resvg } = await import("@resvg/resvg-js");
    const png = new Resvg(svg, {
      font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
      background: "#ffffff",
    })
      .render()
      .asPng();
    return { svg, png: Buffer.from(png) };
  } catch (error) {
    return { svg, error: (error as Error).message };
  }
}
