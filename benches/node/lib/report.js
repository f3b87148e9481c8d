'use strict'
// Summaries of a run: medians, min-max, ratios to node-postgres from the same run, as a
// Markdown table and as a chart (PNG).

const { Canvas, barPanel } = require('./png.js')

const LABELS = {
  hyperion: 'hyperiondb-client',
  'hyperion:parse': 'hyperiondb-client + Date/JSON.parse in JS',
  pg: 'node-postgres',
  postgres: 'postgres.js',
  bun: 'Bun SQL',
  pgbench: 'pgbench (C, libpq)',
  'tokio-postgres': 'tokio-postgres (Rust, 1 thread)',
  'hyperion:v0': 'validationIntervalMs 0 (default)',
  'hyperion:v500': 'validationIntervalMs 500',
  'hyperion:off': 'validation off (mode: any)',
  'pg:cursor': 'node-postgres + pg-cursor',
}
// S1-S3: what each client's row is (its streaming or COPY API).
const S_LABELS = {
  S1: { hyperion: 'hyperiondb-client, for await of pool.stream()', pg: 'node-postgres + pg-query-stream', 'pg:cursor': 'node-postgres + pg-cursor', postgres: 'postgres.js, .cursor()', bun: 'Bun SQL, DECLARE/FETCH (no cursor API)' },
  S2: { hyperion: 'hyperiondb-client, pool.copyFrom()', pg: 'node-postgres + pg-copy-streams', postgres: 'postgres.js, .writable()', bun: 'Bun SQL, .writable()' },
  S3: { hyperion: 'hyperiondb-client, pool.copyTo()', pg: 'node-postgres + pg-copy-streams', postgres: 'postgres.js, .readable()', bun: 'Bun SQL, .readable()' },
}
const S_WORKLOADS = ['S1', 'S2', 'S3']
// C1 (run.js --tls): connect time, client:plain|tls|direct.
const C1_MODES = { plain: 'plain', tls: 'TLS (verify-full)', direct: 'direct SSL (verify-full)' }
for (const c of ['hyperion', 'pg', 'postgres', 'bun']) for (const [m, t] of Object.entries(C1_MODES)) LABELS[`${c}:${m}`] = `${LABELS[c]}, ${t}`
const SHORT = {
  hyperion: 'hyperion', 'hyperion:parse': 'hyperion+parse', pg: 'node-postgres', postgres: 'postgres.js', bun: 'Bun SQL',
  pgbench: 'pgbench', 'tokio-postgres': 'tokio-postgres', 'hyperion:v0': 'interval 0', 'hyperion:v500': 'interval 500', 'hyperion:off': 'off (any)', 'pg:cursor': 'pg-cursor',
}
const COLORS = {
  hyperion: [37, 99, 235], 'hyperion:parse': [140, 175, 245], pg: [150, 150, 150], postgres: [230, 126, 34],
  bun: [180, 60, 160], pgbench: [46, 150, 70], 'tokio-postgres': [200, 160, 40], 'pg:cursor': [200, 200, 200], 'hyperion:v0': [37, 99, 235], 'hyperion:v500': [140, 175, 245], 'hyperion:off': [150, 150, 150],
}
const TITLES = {
  C1: 'C1 connect + first query + close', W1: 'W1 sequential latency (pool 1)',
  'W1-same': 'W1, client and server on CPU 0 (--w1-pin)', 'W1-cross': 'W1, client on CPU 1, server on CPU 0 (--w1-pin)', W2: 'W2 point select, 256 in flight', W3: 'W3 50,000 rows x 10 columns',
  'W3-json': 'W3 json: 50,000 rows, nested jsonb', 'W3-strings': 'W3 strings: 50,000 rows x 5 distinct texts',
  S1: 'S1 stream 1M rows (batches of 1,000)', S2: 'S2 COPY FROM 1M rows (generator)', S3: 'S3 COPY TO 1M rows',
  W4: 'W4 single-row insert, 64 in flight', W5: 'W5 transaction, 64 concurrent', W6: 'W6 failover (3 nodes, 4 writers)',
  W7: 'W7 primary validation cost (W2 query)', B1: 'B1 burst: 20,000 point queries at once, pool of 2', W8: 'W8 failover under real faults (partition, freeze)',
}
const SHORT_TITLES = { W1: 'W1 latency', 'W1-same': 'W1 same CPU', 'W1-cross': 'W1 cross CPU', W2: 'W2 point sel.', W3: 'W3 50k rows', 'W3-json': 'W3 json', 'W3-strings': 'W3 strings', W4: 'W4 insert', W5: 'W5 tx', B1: 'B1 burst', S1: 'S1 stream', S2: 'S2 COPY FROM', S3: 'S3 COPY TO' }
const UNITS = { C1: 'ms (lower is better)', W1: 'queries/s', 'W1-same': 'queries/s', 'W1-cross': 'queries/s', W2: 'queries/s', W3: 'rows/s', 'W3-json': 'rows/s', 'W3-strings': 'rows/s', S1: 'rows/s', S2: 'rows/s', S3: 'rows/s', W4: 'rows/s', W5: 'transactions/s', B1: 'queries/s', W6: 'ms (lower is better)', W7: 'queries/s', W8: 'ms from the election (lower is better)' }
const BASELINE = { W7: 'hyperion:off' }

