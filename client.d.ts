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

export type Row = Record<string, unknown>

export declare class Transaction {
  readonly finished: boolean
  query<T extends Row = Row>(sql: string, params?: unknown[]): Promise<T[]>
  commit(): Promise<void>
  rollback(): Promise<void>
}

export declare class Pool {
  query<T extends Row = Row>(sql: string, params?: unknown[], options?: QueryOptions): Promise<T[]>
  begin(options?: BeginOptions): Promise<Transaction>
  transaction<T>(cb: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>
  status(): PoolStatus
  connections(): ConnectionStatus[]
  end(): Promise<void>
}

export declare function createPool(options: PoolOptions): Pool
export declare function hello(name: string): string
