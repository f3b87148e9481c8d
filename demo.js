'use strict'
// `npm run demo`: starts a local 3-node cluster (a primary and two synchronous standbys),
// runs queries through one pool over all three nodes, fails the primary over, keeps
// writing, and tears everything down. Every line it prints is something that happened.

const { createCluster } = require('./test/cluster.js')
const { createPool } = require('./client.js')

const say = (...a) => console.log(...a)
const ms = (t) => `${(performance.now() - t).toFixed(0)}ms`

async function main() {
  let t = performance.now()
  const cluster = await createCluster()
  const conn = cluster.connection()
  say(`cluster up in ${ms(t)}: ${conn.hosts.join(', ')} (PostgreSQL ${cluster.version()}), primary ${conn.hosts[cluster.primaryIndex()]}`)

  // Standbys are listed first: the pool finds the primary by itself.
  const hosts = [...conn.hosts].reverse()
  const pool = createPool({ ...conn, hosts, poolSize: 4 })
  const reads = createPool({ ...conn, hosts, mode: 'read-only', poolSize: 2 })
  try {
    await pool.query('drop table if exists demo_orders')
    await pool.query('create table demo_orders (id bigint primary key, label text not null, amount int4)')
    const [server] = await pool.query('select inet_server_port() as port, pg_is_in_recovery() as standby')
    say(`read-write pool wrote on port ${server.port} (standby: ${server.standby})`)

    t = performance.now()
    const n = 2000
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        pool.query('insert into demo_orders (id, label, amount) values ($1, $2, $3)', [BigInt(i) + 9007199254740000n, `order ${i}`, i])
      )
    )
    say(`${n} concurrent inserts, pipelined over ${pool.status().size} connections: ${ms(t)}`)

    const [agg] = await pool.query('select count(*) as n, max(id) as max_id, sum(amount) as total from demo_orders')
    say(`count=${agg.n} max_id=${agg.max_id} (a ${typeof agg.max_id}, exact) sum=${agg.total}`)

    const [standby] = await reads.query('select inet_server_port() as port, pg_is_in_recovery() as standby, count(*) as n from demo_orders')
    say(`read-only pool read ${standby.n} rows on port ${standby.port} (standby: ${standby.standby}; a standby may lag by what it has not replayed yet)`)

    try {
      await pool.query('insert into demo_orders (id, label) values ($1, $2)', [9007199254740000n, 'duplicate'])
    } catch (e) {
      say(`a duplicate key is an Error with .code ${e.code} (${e.constraint}): ${e.message}`)
    }

    // Failover: stop the primary, promote the most caught-up standby.
    const before = cluster.primaryIndex()
    t = performance.now()
    const { newPrimary } = await cluster.failover({ mode: 'stop' })
    say(`failover: stopped ${conn.hosts[before]}, promoted ${conn.hosts[newPrimary]} in ${ms(t)}`)
    t = performance.now()
    const [after] = await pool.query('insert into demo_orders (id, label) values ($1, $2) returning inet_server_port() as port', [1n, 'after failover'])
    say(`the same pool wrote on port ${after.port} ${ms(t)} later, with no application change`)
    const [check] = await pool.query('select count(*) as n from demo_orders')
    say(`rows on the new primary: ${check.n} (all ${n} acknowledged inserts + 1)`)
    if (check.n !== BigInt(n + 1)) throw new Error('acknowledged writes were lost')
  } finally {
    await pool.end()
    await reads.end()
    await cluster.destroy()
    say('pools closed, cluster stopped and removed')
  }
}

main().catch((e) => {
  console.error('demo failed:', e)
  process.exitCode = 1
})