const NOTES = [
  'Servers: "harness" is the project\'s test/cluster.js (fsync=off, shared_buffers=32MB), "system" (run.js --server system) a fresh initdb of the installed PostgreSQL at its default settings (fsync on, default shared_buffers), only port, socket directory and listen_addresses given.',
  'W3 (all shapes) runs as a service meets it: one query `... where id <= $1` with the limit bound as a parameter (each client through its fast path: hyperiondb-client pool.query(text, [limit]), node-postgres pool.query(text, params), postgres.js sql.unsafe(text, params, { prepare: true }), Bun SQL sql.unsafe(text, [limit])), with a 2 ms setInterval running on the event loop during the query; "loop gap" is the longest time between two of its ticks (how long the event loop was blocked at most). Peak RSS growth: VmHWM (reset after a full GC) over the RSS at the start of the query. Shapes: wide (BENCHMARKS.md\'s 10 columns), json (id + a jsonb document with booleans, nulls, floats, strings, an array and nested objects), strings (id + 5 text columns whose values are all distinct, 20-260 characters, some non-ASCII). Every row is checked in full.',
  'S1-S3 (issue 19): 1M rows of (id int4, label text, amount numeric(12,2), value float8, big int8 > 2^53), pool of 1; a checked warm-up run, then 3 timed runs per sample (median), peak RSS growth as for W3. S1: each client\'s way to stream a result in batches of 1,000 rows (hyperiondb-client `for await (const row of pool.stream(sql, [n], { batchSize }))`; node-postgres + pg-query-stream `for await` over the stream; + pg-cursor `cursor.read(1000)` in a loop; postgres.js `for await (const rows of sql.unsafe(sql, params, { prepare: true }).cursor(1000))`; Bun SQL has no cursor API, so DECLARE ... CURSOR and FETCH 1000 in sql.begin); every row\'s id (each once) and label checked, every 97th row in full. S2: COPY bench_copy FROM STDIN (text format) from an async generator that yields one Buffer per 1,000 rows (hyperiondb-client pool.copyFrom(sql, generator); node-postgres + pg-copy-streams from() and postgres.js .writable() through stream.pipeline(generator, writable); Bun SQL ReadableStream.from(generator).pipeTo(query.writable())); the table is truncated before each run and checked in full by the server after it. S3: COPY bench_stream TO STDOUT (text), every chunk hashed (SHA-256) as it arrives and the whole compared with the expected bytes (hashing included in the timing, the same for every client). postgres.js 3.4.9 can leave its connection paused after a large COPY TO (porsager/postgres#499; the fix, PR #1016, is not released), so that the next query never returns: its S3 gets a fresh, connected instance between runs, outside the timing. The S tables\' database has synchronize_seqscans off (so that COPY TO sends the rows in insertion order), the only setting the benchmark changes.',
  'TLS runs (run.js --tls): ssl = on with a test CA (test/certs.js), and every client verifies the server (verify-full) as its users configure it: hyperiondb-client createPool({ sslmode: "verify-full", sslrootcert: <CA path>, sslnegotiation: "postgres" or "direct" }), node-postgres and postgres.js ssl: { ca }, Bun SQL tls: { ca }, pgbench PGSSLMODE=verify-full PGSSLROOTCERT. Each workload checks pg_stat_ssl for its connection. C1: the median of 50 sequential connect + first query (pg_stat_ssl of the session) + close, each through the client\'s usual entry point with a pool of 1, after 2 excluded (the first, with module loading and TLS set-up, is reported as "first"); the ratio is to node-postgres in the same mode (direct SSL: to node-postgres over TLS, which has no direct SSL); lower is better. "plain" sets sslmode disable for hyperiondb-client (its default, prefer, would use TLS on this server).',
  'Ratios are medians divided by the median of node-postgres from the same run (W7: by "validation off"). W6 is a time: lower is better.',
  'W5, hyperiondb-client: each transaction is pool.transaction(cb) with maxAttempts 1 (BEGIN/COMMIT on one exclusively leased connection, no retries, as for the peers). Since 5ea7d54 its BEGIN goes out in one write with the first statement (as Npgsql does), so a transaction takes three round trips where the peers take four.',
  'W3, hyperiondb-client returns timestamptz as an ISO 8601 string with microseconds (lossless), where the other clients build Date objects (milliseconds): the "+ Date/JSON.parse in JS" row adds new Date() per row inside the timed section for an equal-work comparison (jsonb is parsed by every client). int8 is checked as BigInt for hyperiondb-client and as an exact decimal string for the others (their default mapping).',
  'B1 (not in BENCHMARKS.md): a burst past the pipelines: 20,000 point queries (`select $1::int4`) started at once with Promise.all on a pool of 2, every answer checked; 3 timed bursts after one untimed, median. Each client as its users call it (hyperiondb-client pool.query, node-postgres pool.query, postgres.js sql.unsafe with prepare, Bun SQL sql.unsafe).',
  'W7: there is no "validation off" option yet; mode "any" on the primary (no primary check at all) stands in as the baseline.',
  'pgbench: -M prepared, same SQL, 1 client (W1) / 10 clients and 2 threads (W2); no pipelining. It checks only transaction counts and failures; its CPU is user+sys from /usr/bin/time.',
  'tokio-postgres (W1, W2; benches/src/bin/tokio_pg.rs, release build): tokio-postgres on a tokio current_thread runtime (one thread), a statement prepared on each connection, query_one per query. W1: one connection, every answer checked. W2: 10 connections, 256 queries in flight spread over them (query k on connection k mod 10; each connection pipelines its share: the query futures are polled together in a FuturesUnordered); warm-up rows checked in full, timed rows with every column decoded (numeric to a decimal string, timestamptz to a SystemTime) and id and label checked. Client CPU: getrusage(RUSAGE_SELF) over the timed section, as process.cpuUsage() for the JS clients. Connects without TLS: n/a under --tls.',
  'W1-same / W1-cross (run.js --w1-pin): W1 with the server\'s postmaster and all its processes pinned to CPU 0 (taskset -a -p -c 0; backends forked later inherit it) and the client process started under taskset -c 0 (same: the client shares its backend\'s CPU) or taskset -c 1 (cross: every round trip wakes a process on the other CPU); the server goes back to all CPUs after each sample. Unpinned W1 on a 2-core VM is a lottery between these two placements.',
  'W8: as W6, but the primary is partitioned away (iptables DROP of every packet to/from its port on lo: no RST, no FIN) or frozen (SIGSTOP of every process; the kernel still ACKs), then the harness promotes the most caught-up standby; one fault of each kind per client, on a fresh cluster each. Time: from electedAt (the harness confirmed the new primary writable) to the first insert acknowledged by the new primary. "Blocked at 10 s": writers whose call pending at the election had still not settled 10 s after it; the benchmark stops waiting 20 s after the election ("blocked at end") or as soon as no such call is pending and every writer has had a write acknowledged by the new primary. Configured for HA as users would: hyperiondb-client createPool({ hosts: all three, mode: "read-write", poolSize: 4 }), everything else default; node-postgres as W6 plus connectionTimeoutMillis 5000, statement_timeout 5000, query_timeout 6000, keepAlive with keepAliveInitialDelayMillis 5000, idleTimeoutMillis 30000; postgres.js all hosts with target_session_attrs read-write, connect_timeout 5 s, idle_timeout 30 s, keep_alive 5 s, statement_timeout 5000 as a startup parameter (no client-side query timeout exists); Bun SQL as W6 plus connectionTimeout 5 s, idleTimeout 30 s, statement_timeout 5000 as a startup parameter (no client-side query timeout exists).',
  'W6: hyperiondb-client gets all three hosts (read-write mode) and postgres.js all three hosts with target_session_attrs=read-write; node-postgres and Bun SQL have no multi-host support, so their writers do what an app without a proxy does: a pool on the old primary and, when a write fails, re-create the pool on whichever listed host answers pg_is_in_recovery() = false and transaction_read_only = off. Failed writers retry with a new key after 5 ms (multi-host clients) or after rediscovery. The clock starts when the harness begins stopping the primary (pg_ctl stop -m fast) and stops at the first insert acknowledged by the new primary (inet_server_port()); every acknowledged key is then looked up on the new primary.',
]

