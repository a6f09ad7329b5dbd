#!/usr/bin/env node
// Runs the TypeScript entry point in this process through tsx's loader, so the bin and
// `npm start` run the same code. In-process on purpose: signals from the kubelet reach the
// exporter directly (a wrapper child process would have to relay them, and tsx's CLI relay
// gives up and SIGKILLs when the child is slow to acknowledge a SIGTERM).
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
