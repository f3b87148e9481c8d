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
  constructor(adapter, conn, extra = {}) {
    this.adapter = adapter
    this.conn = conn
    this.extra = extra
    this.db = null
    this.recovering = null
    this.reconnects = 0
  }

  async init() {
    this.db = this.adapter.connect({ ...this.conn, hosts: undefined, ...this.conn.hosts[this.conn.primary], max: WRITERS, ...this.extra })
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
          db = this.adapter.connect({ ...this.conn, hosts: undefined, ...h, max: WRITERS, ...this.extra })
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
  constructor(adapter, conn, extra = {}) {
    this.adapter = adapter
    this.conn = conn
    this.extra = extra
    this.db = null
    this.reconnects = 0
  }
  async init() {
    this.db = this.adapter.connect({ ...this.conn, max: WRITERS, ...this.extra })
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

// ---------------------------------------------------------------------------------------
// W8, the client side: W6's writers while run.js faults the primary for real (partition:
// every packet to/from its port dropped; freeze: every process SIGSTOPped) and promotes the
// most caught-up standby. Each client is configured as its users would for HA (`ha: true`:
// see each adapter's HA). run.js writes `@@ELECTED <epoch ms>` on stdin once the new primary
// is confirmed writable. The benchmark bounds every call itself: it never waits on a call
// past `boundMs` after the election. Reported:
//   - firstAck per port (run.js: the new primary's minus electedAt),
//   - blocked10: writers whose call pending at the election has still not settled 10 s after
//     it; blockedEnd: the same at the end (boundMs after the election, or earlier once every
//     such call has settled and every writer has had a write acknowledged by the new primary),
//   - every acknowledged key (run.js looks each up on the new primary).
function readElected() {
  return new Promise((resolve) => {
    let buf = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (d) => {
      buf += d
      const m = /@@ELECTED (\d+(?:\.\d+)?)/.exec(buf)
      if (m) {
        process.stdin.pause()
        resolve(Number(m[1]))
      }
    })
  })
}

async function W8(adapter, conn, { onReady, elected = readElected(), boundMs = 20000, blockedAtMs = 10000, afterNewMs = 500, readyTimeoutMs = 120000 } = {}) {
  const oldPort = conn.hosts[conn.primary].port
  const extra = { ha: true }
  const link = adapter.multiHost ? new Direct(adapter, conn, extra) : new Reconnecting(adapter, conn, extra)
  await link.init()
  const acked = []
  const firstAck = {}
  const lastAck = {}
  const errors = {}
  const cur = Array(WRITERS).fill(null) // the writer's pending call: { id, start } or null
  const firstNew = Array(WRITERS).fill(null) // first ack by another server than the old primary, per writer
  let longestCall = 0 // ms, over settled calls
  let E = null
  let stopped = false
  let stopNow
  const stopP = new Promise((r) => { stopNow = r })
  const STOP = Symbol('stop')
  let ready = false
  const t0 = wall()

  const writer = async (w) => {
    let seq = 0
    let id = 0
    while (!stopped) {
      const db = link.db
      if (!db) {
        if ((await Promise.race([link.recovering, stopP])) === STOP) break
        continue
      }
      const k = w * 10000000 + ++seq
      const start = wall()
      cur[w] = { id: ++id, start }
      let p
      try { p = Promise.resolve(db.query(INSERT, [k, w])) } catch (e) { p = Promise.reject(e) }
      const r = await Promise.race([p.then((rows) => ({ rows }), (e) => ({ e })), stopP])
      if (r === STOP) { p.catch(() => {}); break } // abandoned, still pending: stays in cur[w]
      const at = wall()
      cur[w] = null
      longestCall = Math.max(longestCall, at - start)
      if (r.rows) {
        const port = Number(r.rows[0].port)
        acked.push(k)
        if (firstAck[port] === undefined) firstAck[port] = at
        lastAck[port] = at
        if (port !== oldPort && firstNew[w] === null) firstNew[w] = at
      } else {
        const e = r.e
        const code = (e && (e.code || e.errno || e.name)) || 'error'
        errors[code] = (errors[code] || 0) + 1
        if ((await Promise.race([link.recover(db), stopP])) === STOP) break
      }
    }
  }
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w))

  // Steady state, then @@READY; then wait for the election.
  for (;;) {
    await sleep(10)
    if (acked.length >= 200 && wall() - t0 >= 500) break
    if (wall() - t0 > readyTimeoutMs) throw new Error('no steady state: fewer than 200 writes acknowledged')
  }
  onReady()
  E = await elected
  const atE = cur.map((c) => (c && c.start < E ? c.id : null)) // the calls pending at the election
  const pendingFromE = () => cur.reduce((n, c, w) => n + (c && atE[w] !== null && c.id === atE[w] ? 1 : 0), 0)
  const pendingAgesAt = (t) => cur.filter((c, w) => c && atE[w] !== null && c.id === atE[w]).map((c) => Math.round(t - c.start))
  let blocked10 = null
  let blocked10Ages = []
  const newAt = () => { const xs = Object.entries(firstAck).filter(([pt]) => Number(pt) !== oldPort).map(([, t]) => t); return xs.length ? Math.min(...xs) : null }
  for (;;) {
    await sleep(10)
    const t = wall()
    if (blocked10 === null && t >= E + blockedAtMs) { blocked10 = pendingFromE(); blocked10Ages = pendingAgesAt(E + blockedAtMs) }
    if (t >= E + boundMs) break
    const na = newAt()
    if (na !== null && t - na >= afterNewMs && pendingFromE() === 0 && firstNew.every((x) => x !== null)) break
  }
  const tEnd = wall()
  const blockedEnd = pendingFromE()
  if (blocked10 === null) blocked10 = blockedEnd // ended before E + 10 s: nothing from before was pending
  const stillPending = cur.filter(Boolean).length
  stopped = true
  stopNow(STOP)
  await withTimeout(Promise.all(writers), 2000)
  if (link.db) await withTimeout(Promise.resolve().then(() => link.db.close()), 3000).catch(() => {})
  return {
    oldPort, acked, firstAck, lastAck, errors, reconnects: link.reconnects,
    electedAt: E,
    pendingAtElection: atE.filter((x) => x !== null).length,
    blocked10,
    blocked10AgesMs: blocked10Ages,
    blockedEnd,
    stillPendingEnd: stillPending,
    endMsAfterElection: Math.round(tEnd - E),
    longestSettledCallMs: Math.round(longestCall),
    writersBackMs: firstNew.map((x) => (x === null ? null : Math.round(x - E))),
    ha: adapter.HA,
  }
}

module.exports = { W6, W8, WRITERS }
