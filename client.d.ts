// Hand-checked types for hyperiondb-client (client.js).

export type Mode = 'read-write' | 'read-only' | 'prefer-standby' | 'any'

export interface RetryOptions {
  /** Default 3. */
  maxAttempts?: number
  /** Default 50. */
  baseDelayMs?: number
  /** Default 1000. */
  maxDelayMs?: number
}

export interface QueryLogEvent {
  sql: string
  durationMs: number
  rowCount?: number
  error?: PgError
}

export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'

/**
 * node-postgres's `ssl` option, mapped onto `sslmode`: `true` or an object -> 'verify-full'
 * (Node checks the chain and the name by default); `rejectUnauthorized: false` -> 'require'
 * (no check; `ca` is then unused, as in Node); `false` -> 'disable'. `ca`, `cert`, `key` are
 * PEM text, never paths. Other keys throw INVALID_CONFIG.
 */
export interface PgSslOptions {
  ca?: string | Buffer | Array<string | Buffer>
  cert?: string | Buffer
  key?: string | Buffer
  rejectUnauthorized?: boolean
  /** The name checked against the certificate (and sent as SNI) instead of the host. */
  servername?: string
}

/**
 * Options win over `connectionString`, which wins over the PG* environment variables
 * (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGAPPNAME, PGSSLMODE, PGSSLROOTCERT,
 * PGTARGETSESSIONATTRS, PGCONNECT_TIMEOUT, PGPASSFILE); a password given nowhere comes from
 * `~/.pgpass`. An unknown option throws `INVALID_CONFIG` naming it.
 */
export interface PoolOptions {
  /**
   * libpq's URI (`postgresql://user:pw@h1:5432,h2/db?sslmode=verify-full`) or keyword/value
   * string (`host=h1,h2 port=5432 dbname=db`).
   */
  connectionString?: string
  /**
   * `'host'`, `'host:port'`, `'[v6]:port'`, or a Unix socket directory (`'/var/run/postgresql'`);
   * one string for a single host. Default: from the connection string, PGHOST, else 'localhost'.
   */
  hosts?: string[] | string
  /** Port for hosts that do not name one. Default 5432. */
  port?: number
  /** Default: from the connection string, PGUSER, else the operating system's user. */
  user?: string
  password?: string
  database?: string
  applicationName?: string
  /** Default 'read-write'. */
  mode?: Mode
  /** Default 10, at most 10000. */
  poolSize?: number
  /** Per-connection TCP + handshake timeout. Default 2000. */
  connectTimeoutMs?: number
  /** How long a query may wait for a connection / a writable primary. Default 5000. */
  acquireTimeoutMs?: number
  /** Server-enforced statement_timeout on every connection. */
  statementTimeoutMs?: number
  /** Skip checkout validation for connections validated this recently. Default 0. */
  validationIntervalMs?: number
  retry?: RetryOptions
  /** Most queries pipelined on one connection. Default 128. */
  pipelineDepth?: number
  /** Most prepared statements per connection; the least recently used is closed. Default 512. */
  statementCacheSize?: number
  /** An idle connection is closed after this many ms, above `minConnections`; 0: never. Default 600000. */
  idleTimeoutMs?: number
  /** Connections kept open however long they idle. Default 1. */
  minConnections?: number
  /** A connection is replaced once idle after this many ms (less up to a tenth, at random); 0: never. Default 1800000. */
  maxLifetimeMs?: number
  /** The newest protocol version asked for: '3.0' (default) or '3.2' (PostgreSQL 18: longer cancel keys). */
  maxProtocolVersion?: '3.0' | '3.2' | 'latest'
  /** Called once per query (pool and transaction queries); its errors and rejections are ignored. */
  logger?: (event: QueryLogEvent) => void | Promise<void>
  /** Called at each failover event (host seen down, fenced, superseded, ...); its errors are ignored. */
  onEvent?: (event: PoolEvent) => void | Promise<void>
  /** Called with every notice of a query or transaction query, just before it settles; its errors are ignored. */
  onNotice?: (notice: Notice) => void | Promise<void>
  /**
   * Called when the listening session was lost and replaced (a failover, a broken
   * connection), with the window in which notifications may have been missed; its errors are
   * ignored.
   */
  onListenGap?: (gap: ListenGap) => void | Promise<void>
  /** libpq's meanings. Default 'prefer'. */
  sslmode?: SslMode
  /** Trusted root(s): a file path or PEM text; 'system' for the OS store (then verify-full). Default: the OS store. */
  sslrootcert?: string | Buffer
  /** Client certificate (for `cert` auth): a file path or PEM text. Needs `sslkey`. */
  sslcert?: string | Buffer
  /** The client certificate's key: a file path or PEM text. */
  sslkey?: string | Buffer
  /** 'direct' (PostgreSQL 17+) needs sslmode 'require' or stricter. Default 'postgres'. */
  sslnegotiation?: 'postgres' | 'direct'
  /** SCRAM-SHA-256-PLUS channel binding. Default 'prefer'. */
  channelBinding?: 'disable' | 'prefer' | 'require'
  /**
   * Methods the client answers, libpq's syntax: 'scram-sha-256', 'md5,scram-sha-256',
   * '!password', 'none', ... Default: any but a cleartext password without TLS.
   */
  requireAuth?: string
  /** node-postgres's TLS option (see PgSslOptions); not together with sslmode/ssl*. */
  ssl?: boolean | PgSslOptions
  /**
   * false: run every statement unnamed (parsed again each time, nothing prepared on the
   * server), as PgBouncer's transaction mode needs. Default true.
   */
  prepare?: boolean
  /**
   * How values of some types reach JS. `int8`: 'bigint' (default, lossless), 'number'
   * (throws DECODE_ERROR for a value beyond 2^53 rather than lose digits) or 'string'.
   */
  types?: { int8?: 'bigint' | 'number' | 'string' }
}

