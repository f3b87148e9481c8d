#!/usr/bin/env node
'use strict'
// W3 (50,000 rows x 10 columns, the table of benches/node/lib/workloads.js) with rows.js's
// compiled row builder and with its closure fallback (node --disallow-code-generation-from-
// strings), against a one-node local PostgreSQL. Each in a fresh process: 2 warm-up runs,
// then the median of 7. Usage: node scripts/w3-codegen.js
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const ROOT = path.join(__dirname, '..')

const CHILD = `
const { createPool } = require(${JSON.stringify(path.join(ROOT, 'client.js'))})
const SQL = 'select c_int4, c_int8, c_float8, c_bool, c_text, c_numeric, c_ts, c_uuid, c_jsonb, c_bytea from bench_wide'
;(async () => {
  const pool = createPool({ ...JSON.parse(process.env.CONN), poolSize: 1 })
  const times = []
  for (let i = 0; i < 9; i++) {
    const t = process.hrtime.bigint()
    const rows = await pool.query(SQL)
    const ms = Number(process.hrtime.bigint() - t) / 1e6
    if (rows.length !== 50000 || typeof rows[1].c_int8 !== 'bigint' || rows[1].c_jsonb.tag !== 'k2') throw new Error('wrong rows')
    if (i >= 2) times.push(ms)
  }
  await pool.end()
  times.sort((a, b) => a - b)
  console.log(JSON.stringify({ codegen: require(${JSON.stringify(path.join(ROOT, 'rows.js'))}).CAN_COMPILE, medianMs: times[3], rowsPerSec: Math.round(50000 / times[3] * 1000) }))
})().catch((e) => { console.error(e); process.exit(1) })`

async function main() {
  const { createCluster } = require(path.join(ROOT, 'test/cluster.js'))
  const cluster = await createCluster({ nodes: 1 })
  try {
    const conn = cluster.connection()
    const { createPool } = require(path.join(ROOT, 'client.js'))
    const pool = createPool({ ...conn, poolSize: 1 })
    await pool.query(`create table bench_wide (c_int4 int4 not null, c_int8 int8, c_float8 float8, c_bool bool, c_text text, c_numeric numeric(12,2),
  c_ts timestamptz, c_uuid uuid, c_jsonb jsonb, c_bytea bytea)`)
    await pool.query(`insert into bench_wide select i, 9007199254740993 + i::int8 * 7, i + 0.25, i % 3 = 0, 'text-value-' || lpad(i::text, 9, '0'),
  (i % 100000) + 0.5, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second', md5(i::text)::uuid,
  jsonb_build_object('id', i, 'tag', 'k' || (i % 10)), decode(md5(i::text), 'hex') from generate_series(1, 50000) i`)
    await pool.end()
    for (const flags of [[], ['--disallow-code-generation-from-strings'], [], ['--disallow-code-generation-from-strings']]) {
      const r = spawnSync(process.execPath, [...flags, '-e', CHILD], { encoding: 'utf8', env: { ...process.env, CONN: JSON.stringify(conn) } })
      if (r.status !== 0) throw new Error(r.stderr)
      console.log(flags.join(' ') || '(default)', r.stdout.trim())
    }
  } finally {
    await cluster.destroy()
  }
}
main().catch((e) => { console.error(e); process.exit(1) })
