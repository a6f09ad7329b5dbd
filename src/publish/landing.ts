/**
 * The landing page at `/`: links the endpoints, shows the node's coverage and its Kata pods as a
 * `top` that refreshes itself from /top.json. Pure.
 */

import type { Coverage } from './coverage.ts';
import { POD_COLUMNS, podCells, type PodTable } from './pod-table.ts';

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

/** Where the page fetches its pod table from, relative to the page (a path prefix keeps working). */
export const POD_TABLE_PATH = 'top.json';
/** How often the page refreshes its pod table; each fetch shares the single-flight collection. */
export const POD_TABLE_REFRESH_MS = 5000;

function podTableHtml(table: PodTable | undefined): string {
  const head = POD_COLUMNS.map((c) => `<th>${escapeHtml(c.heading)}</th>`).join('');
  const rows =
    table === undefined
      ? ''
      : table.rows
          .map(
            (row) =>
              `<tr>${podCells(row)
                .map((cell) => `<td>${escapeHtml(cell)}</td>`)
                .join('')}</tr>`,
          )
          .join('');
  return `<table id="pod-table"><caption>Kata pods by host CPU, updated <span id="pod-table-time">${table === undefined ? 'at the first collection' : escapeHtml(new Date(table.takenAtMs).toISOString())}</span> <span id="pod-table-status"></span></caption>
<thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

/**
 * Replaces the table body with the rows of /top.json every few seconds. Data goes in through
 * textContent only. A same-origin fetch carries the page's basic-auth credentials.
 */
const REFRESH_SCRIPT = `<script>
(() => {
  const table = document.getElementById('pod-table');
  const time = document.getElementById('pod-table-time');
  const status = document.getElementById('pod-table-status');
  const refresh = async () => {
    try {
      const response = await fetch(${JSON.stringify(POD_TABLE_PATH)}, { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const data = await response.json();
      const body = document.createElement('tbody');
      for (const row of data.rows) {
        const tr = document.createElement('tr');
        for (const cell of row.cells) {
          const td = document.createElement('td');
          td.textContent = String(cell);
          tr.append(td);
        }
        body.append(tr);
      }
      table.tBodies[0].replaceWith(body);
      time.textContent = String(data.takenAt);
      status.textContent = '';
    } catch (error) {
      status.textContent = '(refresh failed: ' + String(error && error.message) + ')';
    }
  };
  setInterval(refresh, ${POD_TABLE_REFRESH_MS});
})();
</script>`;

export function renderLandingPage(info: LandingInfo, coverage: Coverage | undefined, pods?: PodTable): string {
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
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.2rem .6rem}th{text-align:left}caption{text-align:left;font-weight:bold}.n{text-align:right}dt{font-weight:bold}</style>
</head><body>
<h1>kata-metrics-bridge</h1>
<p>Node <b id="node">${escapeHtml(info.nodeName)}</b>, version ${escapeHtml(info.version)}, ${info.ready ? 'ready' : 'not ready (waiting for the first pod list)'}${info.takenAt ? `, last collection ${escapeHtml(info.takenAt)}` : ''}.</p>
<ul>
<li><a href="${path}">${path}</a>: metrics</li>
<li><a href="/healthz">/healthz</a>: liveness</li>
<li><a href="/readyz">/readyz</a>: readiness</li>
<li><a href="${POD_TABLE_PATH}">/${POD_TABLE_PATH}</a>: the pod table below, as JSON</li>
</ul>
<h2>Pods</h2>
${podTableHtml(pods)}
<h2>Coverage</h2>
${summary}
${REFRESH_SCRIPT}
</body></html>
`;
}