export type HostState = 'primary' | 'standby' | 'fenced' | 'unreachable' | 'unknown'

export interface PoolEvent {
  type:
    | 'primary-found'
    | 'host-standby'
    | 'host-fenced'
    | 'host-down'
    | 'host-unknown'
    | 'host-superseded'
    | 'connections-evicted'
  /** `host:port`. */
  host?: string
  /** For 'host-superseded': the new writable primary. */
  by?: string
  /** For 'connections-evicted'. */
  count?: number
  /** ms since the epoch. */
  at: number
}

export interface HostStatus {
  host: string
  state: HostState
  /** When the state was last confirmed (ms since the epoch). */
  confirmedAt: number | null
  /** Since when the host has been unreachable (ms since the epoch). */
  downSince: number | null
}

export interface EndOptions {
  /** After this grace, calls still in flight are rejected and every socket is closed. */
  timeoutMs?: number
}

export interface StopOptions {
  /**
   * Stop the query after this many ms (connection wait included): the statement is
   * cancelled on the server and the call throws `code === 'QUERY_TIMEOUT'`.
   */
  timeoutMs?: number
  /**
   * Abort the query: the statement is cancelled on the server and the call throws an
   * `AbortError` (`code === 'ABORT_ERR'`, `cause` = the signal's reason). One signal may
   * serve any number of queries (a single listener is registered on it).
   */
  signal?: AbortSignal
}

/**
 * A query with `timeoutMs` or `signal` takes its connection exclusively (nothing else is
 * pipelined on it while it runs), so its cancel can only hit its own statement.
 */
export interface QueryOptions extends StopOptions {
  /** Retry this read on a connection failure (default on for read-only/prefer-standby pools). */
  retry?: boolean
  /** `'array'`: each row an array of its values in column order (duplicate names kept). Default `'object'`. */
  rowMode?: RowMode
  /** false: run this statement unnamed (see `PoolOptions.prepare`). */
  prepare?: boolean
}

export type RowMode = 'object' | 'array'

/** A transaction query's options. */
export interface TransactionQueryOptions extends StopOptions {
  rowMode?: RowMode
  prepare?: boolean
}

/** `stream()`'s options. */
export interface StreamOptions extends TransactionQueryOptions {
  /** Rows read per round trip (and at most held at once, twice over). Default 1000. */
  batchSize?: number
}

/** What `copyFrom` takes: the data, whole or in pieces (a Node Readable is an async iterable). */
export type CopySource = Buffer | Uint8Array | string | Iterable<Buffer | Uint8Array | string> | AsyncIterable<Buffer | Uint8Array | string>

