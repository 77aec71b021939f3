// Preloaded into every Node, Deno and Bun target (edgewire, raw and peers alike)
// so the idle scenario can force a full GC before reading RSS, as issue 5 asks:
// without it, garbage from the handshakes counts as memory per connection.
// SIGUSR2 → gc. Node runs with --expose-gc, Deno with --v8-flags=--expose-gc.
const g = globalThis;
const collect = () => {
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
};
if (g.Deno) g.Deno.addSignalListener("SIGUSR2", collect);
else g.process.on("SIGUSR2", collect);
