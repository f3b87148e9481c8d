// Compiled (never run) by test/dts.test.js with `tsc --noEmit --strict`: the README's usage
// must type-check against client.d.ts, and each `@ts-expect-error` line must be an error
// (tsc reports an unused one), so the declarations can be neither too loose nor too strict.
import { createPool, Pool, Transaction, Connection, PgError, Row, Value, hello } from '../../client'

async function results(pool: Pool): Promise<void> {
  const updated = await pool.query('update t set x = 1')
  const count: number | null = updated.rowCount
  const command: string | null = updated.command
  const names: string[] = updated.fields.map((f) => f.name)
  const plain: Row[] = updated // still assignable to T[]
  const arrays = await pool.query('select 1, 2', [], { rowMode: 'array' })
  const first: Value[] = arrays[0]
  const typed = await pool.query<{ id: number }>('select 1 as id')
  const ids: { id: number }[] = typed
  await pool.transaction(async (tx) => {
    const r = await tx.query('select 1', null, { rowMode: 'array' })
    const v: Value[] = r[0]
    void v
  })
  const withNotices = createPool({ hosts: 'h', onNotice: (n) => console.log(n.severity, n.code, n.message, n.detail) })
  // @ts-expect-error rowCount is read-only
  updated.rowCount = 3
  // @ts-expect-error no such row mode
  await pool.query('select 1', [], { rowMode: 'rows' })
  void count, command, names, plain, first, ids, withNotices
}

async function readme(): Promise<void> {
  const greeting: string = hello('world')
  void greeting

  const pool = createPool({
    hosts: ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
    port: 5432,
    user: 'app',
    password: 'secret',
    database: 'weido',
    mode: 'read-write',
    poolSize: 10,
    connectTimeoutMs: 2000,
    acquireTimeoutMs: 5000,
    statementTimeoutMs: 30000,
    validationIntervalMs: 0,
    logger: (e) => console.log(e.sql, e.durationMs, e.rowCount ?? e.error?.code),
    retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 1000 },
  })
  const rows = await pool.query('select id, label from t where id = $1', [42])
  const first: Row | undefined = rows[0]
  const label: Value | undefined = first?.label
  void label

  // A row type the caller names, as an interface or a type literal.
  interface Order {
    id: number
    amount: string
    placed: string
    total: bigint
    payload: Buffer | null
  }
  const orders = await pool.query<Order>('select * from orders where id = $1', [1n])
  const total: bigint = orders[0].total
  void total
  type Pair = { a: number; b: string | null }
  const pairs: Pair[] = await pool.query<Pair>('select 1 as a, null as b')
  void pairs

  const id = await pool.transaction(async (tx) => {
    await tx.query('insert into t (x) values ($1)', [1])
    const r = await tx.query<{ id: number }>('update t set x = x + 1 where x = $1 returning id', [1])
    return r[0].id
  })
  const n: number = id
  void n
  await pool.transaction(async () => {}, { maxAttempts: 5, isolation: 'serializable' })
  const syncResult: string = await pool.transaction(() => 'done')
  void syncResult

  const tx: Transaction = await pool.begin({ isolation: 'serializable' })
  try {
    await tx.query('insert into t (x) values ($1)', [2], { timeoutMs: 1000 })
    await tx.commit()
  } catch (e) {
    await tx.rollback()
    throw e
  }

  await pool.query('select …', [], { retry: true })
  const [order] = await pool.insert('orders', { _id: 'evt-2026-06-05-abc123', amount: 100 }, { idempotency: true })
  void order
  await pool.insert(['app', 'orders'], { k: 1, v: null, at: new Date(), doc: { a: [1, 2] } }, { idempotency: true, conflictTarget: ['k'] })
  // A row typed by an interface (no index signature) is accepted when its values are params.
  interface NewOrder {
    _id: string
    amount: number
    note?: string
  }
  const draft: NewOrder = { _id: 'evt-1', amount: 5 }
  const [saved] = await pool.insert('orders', draft, { idempotency: true })
  void saved

  await pool.query('select pg_sleep(10)', [], { timeoutMs: 2000 })
  const ac = new AbortController()
  await pool.query('select pg_sleep(10)', null, { signal: ac.signal })

  try {
    await pool.query('insert into t (id) values (1)')
  } catch (e) {
    const code: string = (e as PgError).code
    void code
  }

  const s = pool.status()
  const busy: number = s.maxSize + s.size + s.available + s.inUse + s.waiting
  void busy
  for (const c of pool.connections()) void (c.readOnly && c.inHotStandby)

  const same: Pool = new Pool({ hosts: '[::1]:5433', user: 'app', mode: 'prefer-standby' })
  // The README's "Connecting" section.
  const fromUrl = createPool('postgresql://app:secret@h1:5432,h2:5432/weido?target_session_attrs=read-write&sslmode=verify-full')
  const tls = createPool({
    connectionString: 'host=h1,h2 dbname=weido',
    user: 'app',
    sslmode: 'verify-full',
    sslrootcert: '/etc/ssl/db-ca.pem',
    channelBinding: 'require',
    requireAuth: 'scram-sha-256',
  })
  const pg = createPool({ hosts: 'db', user: 'app', ssl: { ca: Buffer.from('pem'), rejectUnauthorized: true } })
  await Promise.all([fromUrl.end(), tls.end(), pg.end()])
  await same.end()
  await pool.end()
}
void readme

