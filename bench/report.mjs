// Prints the table and the goal checks of one bench/run.sh results directory.
//   node bench/report.mjs DIR
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node bench/report.mjs RESULTS_DIR');
  process.exit(2);
}
const load = (name) => {
  const file = join(dir, `${name}.json`);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
};

const env = load('env') ?? {};
const runs = [
  ['mcphost', 'stateful (2025-11-25, SSE)', 'mcphost-stateful'],
  ['mcphost', 'stateless (2026-07-28, JSON)', 'mcphost-stateless'],
  ['TS SDK', 'stateful (2025-11-25, SSE)', 'ts-stateful'],
  ['TS SDK', 'stateless (2025-11-25, SSE)', 'ts-stateless'],
  ['bare Poco', 'fixed answer (JSON)', 'bare-poco'],
  ['mcphost', 'echo in a worker, stateful (SSE)', 'mcphost-echo-stateful'],
  ['mcphost', 'echo in a worker, stateless (JSON)', 'mcphost-echo-stateless'],
  ['TS SDK', 'echo, stateful (SSE)', 'ts-echo-stateful'],
  ['TS SDK', 'echo, stateless (SSE)', 'ts-echo-stateless'],
].map(([server, mode, name]) => ({ server, mode, name, r: load(name) }));
const get = (name) => runs.find((x) => x.name === name)?.r ?? null;

const fmt = (v, digits = 0) => (v === undefined || v === null || Number.isNaN(v) ? '-' : Number(v).toFixed(digits));
const mb = (kb) => (kb === undefined || kb === null || kb < 0 ? '-' : (kb / 1024).toFixed(1));

console.log(`mcphost benchmark, ${env.date ?? '?'}; ${env.cores ?? '?'} cores (${env.cpu ?? '?'}), kernel ${env.kernel ?? '?'}`);
console.log(`node ${env.node ?? '?'}, @modelcontextprotocol/sdk ${env.sdk ?? '?'}, commit ${env.commit ?? '?'}`);
console.log(`${env.connections} connections, ${env.duration_s} s measured after ${env.warmup_s} s warm-up; pinning server/client: ${env.pinning}; load average before: ${env.loadavg_before}`);
console.log('');

