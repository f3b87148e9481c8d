'use strict'
// One benchmark sample in a fresh process: `node sample.js --client pg --workload W2`
// (`bun sample.js --client bun ...` for Bun SQL). The server comes from BENCH_CONN (JSON:
// { host, port, user, password, database } and, for W6, hosts: [{ host, port }], primary).
// `node run.js --serve` prints one. Prints progress on stderr and one line
// `@@RESULT <json>` on stdout; exits 1 (with `@@RESULT {"ok":false,...}`) if the sample
// fails, including when its results are wrong.
//
//   --client hyperion|pg|postgres|bun, with a variant after a colon: hyperion:v0,
//            hyperion:v500, hyperion:off (W7), hyperion:parse (W3)
//   --client X:partition|X:freeze (W8: the fault, for the record; run.js applies it)
//   --client pg:cursor (S1: pg-cursor instead of pg-query-stream)
//   --workload W1..W8, W3-json, W3-strings (W3's other data shapes), S1..S3 (streams, COPY)
//            W1-same, W1-cross (run.js --w1-pin: W1 here; run.js pins the CPUs)
//   --quick (small counts)
//   --size n=3000,warm=500  override counts (profiling runs; not for reported figures)

const path = require('node:path')

function args(argv) {
  const out = { quick: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--client') out.client = argv[++i]
    else if (a === '--workload') out.workload = argv[++i]
    else if (a === '--quick') out.quick = true
    else if (a === '--size') out.size = Object.fromEntries(argv[++i].split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]))
    else throw new Error(`unknown argument ${a}`)
  }
  if (!out.client || !out.workload) throw new Error('usage: sample.js --client NAME[:variant] --workload W1..W8 [--quick]')
  return out
}

function emit(obj) {
  process.stdout.write(`@@RESULT ${JSON.stringify(obj, (k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`)
}

async function main() {
  const a = args(process.argv.slice(2))
  const [name, variant] = a.client.split(':')
  const adapter = require(path.join(__dirname, 'clients', `${name}.js`))
  if (!process.env.BENCH_CONN) throw new Error('BENCH_CONN is not set (see run.js --serve)')
  const conn = JSON.parse(process.env.BENCH_CONN)
  const meta = { client: a.client, workload: a.workload, version: adapter.version(), runtime: typeof Bun !== 'undefined' ? `bun ${Bun.version}` : `node ${process.version}` }
  let metrics
  if (a.workload === 'W6') {
    const { W6 } = require('./lib/failover.js')
    metrics = await W6(adapter, conn, { onReady: () => process.stdout.write('@@READY\n') })
  } else if (a.workload === 'W8') {
    const { W8 } = require('./lib/failover.js')
    metrics = await W8(adapter, conn, { onReady: () => process.stdout.write('@@READY\n') })
    metrics.fault = variant
  } else {
    const { runWorkload } = require('./lib/workloads.js')
    metrics = await runWorkload(a.workload, adapter, conn, { quick: a.quick, variant, size: a.size })
  }
  emit({ ok: true, ...meta, metrics })
}

main().then(
  () => process.exit(0),
  (e) => {
    emit({ ok: false, error: String((e && e.stack) || e).split('\n').slice(0, 4).join(' | '), code: e && e.code })
    process.exit(1)
  },
)