async function mistakes(pool: Pool): Promise<void> {
  // @ts-expect-error: not a mode
  createPool({ hosts: ['h'], user: 'u', mode: 'primary' })
  // @ts-expect-error: not an sslmode
  createPool({ hosts: ['h'], sslmode: 'allow' })
  // @ts-expect-error: ssl is a boolean or an object
  createPool({ hosts: ['h'], ssl: 'true' })
  // @ts-expect-error: not an isolation level
  await pool.begin({ isolation: 'snapshot' })
  // @ts-expect-error: parameters are an array
  await pool.query('select $1', 1)
  // @ts-expect-error: a symbol is not a parameter
  await pool.query('select $1', [Symbol('x')])
  // @ts-expect-error: retry on a query is a boolean
  await pool.query('select 1', [], { retry: { maxAttempts: 2 } })
  interface BadRow {
    id: number
    tag: symbol
  }
  const bad: BadRow = { id: 1, tag: Symbol('x') }
  // @ts-expect-error: a symbol is not a parameter, in a row either
  await pool.insert('t', bad)
  // @ts-expect-error: transactions come from begin() or transaction()
  new Transaction()
  const rows = await pool.query('select 1 as n')
  // @ts-expect-error: a column value is not known to be a number
  const n: number = rows[0].n
  void n
}
void mistakes

// Dedicated connections, streams, COPY, scripts, savepoints (the results issue).
async function dedicated(pool: Pool): Promise<number> {
  const c = await pool.connect()
  try {
    await c.query("set application_name = 'x'")
    for await (const row of c.stream<{ id: number }>('select id from t where id > $1', [0], { batchSize: 500 })) {
      const id: number = row.id
      void id
    }
  } finally {
    await c.release()
  }
  const pid: number | null = c.processId
  void pid
  await c[Symbol.asyncDispose]()
  const copied: number | null = await pool.copyFrom('copy t from stdin', ['1\ta\n', Buffer.from('2\tb\n')])
  for await (const chunk of pool.copyTo('copy t to stdout')) {
    const b: Buffer = chunk
    void b
  }
  const results = await pool.script('create table a (x int); insert into a values (1)')
  const tag: string | null = results[1].command
  void tag
  await pool.transaction(async (tx) => {
    await tx.savepoint(async (sp) => {
      await sp.query('insert into a values (2)', [], { prepare: false })
    })
  })
  createPool({ hosts: ['h'], prepare: false })
  return copied ?? 0
}
void dedicated

async function dedicatedMistakes(pool: Pool): Promise<void> {
  // @ts-expect-error: batchSize is a number
  pool.stream('select 1', [], { batchSize: '10' })
  // @ts-expect-error: copyFrom takes data, not a number
  await pool.copyFrom('copy t from stdin', 42)
  // @ts-expect-error: connections come from pool.connect()
  new Connection()
}
void dedicatedMistakes