/** One result column. */
export interface FieldInfo {
  readonly name: string
  readonly typeOid: number
  readonly format: 'text' | 'binary'
}

/**
 * What `query` resolves to: the rows, plus non-enumerable `command` (`'UPDATE'`),
 * `rowCount` (the command tag's count; null where the tag has none) and `fields`.
 */
export type QueryResultArray<T> = T[] & {
  readonly command: string | null
  readonly rowCount: number | null
  readonly fields: readonly FieldInfo[]
}

/** A NoticeResponse (`RAISE NOTICE`, a `WARNING`), with the fields an error has. */
export interface Notice {
  severity: string
  code: string
  message: string
  detail?: string
  hint?: string
  position?: string
  internalPosition?: string
  internalQuery?: string
  where?: string
  schema?: string
  table?: string
  column?: string
  dataType?: string
  constraint?: string
  file?: string
  line?: string
  routine?: string
}

export interface InsertOptions extends StopOptions {
  /**
   * Add `ON CONFLICT (conflictTarget) DO NOTHING`: a row whose key exists already resolves
   * to `[]`, and the insert is retried through a connection failure even when it may have
   * reached the server.
   */
  idempotency?: boolean
  /** The unique column(s) of the conflict (only with `idempotency`). Default `'_id'`. */
  conflictTarget?: string | string[]
}

export interface PoolStatus {
  maxSize: number
  size: number
  available: number
  inUse: number
  waiting: number
}

/** Errors carry the SQLSTATE (or a client code such as 'POOL_CLOSED') on `.code`. */
export interface PgError extends Error {
  code: string
  severity?: string
  detail?: string
  hint?: string
  position?: string
  internalPosition?: string
  internalQuery?: string
  where?: string
  schema?: string
  table?: string
  column?: string
  dataType?: string
  constraint?: string
  file?: string
  line?: string
  routine?: string
  readonly query?: string
}

export interface ConnectionStatus {
  host: string
  processId: number
  serverVersionNum: number
  inFlight: number
  /** The session cannot write: a 25006 was seen, or the server reported read-only. */
  readOnly: boolean
  inHotStandby: boolean
  defaultTransactionReadOnly: boolean
  sawReadOnlyError: boolean
}

export type Isolation = 'read-committed' | 'repeatable-read' | 'serializable'

export interface BeginOptions {
  isolation?: Isolation
}

export interface TransactionOptions extends BeginOptions {
  /** Default: the pool's retry.maxAttempts (3). */
  maxAttempts?: number
}

/** A parsed json/jsonb value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/**
 * A column value (see the README's type table): bool -> boolean; int2/int4/oid/float4/float8
 * -> number; int8 -> bigint; numeric, text types, enums, uuid, and timestamptz/timestamp/
 * date/time as ISO 8601 strings with microseconds -> string; bytea -> Buffer; json/jsonb ->
 * the parsed value; arrays -> (nested) arrays; NULL -> null; other types -> their text.
 */
export type Value = null | boolean | number | bigint | string | Buffer | JsonValue | Value[]

/**
 * A parameter: null/undefined, boolean, number, bigint, string, Buffer (bytea), Date
 * (timestamptz), arrays (a PostgreSQL array for array targets, else JSON), plain objects (JSON).
 */
export type Param = null | undefined | boolean | number | bigint | string | Buffer | Date | Param[] | object

export type Row = Record<string, Value>

/** What runs on a connection held alone: a `Transaction` or a `Connection`. */
export declare abstract class Dedicated {
  /** A stop cancels the statement (which aborts a transaction). */
  query<T extends object = Row>(
    sql: string,
    params: Param[] | null | undefined,
    options: TransactionQueryOptions & { rowMode: 'array' },
  ): Promise<QueryResultArray<Value[]>>
  query<T extends object = Row>(sql: string, params?: Param[] | null, options?: TransactionQueryOptions): Promise<QueryResultArray<T>>
  /**
   * The rows, `batchSize` at a time through a portal (memory stays flat); leaving the loop
   * early closes the portal.
   */
  stream<T extends object = Row>(sql: string, params?: Param[] | null, options?: StreamOptions): AsyncIterableIterator<T>
  /** `COPY ... FROM STDIN`; resolves to the row count. A source that throws copies nothing. */
  copyFrom(sql: string, source: CopySource): Promise<number | null>
  /** `COPY ... TO STDOUT`: the data; leaving the loop early cancels the COPY. */
  copyTo(sql: string): AsyncIterableIterator<Buffer>
  /** Several statements in one round trip (simple protocol, no parameters): one result each. */
  script<T extends object = Row>(sql: string, options?: StopOptions & { rowMode?: RowMode }): Promise<QueryResultArray<T>[]>
}

