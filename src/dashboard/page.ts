import { readdirSync, readFileSync } from 'node:fs';

/**
 * The dashboard page: this HTML, the stylesheet below and the ES modules compiled from client/ (entry: app.ts).
 * Nothing comes from anywhere else (the machines are offline); the charts are drawn on canvas by the script.
 */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>graycluster</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/app.css">
<script type="module" src="/client/app.js"></script>
</head>
<body>
<header>
  <h1>graycluster</h1>
  <span id="connection" class="pill" data-state="connecting">connecting…</span>
  <span id="summary"></span>
</header>
<form id="login" hidden>
  <h2>Token</h2>
  <p>Paste the API token graycluster printed when it started (<code>dashboard and API at … (token …)</code>),
  or open the page as <code>/?token=…</code>. It is kept in this tab only.</p>
  <input id="token-input" type="password" autocomplete="off" required aria-label="API token">
  <button>Open dashboard</button>
  <p id="login-error" class="error"></p>
</form>
<main id="dashboard" hidden>
  <div id="config-error" class="banner" role="alert" hidden></div>
  <section id="versions-section">
    <h2>Versions</h2>
    <div class="scroll">
      <table id="versions">
        <thead><tr><th>Version</th><th>State</th><th>Ready</th><th>Port</th><th>Weight</th><th>Configured share</th><th>Actual share (10 s)</th><th>Req/s</th><th></th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <div class="actions">
      <button id="apply-weights" type="button" disabled>Apply weights</button>
      <button id="rollback" type="button">Roll back</button>
      <button id="reload-all" type="button">Reload all</button>
      <output id="control-result" role="status"></output>
    </div>
  </section>
  <section id="rollout-section" hidden>
    <h2>Rollout <span id="rollout-title"></span> <span id="rollout-state" class="pill"></span></h2>
    <ol id="rollout-steps" class="steps" aria-label="steps: the canary's weight at each"></ol>
    <p class="hint"><progress id="rollout-progress" max="1" value="0"></progress> <span id="rollout-time"></span></p>
    <p id="rollout-reason"></p>
    <div class="scroll">
      <table id="rollout-gates">
        <thead><tr><th>Gate</th><th>Verdict</th><th id="rollout-canary">Canary</th><th id="rollout-baseline">Baseline</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <div class="actions">
      <button id="rollout-pause" type="button">Pause</button>
      <button id="rollout-resume" type="button">Resume</button>
      <button id="rollout-abort" type="button">Abort: all traffic to the baseline</button>
      <output id="rollout-result" role="status"></output>
    </div>
  </section>
  <section id="workers-section">
    <h2>Workers</h2>
    <div class="scroll">
      <table id="workers">
        <thead><tr><th>Worker</th><th>Version</th><th>PID</th><th>CPU</th><th>State</th><th>Uptime</th><th>Restarts</th><th>RSS</th><th>Heap</th><th>In flight</th><th>Req/s</th><th>p50</th><th>p99</th><th>Loop delay</th><th>Log drops</th><th></th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <p class="hint">CPU is the percent of one core over the last stats interval; req/s and latency percentiles over the last 10 s; loop delay is the event loop's p99; log drops are lines of its output that the terminal or log file could not take in time.</p>
  </section>
  <section id="logs-section" hidden>
    <h2>Logs of <span id="logs-target"></span> <span id="logs-state"></span></h2>
    <ol id="log-lines" class="log" aria-label="the worker's latest lines, oldest first"></ol>
    <div class="actions">
      <button id="logs-close" type="button">Close</button>
      <output id="logs-error" class="error" role="status"></output>
    </div>
    <p class="hint">What the worker writes to stdout and stderr (in red), live; the last lines only (<code>graycluster logs</code> reads further back).</p>
  </section>
  <section id="charts">
    <div class="chart-grid">
      <figure><figcaption>Memory (RSS) per worker</figcaption><canvas id="chart-rss"></canvas></figure>
      <figure><figcaption>CPU per worker (% of one core)</figcaption><canvas id="chart-cpu"></canvas></figure>
      <figure><figcaption>In-flight requests per worker</figcaption><canvas id="chart-in-flight"></canvas></figure>
    </div>
    <div id="legend" class="legend"></div>
  </section>
  <section id="events-section">
    <h2>Events</h2>
    <ol id="events" reversed></ol>
  </section>
  <section id="routing-section">
    <h2>Routing</h2>
    <pre id="routing"></pre>
    <p id="router-counters" class="hint"></p>
  </section>