const header = ['server', 'mode', 'req/s', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs', 'errors', 'srv CPU%', 'gen CPU%', 'RSS MB'];
const rows = runs.map(({ server, mode, r }) =>
  r
    ? [server, mode, fmt(r.rps), fmt(r.latency_us.p50), fmt(r.latency_us.p90), fmt(r.latency_us.p99),
       fmt(r.latency_us.max), String(r.errors), fmt(r.server_cpu_pct), fmt(r.client_cpu_pct), mb(r.server_after?.rss_kb)]
    : [server, mode, 'no result', '', '', '', '', '', '', '', '']);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
const line = (cells) => '| ' + cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
console.log(line(header));
console.log('|' + widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|');
for (const row of rows) console.log(line(row));
console.log('');

for (const { name, r } of runs) {
  if (r?.repeats?.length > 1) console.log(`${name}: median of ${r.repeats.length} runs (req/s ${r.repeats.map((x) => x.toFixed(0)).join(', ')})`);
}

// Ratios within each round (the servers of one round ran minutes apart, not hours).
const rounds = runs[0]?.r?.repeats?.length ?? 1;
if (rounds > 1) {
  for (let i = 1; i <= rounds; ++i) {
    const at = (name) => load(`${name}.${i}`);
    const [a, b, c, d, e, f, g, h, k] = ['mcphost-stateful', 'mcphost-stateless', 'ts-stateful', 'ts-stateless', 'bare-poco',
      'mcphost-echo-stateful', 'mcphost-echo-stateless', 'ts-echo-stateful', 'ts-echo-stateless'].map(at);
    const x = (p, q) => (p && q && q.rps > 0 ? `${(p.rps / q.rps).toFixed(1)}×` : '-');
    const pct = (p, q) => (p && q && q.rps > 0 ? `${((p.rps / q.rps) * 100).toFixed(0)}%` : '-');
    console.log(`round ${i}: mcphost/TS stateful ${x(a, c)}, stateless ${x(b, d)}; mcphost/bare Poco stateless ${pct(b, e)}, stateful ${pct(a, e)}; ` +
                `echo in a worker/TS echo stateful ${x(f, h)}, stateless ${x(g, k)}`);
  }
}

const failures = runs.filter(({ r }) => r && (r.errors > 0 || r.first_error)).map(({ name, r }) => `${name}: ${r.errors} errors, first: ${r.first_error}`);
for (const f of failures) console.log(`errors in ${f}`);

const checks = [];
const check = (label, value, goal, pass, unit = '') => checks.push({ label, value, goal, pass, unit });
const ratio = (a, b) => (a && b && b.rps > 0 ? a.rps / b.rps : null);

const mhStateful = get('mcphost-stateful');
const mhStateless = get('mcphost-stateless');
const tsStateful = get('ts-stateful');
const tsStateless = get('ts-stateless');
const bare = get('bare-poco');

let r = ratio(mhStateful, tsStateful);
check('mcphost / TS SDK req/s, stateful', r === null ? '-' : `${r.toFixed(1)}×`, '≥ 10×', r !== null && r >= 10);
r = ratio(mhStateless, tsStateless);
check('mcphost / TS SDK req/s, stateless', r === null ? '-' : `${r.toFixed(1)}×`, '≥ 10×', r !== null && r >= 10);
r = ratio(mhStateless, bare);
check('mcphost stateless / bare Poco req/s', r === null ? '-' : `${(r * 100).toFixed(0)}%`, '≥ 70%', r !== null && r >= 0.7);
r = ratio(mhStateful, bare);
check('mcphost stateful / bare Poco req/s', r === null ? '-' : `${(r * 100).toFixed(0)}%`, '≥ 70%', r !== null && r >= 0.7);
for (const [label, run] of [['stateful', mhStateful], ['stateless', mhStateless]]) {
  const p99 = run?.latency_us?.p99;
  check(`mcphost p99 latency, ${label}`, p99 === undefined ? '-' : `${(p99 / 1000).toFixed(2)} ms`, '≤ 2 ms', p99 !== undefined && p99 <= 2000);
}
const idle = load('mcphost-idle');
const workerNote = (r) => (r?.worker_rss_kb > 0 ? ` (its worker: ${mb(r.worker_rss_kb)} MB more)` : '');
check(`mcphost idle RSS${workerNote(idle)}`, idle ? `${mb(idle.rss_kb)} MB` : '-', '≤ 20 MB', idle !== null && idle.rss_kb <= 20 * 1024);
const sessions = load('mcphost-idle-sessions');
if (sessions) {
  check(`RSS added by ${sessions.created} idle sessions (${fmt(sessions.bytes_per_session)} B each, ${sessions.usable}/${sessions.probed} usable after)`,
    `${mb(sessions.rss_added_kb)} MB`, '≤ 100 MB',
    sessions.failures === 0 && sessions.usable === sessions.probed && sessions.rss_added_kb <= 100 * 1024);
} else {
  check('RSS added by idle sessions', '-', '≤ 100 MB', false);
}
const conns = load('mcphost-idle-connections');
if (conns) {
  check(`${conns.opened} idle connections held (+${mb(conns.rss_added_kb)} MB, ${fmt(conns.bytes_per_connection)} B each), ` +
        `${conns.calls - conns.call_failures}/${conns.calls} calls ok, p99 ${fmt(conns.latency_us.p99)} µs`,
    `${conns.still_open} open`, 'all served',
    conns.connect_failures === 0 && conns.call_failures === 0 && conns.still_open === conns.opened);
}

// Issue 3, the worker goals: bench-worker-hop (one process: in-process vs worker calls, idle
// worker RSS, start-up) and the echo runs above.
const hop = load('worker-hop');
if (hop) {
  check(`worker hop at p50, 1 caller (worker p50 ${fmt(hop.worker_us.p50, 1)} µs, p99 ${fmt(hop.worker_us.p99, 1)}; ` +
        `in-process p50 ${fmt(hop.in_process_us.p50, 1)} µs, p99 ${fmt(hop.in_process_us.p99, 1)})`,
    `${fmt(hop.hop_p50_us, 1)} µs`, '≤ 50 µs', hop.errors === 0 && hop.hop_p50_us <= 50);
} else {
  check('worker hop at p50, 1 caller', '-', '≤ 50 µs', false);
}
const mhEchoStateful = get('mcphost-echo-stateful');
const mhEchoStateless = get('mcphost-echo-stateless');
r = ratio(mhEchoStateful, get('ts-echo-stateful'));
check(`echo through a worker / TS SDK echo req/s, stateful, ${env.connections} connections`, r === null ? '-' : `${r.toFixed(1)}×`, '≥ 5×', r !== null && r >= 5);
r = ratio(mhEchoStateless, get('ts-echo-stateless'));
check(`echo through a worker / TS SDK echo req/s, stateless, ${env.connections} connections`, r === null ? '-' : `${r.toFixed(1)}×`, '≥ 5×', r !== null && r >= 5);
if (hop) {
  // Idle at three moments: just ready, after the sequential calls, after the concurrent run.
  // The goal is checked against the largest: a worker that has served calls is idle too.
  const m = hop.worker_memory;
  const readings = [m.ready, m.after_sequential, m.after_concurrent].filter((x) => x && x.rss_kb > 0);
  const worst = Math.max(...readings.map((x) => x.rss_kb));
  const echoIdle = load('mcphost-echo-idle');
  check(`idle echo worker VmRSS (ready ${mb(m.ready?.rss_kb)}, after calls ${mb(m.after_sequential?.rss_kb)}, ` +
        `after ${hop.concurrent?.threads} callers ${mb(m.after_concurrent?.rss_kb)} MB; Pss ${mb(m.ready?.pss_kb)} MB` +
        `${echoIdle?.worker_rss_kb > 0 ? `; under mcphost serve ${mb(echoIdle.worker_rss_kb)} MB` : ''})`,
    `${mb(worst)} MB`, '≤ 8 MB', readings.length > 0 && worst <= 8 * 1024);
  check(`worker start to first answer (${hop.start_ms.count} starts, max ${fmt(hop.start_ms.max, 1)} ms)`,
    `${fmt(hop.start_ms.p50, 1)} ms`, '≤ 50 ms', hop.start_ms.failures === 0 && hop.start_ms.p50 <= 50);
  if (hop.concurrent?.calls_per_s > 0) {
    console.log(`worker channel alone: ${fmt(hop.concurrent.calls_per_s)} calls/s from ${hop.concurrent.threads} caller threads on one worker`);
  }
} else {
  check('idle echo worker VmRSS', '-', '≤ 8 MB', false);
  check('worker start to first answer', '-', '≤ 50 ms', false);
}
const ts = load('ts-idle');
if (ts) console.log(`TS SDK idle RSS for comparison: ${mb(ts.rss_kb)} MB`);
console.log('');

const lw = Math.max(...checks.map((c) => c.label.length));
const vw = Math.max(...checks.map((c) => String(c.value).length));
for (const c of checks) {
  console.log(`${c.pass ? 'met   ' : 'MISSED'}  ${c.label.padEnd(lw)}  ${String(c.value).padStart(vw)}  (goal ${c.goal})`);
}