function stats(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return null
  const mid = Math.floor(s.length / 2)
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1], n: s.length }
}

function summarize(result) {
  const out = {}
  for (const w of result.options.workloads) {
    const ss = result.samples.filter((s) => s.workload === w)
    const clients = [...new Set(ss.map((s) => s.client))]
    const rows = {}
    for (const c of clients) {
      const mine = ss.filter((s) => s.client === c)
      const ok = mine.filter((s) => s.ok)
      const pick = (k) => stats(ok.map((s) => s.metrics && s.metrics[k]))
      rows[c] = {
        label: w === 'W8' ? `${LABELS[c.split(':')[0]]}, ${c.split(':')[1]}` : ((S_LABELS[w] && S_LABELS[w][c]) || LABELS[c] || c),
        value: pick('value'),
        p90_ms: pick('p90_ms'),
        first_ms: pick('first_ms'),
        p50_us: pick('p50_us'),
        p99_us: pick('p99_us'),
        cpu_us_per_query: pick('cpu_us_per_query'),
        rss_growth_mb: pick('rss_growth_mb'),
        loop_max_gap_ms: pick('loop_max_gap_ms'),
        blocked10: w === 'W8' ? mine.reduce((a, s) => a + ((s.metrics && s.metrics.blocked10) || 0), 0) : undefined,
        blockedEnd: w === 'W8' ? mine.reduce((a, s) => a + ((s.metrics && s.metrics.blocked_end) || 0), 0) : undefined,
        lost: w === 'W6' || w === 'W8' ? mine.reduce((a, s) => a + ((s.metrics && s.metrics.lost) || 0), 0) : undefined,
        acked: w === 'W6' || w === 'W8' ? pick('acked') : undefined,
        samples: mine.length,
        errors: mine.filter((s) => !s.ok).map((s) => `rep ${s.rep + 1}: ${s.na ? 'n/a, ' : ''}${s.error}`),
        na: mine.length > 0 && mine.every((s) => !s.ok && s.na),
        version: (ok[0] || mine[0] || {}).version,
      }
    }
    for (const c of clients) {
      const r = rows[c]
      const mode = c.split(':')[1]
      const base = rows[w === 'W8' ? `pg:${mode}` : w === 'C1' ? `pg:${mode === 'direct' ? 'tls' : mode}` : (BASELINE[w] || 'pg')]
      r.ratio = w !== 'W8' && r.value && base && base.value ? r.value.median / base.value.median : null
      if (w === 'W8' && !r.label) r.label = c
    }
    out[w] = { baseline: BASELINE[w] || 'pg', unit: UNITS[w], rows }
  }
  return out
}

