'use strict'
// W6, the client side: 4 writers insert unique keys while run.js fails the cluster over.
// Runs under node and bun. Every acknowledged insert reports the port of the server that
// ran it (`returning inet_server_port()`), so the first acknowledged write on the new
// primary is known exactly; run.js checks that every acknowledged key exists there.
//
// Clients that follow the primary themselves (hyperiondb-client: all hosts, read-write
// mode; postgres.js: all hosts, target_session_attrs=read-write) get every host. Clients
// without multi-host support (node-postgres, Bun SQL) are driven the way their users do it
// without a proxy: a pool on the old primary, and when a write fails, the writer re-creates
// the pool on whichever listed host is a writable primary (pg_is_in_recovery() false,
// transaction_read_only off), probing the hosts in turn until one is.

const WRITERS = 4
const INSERT = 'insert into w6 (k, writer) values ($1, $2) returning inet_server_port() as port'
const PROBE = "select pg_is_in_recovery() as rec, current_setting('transaction_read_only') as ro"

const wall = () => performance.timeOrigin + performance.now() // epoch ms, comparable across processes
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const withTimeout = (p, ms) => Promise.race([p, sleep(ms)])

// App-level primary discovery for single-host clients.
class Reconnecting {
  constructor(adapter, conn) {
    this.adapter = adapter
    this.conn = conn
    this.db = null
    this.recovering = null
    this.reconnects = 0
  }

  async init() {
    this.db = this.adapter.connect({ ...this.conn, hosts: undefined, ...this.conn.hosts[this.conn.primary], max: WRITERS })
  }

  // Called by a writer whose write on `failed` failed; one rediscovery at a time.
  recover(failed) {
    if (this.db !== failed && this.db !== null) return Promise.resolve() // already replaced
    if (!this.recovering) {
      this.recovering = this._discover().finally(() => { this.recovering = null })
    }
    return this.recovering
  }

  async _discover() {
    const old = this.db
    this.db = null
    if (old) withTimeout(old.close(), 1000).catch(() => {})
    for (;;) {
      for (const h of this.conn.hosts) {
        let db
        try {
          db = this.adapter.connect({ ...this.conn, hosts: undefined, ...h, max: WRITERS })
          const [r] = await withTimeout(db.query(PROBE, []), 1000).then((x) => x || [])
          if (r && (r.rec === false || r.rec === 'f') && r.ro === 'off') {
            this.db = db
            this.reconnects++
            return
          }
        } catch { /* down or not ready: next host */ }
        if (db) withTimeout(db.close(), 1000).catch(() => {})
      }
      await sleep(20)
    }
  }
}

// Multi-host clients: one pool over every host.
class Direct {
  constructor(adapter, conn) {
    this.adapter = adapter
    this.conn = conn
    this.db = null
    this.reconnects = 0
  }
  async init() {
    this.db = this.adapter.connect({ ...this.conn, max: WRITERS })
  }
  recover() {
    return sleep(5) // the client reconnects by itself; just do not spin
  }
}

async function W6(adapter, conn, { onReady, timeoutMs = 60000, afterNewMs = 500 } = {}) {
  const oldPort = conn.hosts[conn.primary].port
  const link = adapter.multiHost ? new Direct(adapter, conn) : new Reconnecting(adapter, conn)
  await link.init()
  const acked = []
  const firstAck = {}
  const lastAck = {}
  const errors = {}
  let stop = false
  let ready = false
  let newPortAt = null
  const t0 = wall()

  const writer = async (w) => {
    let seq = 0
    while (!stop) {
      const db = link.db
      if (!db) {
        await link.recovering
        continue
      }
      const k = w * 10000000 + ++seq
      try {
        const rows = await db.query(INSERT, [k, w])
        const at = wall()
        const port = Number(rows[0].port)
        acked.push(k)
        if (firstAck[port] === undefined) firstAck[port] = at
        lastAck[port] = at
        if (port !== oldPort && newPortAt === null) newPortAt = at
      } catch (e) {
        const code = (e && (e.code || e.errno || e.name)) || 'error'
        errors[code] = (errors[code] || 0) + 1
        await link.recover(db)
      }
    }
  }
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w))

  // Steady state first, then tell run.js to fail over; stop 500 ms after the first write
  // acknowledged by another server (the new primary).
  let timedOut = false
  for (;;) {
    await sleep(10)
    const t = wall()
    if (!ready && acked.length >= 200 && t - t0 >= 500) {
      ready = true
      onReady()
    }
    if (newPortAt !== null && t - newPortAt >= afterNewMs) break
    if (t - t0 > timeoutMs) { timedOut = true; break }
  }
  stop = true
  await withTimeout(Promise.all(writers), 10000)
  if (link.db) await withTimeout(link.db.close(), 5000).catch(() => {})
  return { oldPort, acked, firstAck, lastAck, errors, reconnects: link.reconnects, timedOut }
}

module.exports = { W6, WRITERS }