</main>
</body>
</html>
`;

/** Two bars, gray and blue: the old version and the canary. */
export const icon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="1" y="3" width="6" height="12" rx="1" fill="#868e96"/><rect x="9" y="7" width="6" height="8" rx="1" fill="#3b5bdb"/></svg>`;

export const css = `:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #fff; --text: #1d2433; --muted: #6a7385; --line: #e1e5ec;
  --ok: #1f8f4e; --warn: #b7791f; --bad: #c53030; --accent: #3b5bdb;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #14171c; --panel: #1c2028; --text: #e4e7ec; --muted: #98a1b3; --line: #2d333f; --accent: #7b93f5; }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--text); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .75rem 1rem; background: var(--panel); border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2rem; margin: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
#summary { color: var(--muted); }
main { display: grid; gap: 1rem; padding: 1rem; grid-template-columns: minmax(0, 1fr); max-width: 1600px; margin: 0 auto; }
@media (min-width: 1100px) {
  main { grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); }
  #versions-section, #rollout-section, #workers-section, #logs-section, #charts, .banner { grid-column: 1 / -1; }
}
section, form { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; }
form { max-width: 32rem; margin: 2rem auto; }
form input { width: 100%; padding: .5rem; margin: .25rem 0 .5rem; font: inherit; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: .3rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
th { color: var(--muted); font-weight: 500; font-size: .85rem; }
td input[type=number] { width: 5.5rem; font: inherit; text-align: right; }
td[data-field=actions] { white-space: normal; }  /* A row's buttons wrap rather than run off a narrower screen. */
.pill { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .8rem; border: 1px solid currentColor; }
.pill[data-state=ready], .pill[data-state=live] { color: var(--ok); }
.pill[data-state=starting], .pill[data-state=draining], .pill[data-state=connecting], .pill[data-state=reconnecting] { color: var(--warn); }
.pill[data-state=crashloop], .pill[data-state=stopped], .pill[data-state=unresponsive], .pill[data-state=offline] { color: var(--bad); }
.swatch { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .35rem; vertical-align: -1px; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin-top: .75rem; }
button { white-space: nowrap; font: inherit; padding: .3rem .75rem; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--text); cursor: pointer; }
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: .5; cursor: default; }
#apply-weights:not(:disabled) { background: var(--accent); color: #fff; border-color: var(--accent); }
output[data-ok=true] { color: var(--ok); }
output[data-ok=false], .error { color: var(--bad); }
.banner { background: #fff5f5; color: var(--bad); border: 1px solid var(--bad); border-radius: 8px; padding: .5rem 1rem; white-space: pre-wrap; }
.hint { color: var(--muted); font-size: .85rem; margin: .5rem 0 0; }
.chart-grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: .25rem; }
canvas { width: 100%; height: 180px; display: block; }
.legend { margin-top: .5rem; display: flex; flex-wrap: wrap; gap: .25rem 1rem; color: var(--muted); font-size: .85rem; }
#events { list-style: none; margin: 0; padding: 0; max-height: 24rem; overflow-y: auto; font-size: .85rem; }
#events li { padding: .2rem 0; border-bottom: 1px solid var(--line); display: grid; grid-template-columns: 5.5rem 6rem minmax(0, 1fr); gap: .5rem; }
#events time { color: var(--muted); font-variant-numeric: tabular-nums; }
#events .type { font-weight: 600; }
#events [data-type=crashed] .type, #events [data-type=crashloop] .type, #events [data-type=failed] .type, #events [data-type=error] .type { color: var(--bad); }
#events [data-type=ready] .type, #events [data-type=recovered] .type { color: var(--ok); }
pre { margin: 0; overflow-x: auto; font-size: .85rem; }
.log { list-style: none; margin: 0; padding: 0; max-height: 24rem; overflow-y: auto; font: .8rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.log li { display: grid; grid-template-columns: 5rem minmax(0, 1fr); gap: .5rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.log time { color: var(--muted); }
.log li[data-stream=stderr] .message { color: var(--bad); }
.log li.note { display: block; color: var(--warn); font-style: italic; }
.steps { display: flex; list-style: none; margin: .25rem 0 .5rem; padding: 0; gap: 2px; }
.steps li { flex: 1; text-align: center; padding: .25rem 0; background: var(--line); color: var(--muted); font-size: .85rem; }
.steps li:first-child { border-radius: 6px 0 0 6px; }
.steps li:last-child { border-radius: 0 6px 6px 0; }
.steps li[data-state=done] { background: var(--ok); color: #fff; }
.steps li[data-state=current] { background: var(--accent); color: #fff; font-weight: 600; }
.steps li[data-state=stopped] { background: var(--bad); color: #fff; font-weight: 600; }
#rollout-progress { vertical-align: middle; width: 10rem; }
#rollout-gates td:nth-child(3), #rollout-gates td:nth-child(4), #rollout-gates th:nth-child(3), #rollout-gates th:nth-child(4) { white-space: normal; text-align: left; }
.pill[data-state=running], .pill[data-state=promoted], .pill[data-state=pass] { color: var(--ok); }
.pill[data-state=paused], .pill[data-state=waiting] { color: var(--warn); }
.pill[data-state=rolled_back], .pill[data-state=aborted], .pill[data-state=fail] { color: var(--bad); }
#events [data-type=rollout] .type { color: var(--accent); }
@media (max-width: 640px) {
  main { padding: .5rem; gap: .5rem; }
  section { padding: .5rem .6rem; }
  /* Each row becomes a card of label: value pairs. */
  table, tbody, tr, td { display: block; }
  thead { display: none; }
  tr { display: grid; grid-template-columns: 1fr 1fr; gap: 0 1rem; padding: .4rem 0; border-bottom: 1px solid var(--line); }
  td { display: flex; justify-content: space-between; gap: .5rem; border: 0; padding: .1rem 0; text-align: right; }
  td::before { content: attr(data-label); color: var(--muted); text-align: left; }
  td[data-field=id], td[data-field=name] { grid-column: 1 / -1; justify-content: flex-start; font-weight: 600; }
  td[data-field=id]::before, td[data-field=name]::before, td[data-field=actions]::before { content: none; }
  td[data-field=actions] { grid-column: 1 / -1; justify-content: flex-end; }
  #events li { grid-template-columns: 4.5rem minmax(0, 1fr); }
  #events li .where-what { grid-column: 1 / -1; }
}
`;

/** Where the page's modules are served: `./format.js` in one of them is `/client/format.js`. */
export const clientPrefix = '/client/';

const clientFolder = new URL('./client/', import.meta.url);
let modules: Map<string, string> | undefined;

/**
 * One of the page's ES modules by file name (`app.js`, `format.js`, …), or undefined. The modules are the .js
 * files tsc compiled into client/, read once; a request names a key of that map and never a path on disk.
 */
export function clientModule(name: string): string | undefined {
  modules ??= new Map(readdirSync(clientFolder)
    .filter((file) => file.endsWith('.js'))
    .map((file) => [file, readFileSync(new URL(file, clientFolder), 'utf8')]));
  return modules.get(name);
}
