/**
 * Where usage records go (--usage.output): stdout, one JSON line per record, which node log
 * pipelines collect (the exporter's own logs are on stderr, and every record carries
 * `"kind":"usage_record"`); or a file, appended with O_APPEND and fsynced after every record
 * (records are one per pod end: rare enough to make each durable before the ledger names it).
 */

import { open, type FileHandle } from 'node:fs/promises';

export interface UsageSink {
  /** Resolves once the line is handed over (stdout) or on disk (file); rejects when it could not be. */
  write(line: string): Promise<void>;
  close(): Promise<void>;
}

/** Lines to a stream (stdout by default). */
export function streamSink(stream: NodeJS.WritableStream = process.stdout): UsageSink {
  return {
    write: (line) => new Promise<void>((resolve, reject) => stream.write(line, (error) => (error ? reject(error) : resolve()))),
    close: async () => undefined,
  };
}

/** Lines appended to a file, opened when the first record comes and again after a failed write. */
export function fileSink(path: string): UsageSink {
  let handle: FileHandle | undefined;
  return {
    async write(line) {
      try {
        handle ??= await open(path, 'a');
        await handle.appendFile(line);
        await handle.sync();
      } catch (error) {
        const failed = handle;
        handle = undefined;
        await failed?.close().catch(() => undefined);
        throw error;
      }
    },
    async close() {
      await handle?.close();
      handle = undefined;
    },
  };
}
