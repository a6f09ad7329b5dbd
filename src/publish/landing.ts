/** The landing page at `/`: links the endpoints and shows the node's coverage. Pure. */

import type { Coverage } from './coverage.ts';

export interface LandingInfo {
  nodeName: string;
  version: string;
  telemetryPath: string;
  ready: boolean;
  takenAt?: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function table(caption: string, id: string, counts: Record<string, number>): string {
  const rows = Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, n]) => `<tr><td>${escapeHtml(key)}</td><td class="n">${n}</td></tr>`)
    .join('');
  const body = rows === '' ? '<tr><td colspan="2">none</td></tr>' : rows;
  return `<table id="${id}"><caption>${escapeHtml(caption)}</caption><tbody>${body}</tbody></table>`;
}

export function renderLandingPage(info: LandingInfo, coverage: Coverage | undefined): string {
  const path = escapeHtml(info.telemetryPath);
  const summary =
    coverage === undefined
      ? '<p id="no-collection">No collection yet.</p>'
      : `<dl id="summary">
<dt>Pods</dt><dd id="pods">${coverage.pods}</dd>
<dt>Containers</dt><dd id="containers">${coverage.containers}</dd>
<dt>First-hand</dt><dd id="first-hand">${coverage.firstHand}</dd>
<dt>Estimated from the guest</dt><dd id="estimated">${coverage.estimated}</dd>
<dt>No value</dt><dd id="no-value">${coverage.noValue}</dd>
</dl>
${table('Container gaps by reason', 'container-gaps', coverage.containerGaps)}
${table('Pod gaps by reason', 'pod-gaps', coverage.podGaps)}
${table('Sandboxes by state', 'sandboxes', coverage.sandboxes)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kata-metrics-bridge on ${escapeHtml(info.nodeName)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:48rem}table{border-collapse:collapse;margin:1rem 0}
td{border:1px solid #ccc;padding:.2rem .6rem}caption{text-align:left;font-weight:bold}.n{text-align:right}dt{font-weight:bold}</style>
</head><body>
<h1>kata-metrics-bridge</h1>
<p>Node <b id="node">${escapeHtml(info.nodeName)}</b>, version ${escapeHtml(info.version)}, ${info.ready ? 'ready' : 'not ready (waiting for the first pod list)'}${info.takenAt ? `, last collection ${escapeHtml(info.takenAt)}` : ''}.</p>
<ul>
<li><a href="${path}">${path}</a>: metrics</li>
<li><a href="/healthz">/healthz</a>: liveness</li>
<li><a href="/readyz">/readyz</a>: readiness</li>
</ul>
<h2>Coverage</h2>
${summary}
</body></html>
`;
}
