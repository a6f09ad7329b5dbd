/**
 * Preloaded into the soak's exporter process (`node --expose-gc --import tsx --import <this>`):
 * on SIGUSR2 it runs a full garbage collection and prints one JSON line on stdout with the memory
 * figures after it, so the soak compares resident memory after GC rather than GC timing noise.
 * The exporter itself never writes to stdout while serving, so the line cannot be confused.
 */

const gc = (globalThis as { gc?: () => void }).gc;

process.on('SIGUSR2', () => {
  gc?.();
  // A second pass collects what the first one only finalised (weak callbacks, FinalizationRegistry).
  setImmediate(() => {
    gc?.();
    const usage = process.memoryUsage();
    process.stdout.write(
      `${JSON.stringify({ soak: 'gc', exposed: gc !== undefined, rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external })}\n`,
    );
  });
});
