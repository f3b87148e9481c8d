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

export interface PoolOptions {
  /** `'host'`, `'host:port'`, or `'[v6]:port'`. */
  hosts: string[]
  /** Port for hosts that do not name one. Default 5432. */
  port?: number
  user: string
  password?: string
  database?: string
  applicationName?: string
  /** Default 'read-write'. */
  mode?: Mode
  /** Default 10. */
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
  logger?: (event: QueryLogEvent) => void
}

export interface QueryOptions {
  /** Retry this read on a connection failure (default on for read-only/prefer-standby pools). */
  retry?: boolean
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

export declare class Transaction {
  readonly finished: boolean
  query<T extends Row = Row>(sql: string, params?: Param[]): Promise<T[]>
  commit(): Promise<void>
  rollback(): Promise<void>
}

export declare class Pool {
  query<T extends Row = Row>(sql: string, params?: Param[], options?: QueryOptions): Promise<T[]>
  begin(options?: BeginOptions): Promise<Transaction>
  transaction<T>(cb: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>
  status(): PoolStatus
  connections(): ConnectionStatus[]
  end(): Promise<void>
}

export declare function createPool(options: PoolOptions): Pool
export declare function hello(name: string): string
