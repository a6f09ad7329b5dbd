/**
 * One bcrypt verification at a time, off the main thread (bcrypt-pool.ts starts this file as a
 * worker). Only erasable TypeScript: Node strips the types when it loads the .ts in development.
 */

import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

// Lowest CPU priority for this thread alone (Linux keeps a nice value per thread): when the
// container's CPU is short, the main thread's scrapes and probes run before password guesses.
try {
  setPriority(19);
} catch {
  // Not permitted here: verifications still run off the main thread.
}

export interface VerifyRequest {
  id: number;
  password: string;
  hash: string;
}

export interface VerifyResponse {
  id: number;
  matches: boolean;
}

parentPort?.on('message', (request: VerifyRequest) => {
  let matches = false;
  try {
    // bcryptjs reads $2y$ (what htpasswd writes) exactly like $2b$.
    matches = bcrypt.compareSync(request.password, request.hash);
  } catch {
    // A hash bcryptjs cannot read matches nothing.
  }
  const response: VerifyResponse = { id: request.id, matches };
  parentPort!.postMessage(response);
});