// hyperiondb-client against Bun SQL and tokio-postgres, repetition by repetition: in one
// repetition the clients ran back to back, so the ratio of two of its samples moves less with
// the machine's load (this VM's swings: ±30% within minutes) than a ratio of medians does.
// Per workload and peer: the median of those ratios, their range, and in how many
// repetitions ours was ahead. Higher is better (W1-W5, B1).
const PAIRED_PEERS = ['bun', 'tokio-postgres']
const PAIRED_WORKLOADS = ['W1', 'W1-same', 'W1-cross', 'W2', 'W3', 'W3-json', 'W3-strings', 'W4', 'W5', 'B1']
function paired(result) {
  const out = {}
  for (const w of PAIRED_WORKLOADS) {
    const ours = new Map(result.samples.filter((s) => s.workload === w && s.client === 'hyperion' && s.ok).map((s) => [s.rep, s.metrics.value]))
    if (!ours.size) continue
    for (const peer of PAIRED_PEERS) {
      const ratios = result.samples
        .filter((s) => s.workload === w && s.client === peer && s.ok && ours.has(s.rep) && s.metrics.value > 0)
        .map((s) => ours.get(s.rep) / s.metrics.value)
      if (!ratios.length) continue
      out[w] = out[w] || {}
      out[w][peer] = { ...stats(ratios), ahead: ratios.filter((r) => r >= 1).length }
    }
  }
  return out
}

function fmtNum(v, w) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-'
  if (w === 'W6' || w === 'W8') return `${Math.round(v).toLocaleString('en-US')} ms`
  if (w === 'C1') return `${v.toFixed(2)} ms`
  if (v >= 100000) return `${(v / 1000).toFixed(0)}k`
  if (v >= 10000) return `${(v / 1000).toFixed(1)}k`
  return Math.round(v).toLocaleString('en-US')
}
const fmtRatio = (r) => (r === null || r === undefined ? '-' : `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`)

function details(w, r) {
  const d = []
  if (w === 'C1' && r.p90_ms) d.push(`p90 ${r.p90_ms.median.toFixed(2)} ms, first connect ${r.first_ms.median.toFixed(1)} ms`)
  if (r.p50_us) d.push(`p50 ${r.p50_us.median.toFixed(0)} µs, p99 ${r.p99_us.median.toFixed(0)} µs`)
  if (r.cpu_us_per_query && !/^W1(-|$)/.test(w)) d.push(`client CPU ${r.cpu_us_per_query.median.toFixed(1)} µs/query`)
  if (r.rss_growth_mb) d.push(`peak RSS growth ${r.rss_growth_mb.median.toFixed(1)} MB`)
  if (r.loop_max_gap_ms) d.push(`event loop blocked ≤ ${r.loop_max_gap_ms.median.toFixed(0)} ms`)
  if (w === 'W8') d.push(`still blocked 10 s after the election: ${r.blocked10}, at the end (≤ 20 s): ${r.blockedEnd}`)
  if (w === 'W6' || w === 'W8') d.push(`acknowledged writes lost: ${r.lost}`, `acked ${r.acked ? Math.round(r.acked.median) : '-'}/sample`)
  return d.join('; ')
}