export declare class Transaction extends Dedicated {
  /** From `pool.begin()` or `pool.transaction(cb)` only. */
  private constructor()
  readonly finished: boolean
  commit(): Promise<void>
  rollback(): Promise<void>
  /** Runs `cb` in a SAVEPOINT: rolled back to when it throws (the outer transaction goes on). */
  savepoint<T>(cb: (tx: Transaction) => T | Promise<T>): Promise<T>
  /** `await using tx = await pool.begin()`: rolled back at the block's end unless finished. */
  [Symbol.asyncDispose](): Promise<void>
}

/** A connection from `pool.connect()`, the caller's alone until released. */
export declare class Connection extends Dedicated {
  private constructor()
  readonly released: boolean
  /** The backend process id (null once released). */
  readonly processId: number | null
  /** Gives it back to the pool; with an error (any truthy value), closes it instead. */
  release(err?: unknown): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export declare class Pool {
  /** The same as `createPool(options)`. */
  constructor(options: PoolOptions | string)
  query<T extends object = Row>(
    sql: string,
    params: Param[] | null | undefined,
    options: QueryOptions & { rowMode: 'array' },
  ): Promise<QueryResultArray<Value[]>>
  query<T extends object = Row>(sql: string, params?: Param[] | null, options?: QueryOptions): Promise<QueryResultArray<T>>
  /**
   * `INSERT INTO table (keys of row) VALUES (...) RETURNING *` (keys whose value is
   * undefined are left out). `table`: 'name', 'schema.name' or ['schema', 'name'].
   */
  insert<T extends object = Row, R extends { [K in keyof R]: Param } = Record<string, Param>>(table: string | string[], row: R, options?: InsertOptions): Promise<T[]>
  begin(options?: BeginOptions): Promise<Transaction>
  /** A connection for the caller alone (ORMs, session state); `release()` it. */
  connect(): Promise<Connection>
  /** `Connection#stream` on a connection of its own, given back when the loop ends. */
  stream<T extends object = Row>(sql: string, params?: Param[] | null, options?: StreamOptions): AsyncIterableIterator<T>
  copyFrom(sql: string, source: CopySource): Promise<number | null>
  copyTo(sql: string): AsyncIterableIterator<Buffer>
  script<T extends object = Row>(sql: string, options?: StopOptions & { rowMode?: RowMode }): Promise<QueryResultArray<T>[]>
  /** `await using pool = createPool(...)`: ended at the block's end. */
  [Symbol.asyncDispose](): Promise<void>
  transaction<T>(cb: (tx: Transaction) => T | Promise<T>, options?: TransactionOptions): Promise<T>
  status(): PoolStatus
  connections(): ConnectionStatus[]
  hosts(): HostStatus[]
  end(options?: EndOptions): Promise<void>
  /**
   * LISTENs on `channel` (matched exactly, case included) on one dedicated connection to the
   * writable primary, which follows the primary across failovers (see `onListenGap`).
   * Resolves once the LISTEN is in place; the function it resolves to stops this listener.
   * What `callback` throws is ignored.
   */
  listen(
    channel: string,
    callback: (payload: string, info: NotificationInfo) => void | Promise<void>,
  ): Promise<() => Promise<void>>
  /** `select pg_notify(channel, payload)`. */
  notify(channel: string, payload?: string): Promise<void>
}

/** Where a notification came from. */
export interface NotificationInfo {
  channel: string
  /** The backend process that sent the NOTIFY. */
  processId: number
}

/** A window (ms since the epoch) in which notifications may have been missed. */
export interface ListenGap {
  /** The last moment the old listening connection was known good. */
  from: number
  /** When the new connection's LISTENs were all in place. */
  to: number
}

/** `options`, or a connection string (the same as `{ connectionString }`). */
export declare function createPool(options: PoolOptions | string): Pool
export declare function hello(name: string): string