// W8: one row per fault, one column per client: ms from the election to the first write on
// the new primary; callers still blocked 10 s after the election; acknowledged writes lost.
const W8_CLIENTS = ['pg', 'hyperion', 'postgres', 'bun']
function w8Cell(r) {
  if (!r) return 'n/a'
  if (r.errors.length && !r.value) return `error (${r.errors.join('; ').slice(0, 80)})`
  const t = r.value ? `${fmtNum(r.value.median, 'W8')}` : 'no write in 20 s'
  return `${t}; blocked ${r.blocked10}; lost ${r.lost}`
}
function w8Table(s8) {
  const L = []
  L.push('W8, failover under real faults: ms from the election to the first write acknowledged by the new primary; callers still blocked 10 s after the election (of 4); acknowledged writes lost. One fault each.')
  L.push('')
  L.push(`| fault | ${W8_CLIENTS.map((c) => LABELS[c]).join(' | ')} |`)
  L.push(`|---|${W8_CLIENTS.map(() => '---').join('|')}|`)
  for (const f of ['partition', 'freeze']) {
    if (!W8_CLIENTS.some((c) => s8.rows[`${c}:${f}`])) continue
    L.push(`| ${f} | ${W8_CLIENTS.map((c) => w8Cell(s8.rows[`${c}:${f}`])).join(' | ')} |`)
  }
  return L
}

function markdown(result) {
  const S = result.summary
  const v = result.versions
  const L = []
  const quick = result.options.quick.length ? ` — **quick sizes for ${result.options.quick.join(', ')}**` : ''
  L.push(`# hyperiondb-client: Node.js comparison${result.options.tls ? ' over TLS (verify-full)' : ''}${result.server.kind === 'system' ? ' on the system PostgreSQL (default settings)' : ''}, ${result.date.slice(0, 10)}${quick}`)
  L.push('')
  L.push(`Machine: ${result.machine.nproc} cores (${result.machine.cpu}), ${result.machine.memGb} GB, Linux ${result.machine.kernel}, shared with other work. ` +
    `Server: PostgreSQL ${result.server.version}, ${result.server.kind === 'system' ? '**system server at its default settings**' : 'the harness\'s server'} (${result.server.setup}). Node ${v.node}.`)
  L.push('')
  L.push(`Clients: hyperiondb-client ${v.hyperion} (release build \`${result.hyperionBuild.binary}\`, sha256 ${result.hyperionBuild.binarySha256}), ` +
    `node-postgres (pg) ${v.pg}, postgres.js ${v.postgres}, Bun SQL (bun ${v.bun}), ${v.pgbench || 'pgbench n/a'}` +
    (Object.values(S).some((s) => s.rows['tokio-postgres']) ? `, tokio-postgres ${v['tokio-postgres']} (tokio ${v.tokio}, current_thread runtime)` : '') +
    (S_WORKLOADS.some((w) => S[w]) ? `; pg-query-stream ${v['pg-query-stream']}, pg-cursor ${v['pg-cursor']}, pg-copy-streams ${v['pg-copy-streams']}.` : '.'))
  L.push('')
  const onlyW8 = result.options.workloads.every((w) => w === 'W8')
  if (result.load) L.push(`Load (1-minute average; the run's own processes count in it): ${result.load.before} before the run, ${result.load.samples_min}–${result.load.samples_max} after the samples (median ${result.load.samples_median}).`, '')
  L.push(`Run: \`${result.command}\`, ${onlyW8 ? 'one sample per client and fault kind (W8)' : `${result.options.reps} repetitions per client${result.options.workloads.includes('W8') ? ' (W8: one per fault kind)' : ''}`}, each sample in a fresh process, warm-up excluded, clients interleaved (A B C, then C B A, ...). Started ${result.date}, finished ${result.finished}.`)
  const flags = result.options.nodeFlags || []
  if (flags.length) L.push(`**Tuned runtime:** every Node.js sample ran with \`${flags.join(' ')}\` (all Node.js clients alike; Bun and pgbench unchanged).`)
  L.push('')
  const main = ['W1', 'W1-same', 'W1-cross', 'W2', 'W3', 'W3-json', 'W3-strings', 'W4', 'W5', 'B1', 'W6'].filter((w) => S[w])
  if (main.length) {
    const cols = ['pg', 'hyperion', 'postgres', 'bun', 'pgbench', 'tokio-postgres'].filter((c) => c !== 'tokio-postgres' || main.some((w) => S[w].rows[c]))
    L.push('Medians; ratio to node-postgres from the same run (W6: time, lower is better).')
    L.push('')
    L.push(`| workload | ${cols.map((c) => LABELS[c]).join(' | ')} |`)
    L.push(`|---|${cols.map(() => '---').join('|')}|`)
    for (const w of main) {
      const cells = cols.map((c) => {
        const r = S[w].rows[c]
        if (!r || r.na) return 'n/a'
        if (!r.value) return r.errors.length ? 'error' : '-'
        const val = `${fmtNum(r.value.median, w)}${w === 'W6' ? '' : ` ${S[w].unit.replace('transactions', 'tx').replace('queries', 'q')}`}`
        return c === 'pg' ? val : `**${fmtRatio(r.ratio)}** (${val})`
      })
      L.push(`| ${TITLES[w]} | ${cells.join(' | ')} |`)
    }
    L.push('')
  }
  const P = paired(result)
  const pw = Object.keys(P)
  if (pw.length) {
    const peers = PAIRED_PEERS.filter((c) => pw.some((w) => P[w][c]))
    L.push('hyperiondb-client over each peer, repetition by repetition (the clients of one repetition ran back to back): the median of the ratios, their range, and the repetitions in which hyperiondb-client was ahead.')
    L.push('')
    L.push(`| workload | ${peers.map((c) => `over ${LABELS[c]}`).join(' | ')} |`)
    L.push(`|---|${peers.map(() => '---').join('|')}|`)
    for (const w of pw) {
      L.push(`| ${TITLES[w]} | ${peers.map((c) => {
        const p = P[w][c]
        return p ? `**${p.median.toFixed(2)}** (${p.min.toFixed(2)}–${p.max.toFixed(2)}), ahead in ${p.ahead} of ${p.n}` : 'n/a'
      }).join(' | ')} |`)
    }
    L.push('')
  }
  const sw = S_WORKLOADS.filter((w) => S[w])
  if (sw.length) {
    const cols = ['pg', 'pg:cursor', 'hyperion', 'postgres', 'bun']
    L.push('Streams and COPY (S1-S3): median rows/s, ratio to node-postgres (pg-query-stream for S1, pg-copy-streams for S2/S3) from the same run, and peak RSS growth.')
    L.push('')
    L.push(`| workload | ${cols.map((c) => (c === 'pg' ? 'node-postgres (pg-query-stream / pg-copy-streams)' : LABELS[c])).join(' | ')} |`)
    L.push(`|---|${cols.map(() => '---').join('|')}|`)
    for (const w of sw) {
      L.push(`| ${TITLES[w]} | ${cols.map((c) => {
        const r = S[w].rows[c]
        if (!r) return 'n/a'
        if (!r.value) return r.errors.length ? 'error' : '-'
        const val = `${fmtNum(r.value.median, w)} rows/s${r.rss_growth_mb ? `, RSS +${r.rss_growth_mb.median.toFixed(1)} MB` : ''}`
        return c === 'pg' ? val : `**${fmtRatio(r.ratio)}** (${val})`
      }).join(' | ')} |`)
    }
    L.push('')
  }
  if (S.C1) {
    const cs = ['pg', 'hyperion', 'postgres', 'bun']
    L.push('C1, connect time: median ms of connect + first query + close (lower is better); ratio to node-postgres in the same mode.')
    L.push('')
    L.push(`| client | ${Object.values(C1_MODES).join(' | ')} |`)
    L.push(`|---|${Object.keys(C1_MODES).map(() => '---').join('|')}|`)
    for (const c of cs) {
      L.push(`| ${LABELS[c]} | ${Object.keys(C1_MODES).map((m) => {
        const r = S.C1.rows[`${c}:${m}`]
        if (!r) return 'n/a'
        if (!r.value) return 'error'
        return `${fmtNum(r.value.median, 'C1')}${c === 'pg' ? '' : ` (**${fmtRatio(r.ratio)}**)`}`
      }).join(' | ')} |`)
    }
    L.push('')
  }
  if (S.W8) L.push(...w8Table(S.W8), '')
  L.push('## All figures')
  L.push('')
  L.push('| workload | client | median | min – max | ratio | also | ok/samples |')
  L.push('|---|---|---|---|---|---|---|')
  for (const w of Object.keys(S)) {
    for (const [c, r] of Object.entries(S[w].rows)) {
      const val = r.value ? `${fmtNum(r.value.median, w)}${w === 'W6' || w === 'W8' || w === 'C1' ? '' : ` ${S[w].unit}`}` : (w === 'W8' && !r.errors.length ? 'never' : r.na ? 'n/a' : 'error')
      const range = r.value ? `${fmtNum(r.value.min, w)} – ${fmtNum(r.value.max, w)}` : '-'
      L.push(`| ${w} | ${r.label} | ${val} | ${range} | ${fmtRatio(r.ratio)}${S[w].baseline !== 'pg' ? ` of ${SHORT[S[w].baseline]}` : ''} | ${details(w, r)} | ${r.value ? r.value.n : 0}/${r.samples} |`)
    }
  }
  L.push('')
  const errs = Object.entries(S).flatMap(([w, s]) => Object.entries(s.rows).flatMap(([c, r]) => r.errors.map((e) => `- ${w} ${r.label}, ${e}`)))
  if (errs.length) {
    L.push('## Errors (samples that failed, including failed result checks)')
    L.push('')
    L.push(...errs)
    L.push('')
  }
  L.push('## Notes')
  L.push('')
  L.push(...result.notes.map((n) => `- ${n}`))
  L.push('')
  L.push('Sizes: ' + Object.entries(result.sizes).map(([w, s]) => `${w} ${JSON.stringify(s)}`).join('; ') + '. W6: one failover per sample. W8: one fault of each kind per client.')
  L.push('')
  return L.join('\n')
}

function chart(result) {
  const S = result.summary
  const W = 1500
  const sw = S_WORKLOADS.filter((w) => S[w])
  const hasMain = ['W1', 'W1-same', 'W1-cross', 'W2', 'W3', 'W3-json', 'W3-strings', 'W4', 'W5', 'B1'].some((w) => S[w])
  const sY = S.W6 || S.W7 ? (S.W8 ? 1390 : 1010) : hasMain ? 650 : 110
  const H = hasMain || S.W6 || S.W7 || S.W8 ? Math.max(S.W8 ? 1380 : 1010, sw.length ? sY + 370 : 0) : sY + 370
  const cv = new Canvas(W, H)
  const ink = [30, 30, 30]
  cv.text(`hyperiondb-client vs other PostgreSQL clients${result.options.tls ? ' over TLS' : ''}${result.server.kind === 'system' ? ', system server' : ''}, ${result.date.slice(0, 10)}`, 20, 14, ink, { scale: 3 })
  cv.text(`${result.machine.nproc} cores, PostgreSQL ${String(result.server.version).split(' ')[0]}${result.server.kind === 'system' ? ' at default settings' : ''}, Node ${result.versions.node}, pg ${result.versions.pg}, postgres.js ${result.versions.postgres}, Bun ${result.versions.bun}; ${result.options.workloads.every((w) => w === 'W8') ? 'W8: one fault of each kind per client' : `medians of ${result.options.reps} runs`}${result.options.quick.length ? ` (quick sizes: ${result.options.quick.join(',')})` : ''}`, 20, 46, [90, 90, 90])

  // Legend (tokio-postgres only when it ran), on two lines when one would not hold it.
  const legend = ['hyperion', 'hyperion:parse', 'pg', 'postgres', 'bun', 'pgbench', 'tokio-postgres'].filter((c) => c !== 'tokio-postgres' || Object.values(S).some((s) => s.rows[c]))
  const legendText = (c) => LABELS[c].replace(' + Date/JSON.parse in JS', ' + parse (W3)')
  const itemW = (c) => 22 + legendText(c).length * 12 + 28
  const lines = [[]]
  let used = 20
  for (const c of legend) {
    if (used + itemW(c) > W - 20 && lines[lines.length - 1].length) { lines.push([]); used = 20 }
    lines[lines.length - 1].push(c)
    used += itemW(c)
  }
  lines.forEach((line, li) => {
    const ly = (lines.length > 1 ? 68 : 76) + li * 20
    let lx = 20
    for (const c of line) {
      cv.rect(lx, ly, 16, 16, COLORS[c])
      cv.text(legendText(c), lx + 22, ly + 1, ink)
      lx += itemW(c)
    }
  })

  const main = ['W1', 'W1-same', 'W1-cross', 'W2', 'W3', 'W3-json', 'W3-strings', 'W4', 'W5', 'B1'].filter((w) => S[w])
  const order = ['hyperion', 'hyperion:parse', 'pg', 'postgres', 'bun', 'pgbench', 'tokio-postgres']
  const barText = (r) => (r >= 10 ? r.toFixed(0) : r.toFixed(2))
  if (main.length) barPanel(cv, {
    x: 20, y: 110, w: W - 40, h: 520,
    title: 'Throughput, ratio to node-postgres in the same run (higher is better; dashed line = 1.0; whiskers = min-max)',
    ref: 1,
    groups: main.map((w) => ({
      label: SHORT_TITLES[w],
      sublabel: S[w].rows.pg && S[w].rows.pg.value ? `1.0 = ${fmtNum(S[w].rows.pg.value.median, w)} ${S[w].unit.replace('transactions', 'tx').replace('queries', 'q')}` : '',
      bars: order.filter((c) => S[w].rows[c]).map((c) => {
        const r = S[w].rows[c]
        const base = S[w].rows.pg && S[w].rows.pg.value ? S[w].rows.pg.value.median : null
        return { value: r.ratio, lo: r.value && base ? r.value.min / base : null, hi: r.value && base ? r.value.max / base : null, color: COLORS[c], text: r.ratio !== null ? barText(r.ratio) : 'ERR' }
      }),
    })),
  })

  if (sw.length) {
    const sOrder = ['hyperion', 'pg', 'pg:cursor', 'postgres', 'bun']
    barPanel(cv, {
      x: 20, y: sY, w: W - 40, h: 350,
      title: 'S1-S3, 1M rows: ratio to node-postgres + pg-query-stream (S1) / pg-copy-streams (S2, S3); light grey = pg-cursor',
      ref: 1,
      groups: sw.map((w) => ({
        label: SHORT_TITLES[w],
        sublabel: S[w].rows.pg && S[w].rows.pg.value ? `1.0 = ${fmtNum(S[w].rows.pg.value.median, w)} rows/s` : '',
        bars: sOrder.filter((c) => S[w].rows[c]).map((c) => {
          const r = S[w].rows[c]
          const base = S[w].rows.pg && S[w].rows.pg.value ? S[w].rows.pg.value.median : null
          return { value: r.ratio, lo: r.value && base ? r.value.min / base : null, hi: r.value && base ? r.value.max / base : null, color: COLORS[c], text: r.ratio !== null ? barText(r.ratio) : 'ERR' }
        }),
      })),
    })
  }
  if (S.W6) {
    const cs = ['hyperion', 'pg', 'postgres', 'bun'].filter((c) => S.W6.rows[c])
    barPanel(cv, {
      x: 20, y: 650, w: 720, h: 340,
      title: 'W6 failover: ms to first acked write (lower is better)',
      groups: cs.map((c) => {
        const r = S.W6.rows[c]
        return {
          label: SHORT[c],
          sublabel: r.value ? `lost ${r.lost}` : '',
          bars: [{ value: r.value ? r.value.median : null, lo: r.value && r.value.min, hi: r.value && r.value.max, color: COLORS[c], text: r.value ? `${Math.round(r.value.median)}` : 'ERR' }],
        }
      }),
    })
  }
  if (S.W7) {
    const cs = ['hyperion:v0', 'hyperion:v500', 'hyperion:off'].filter((c) => S.W7.rows[c])
    barPanel(cv, {
      x: 760, y: 650, w: 720, h: 340,
      title: 'W7 validation cost: q/s ratio to validation off',
      ref: 1,
      groups: cs.map((c) => {
        const r = S.W7.rows[c]
        const base = S.W7.rows['hyperion:off'] && S.W7.rows['hyperion:off'].value ? S.W7.rows['hyperion:off'].value.median : null
        return {
          label: SHORT[c],
          sublabel: r.value ? `${fmtNum(r.value.median, 'W7')} q/s` : '',
          bars: [{ value: r.ratio, lo: r.value && base ? r.value.min / base : null, hi: r.value && base ? r.value.max / base : null, color: COLORS[c], text: r.ratio !== null ? barText(r.ratio) : 'ERR' }],
        }
      }),
    })
  }
  if (S.W8) {
    const cs = W8_CLIENTS.filter((c) => S.W8.rows[`${c}:partition`] || S.W8.rows[`${c}:freeze`])
    const faultColor = { partition: [37, 99, 235], freeze: [230, 126, 34] }
    barPanel(cv, {
      x: 20, y: 1010, w: W - 40, h: 360,
      title: 'W8 real faults: ms from election to first acked write on the new primary (blue partition, orange freeze; none = no write in 20 s)',
      groups: cs.map((c) => {
        const rs = ['partition', 'freeze'].map((f) => S.W8.rows[`${c}:${f}`]).filter(Boolean)
        return {
          label: LABELS[c],
          sublabel: rs.map((r) => `blocked@10s ${r.blocked10}, lost ${r.lost}`).join(' | '),
          bars: ['partition', 'freeze'].filter((f) => S.W8.rows[`${c}:${f}`]).map((f) => {
            const r = S.W8.rows[`${c}:${f}`]
            return { value: r.value ? r.value.median : null, color: faultColor[f], text: r.value ? `${Math.round(r.value.median)}` : (r.errors.length ? 'ERR' : 'none') }
          }),
        }
      }),
    })
  }
  return cv.png()
}

module.exports = { summarize, paired, markdown, chart, NOTES, LABELS }
