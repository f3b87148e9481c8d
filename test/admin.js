'use strict';
// Minimal, dependency-free PostgreSQL v3 protocol client used ONLY by the test
// harness (cluster setup, fencing, assertions). Deliberately independent of the
// product code so that harness bugs and client bugs cannot mask each other.
//
//   const { connect } = require('./admin');
//   const c = await connect({ host: '127.0.0.1', port, user, password, database });
//   const { rows, command } = await c.query('select 1 as x');  // rows: [{ x: '1' }]
//   await c.end();
//
// Auth: trust, cleartext, MD5, SCRAM-SHA-256. Protocol: simple Query only; all
// values are returned as text (string) or null. Errors reject with an Error
// carrying .code (SQLSTATE), .severity, .detail, .hint, .fields.

const net = require('node:net');
const crypto = require('node:crypto');

const ERROR_FIELDS = { S: 'severityLocalized', V: 'severity', C: 'code', M: 'message', D: 'detail', H: 'hint', P: 'position', W: 'where', s: 'schema', t: 'table', c: 'column', n: 'constraint', F: 'file', L: 'line', R: 'routine' };

function cstr(s) { return Buffer.from(String(s) + '\0', 'utf8'); }

function frame(type, body) {
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  return type ? Buffer.concat([Buffer.from(type, 'ascii'), len, body]) : Buffer.concat([len, body]);
}

function parseErrorFields(payload) {
  const fields = {};
  let i = 0;
  while (i < payload.length && payload[i] !== 0) {
    const k = String.fromCharCode(payload[i]);
    const end = payload.indexOf(0, i + 1);
    fields[k] = payload.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return fields;
}

function pgError(fields) {
  const err = new Error(fields.M || 'unknown server error');
  err.fields = fields;
  for (const [k, name] of Object.entries(ERROR_FIELDS)) if (fields[k] !== undefined && name !== 'message') err[name] = fields[k];
  if (!err.severity) err.severity = fields.S;
  return err;
}

const md5hex = (b) => crypto.createHash('md5').update(b).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
const sha256 = (data) => crypto.createHash('sha256').update(data).digest();

class AdminClient {
  constructor(socket, opts) {
    this.socket = socket;
    this.opts = opts;
    this.parameters = {};      // ParameterStatus values (server_version, in_hot_standby, ...)
    this.notices = [];         // last few NoticeResponse field sets
    this.processId = null;
    this.secretKey = null;
    this.txStatus = null;      // 'I' | 'T' | 'E' from the last ReadyForQuery
    this.closed = false;
    this.fatal = null;         // error that killed the connection, if any
    this._buf = Buffer.alloc(0);
    this._cur = null;          // in-flight operation { onMessage, fail }
    this._queue = Promise.resolve();
    socket.on('data', (chunk) => this._onData(chunk));
    socket.on('error', (err) => this._onClose(err));
    socket.on('close', () => this._onClose(null));
  }

  _onData(chunk) {
    this._buf = this._buf.length ? Buffer.concat([this._buf, chunk]) : chunk;
    while (this._buf.length >= 5) {
      const len = this._buf.readInt32BE(1);
      if (this._buf.length < 1 + len) break;
      const type = String.fromCharCode(this._buf[0]);
      const payload = this._buf.subarray(5, 1 + len);
      this._buf = this._buf.subarray(1 + len);
      try {
        this._dispatch(type, payload);
      } catch (err) {
        this._onClose(err);
        this.socket.destroy();
        return;
      }
    }
  }

  _dispatch(type, payload) {
    if (type === 'S') {
      const a = payload.indexOf(0);
      this.parameters[payload.toString('utf8', 0, a)] = payload.toString('utf8', a + 1, payload.indexOf(0, a + 1));
      return;
    }
    if (type === 'N') {
      this.notices.push(parseErrorFields(payload));
      if (this.notices.length > 20) this.notices.shift();
      return;
    }
    if (type === 'A') return; // NotificationResponse: ignored
    if (this._cur) return this._cur.onMessage(type, payload);
    if (type === 'E') this.fatal = pgError(parseErrorFields(payload)); // e.g. FATAL 57P01 on shutdown
  }

  _onClose(err) {
    if (this.closed) return;
    this.closed = true;
    const cur = this._cur;
    this._cur = null;
    if (cur) cur.fail(this.fatal || err || Object.assign(new Error('connection closed'), { code: 'ECONNRESET' }));
  }

  _write(buf) {
    if (this.closed) throw this.fatal || Object.assign(new Error('connection is closed'), { code: 'ECONNRESET' });
    this.socket.write(buf);
  }

  // Startup + authentication. Resolves on the first ReadyForQuery.
  _startup() {
    const { user, database, password, applicationName } = this.opts;
    return new Promise((resolve, reject) => {
      let scram = null;
      let error = null;
      const fail = (err) => { this._cur = null; reject(err); };
      const needPassword = () => {
        if (password == null) throw new Error(`server requested a password for user "${user}" but none was given`);
        return String(password);
      };
      this._cur = {
        fail,
        onMessage: (type, p) => {
          if (type === 'E') { error = this.fatal = pgError(parseErrorFields(p)); return; } // FATAL: server closes after this
          if (type === 'K') { this.processId = p.readInt32BE(0); this.secretKey = p.readInt32BE(4); return; }
          if (type === 'Z') { this.txStatus = String.fromCharCode(p[0]); this._cur = null; return error ? reject(error) : resolve(this); }
          if (type === 'v') return; // NegotiateProtocolVersion: we only use 3.0 features
          if (type !== 'R') throw new Error(`unexpected message '${type}' during startup`);
          const code = p.readInt32BE(0);
          if (code === 0) return; // AuthenticationOk
          if (code === 3) return this._write(frame('p', cstr(needPassword())));
          if (code === 5) {
            const pw = needPassword();
            const hash = 'md5' + md5hex(Buffer.concat([Buffer.from(md5hex(pw + user)), p.subarray(4, 8)]));
            return this._write(frame('p', cstr(hash)));
          }
          if (code === 10) {
            const mechs = p.toString('utf8', 4).split('\0').filter(Boolean);
            if (!mechs.includes('SCRAM-SHA-256')) throw new Error(`no supported SASL mechanism in ${mechs.join(',')}`);
            const nonce = crypto.randomBytes(18).toString('base64');
            scram = { nonce, pw: needPassword(), clientFirstBare: `n=,r=${nonce}` };
            const first = Buffer.from('n,,' + scram.clientFirstBare);
            const len = Buffer.alloc(4); len.writeInt32BE(first.length);
            return this._write(frame('p', Buffer.concat([cstr('SCRAM-SHA-256'), len, first])));
          }
          if (code === 11) {
            const serverFirst = p.toString('utf8', 4);
            const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
            if (!attrs.r || !attrs.r.startsWith(scram.nonce) || attrs.r.length <= scram.nonce.length) throw new Error('SCRAM: server nonce does not extend client nonce');
            const iterations = parseInt(attrs.i, 10);
            if (!attrs.s || !(iterations > 0)) throw new Error('SCRAM: malformed server-first-message');
            const salted = crypto.pbkdf2Sync(scram.pw.normalize('NFKC'), Buffer.from(attrs.s, 'base64'), iterations, 32, 'sha256');
            const clientKey = hmac(salted, 'Client Key');
            const withoutProof = `c=biws,r=${attrs.r}`;
            const authMessage = `${scram.clientFirstBare},${serverFirst},${withoutProof}`;
            const sig = hmac(sha256(clientKey), authMessage);
            const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]));
            scram.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage).toString('base64');
            return this._write(frame('p', Buffer.from(`${withoutProof},p=${proof.toString('base64')}`)));
          }
          if (code === 12) {
            const fin = p.toString('utf8', 4);
            if (fin.startsWith('e=')) throw new Error(`SCRAM: server error ${fin.slice(2)}`);
            if (!scram || fin.replace(/^v=/, '').split(',')[0] !== scram.serverSignature) throw new Error('SCRAM: server signature mismatch');
            return;
          }
          throw new Error(`unsupported authentication request ${code}`);
        },
      };
      const params = Buffer.concat([
        cstr('user'), cstr(user), cstr('database'), cstr(database || user),
        cstr('application_name'), cstr(applicationName || 'hyperion-admin'),
        cstr('client_encoding'), cstr('UTF8'), Buffer.from([0]),
      ]);
      const ver = Buffer.alloc(4); ver.writeInt32BE(196608);
      this._write(frame(null, Buffer.concat([ver, params])));
    });
  }

  // Simple-query protocol. Multiple statements allowed; rows/fields describe the
  // last result set, command is the last CommandComplete tag, results has all.
  query(sql) {
    const run = () => new Promise((resolve, reject) => {
      const results = [];
      let current = null;
      let error = null;
      this._cur = {
        fail: (err) => { this._cur = null; reject(err); },
        onMessage: (type, p) => {
          switch (type) {
            case 'T': {
              const n = p.readInt16BE(0);
              const fields = [];
              let o = 2;
              for (let i = 0; i < n; i++) {
                const end = p.indexOf(0, o);
                fields.push({ name: p.toString('utf8', o, end), typeOid: p.readInt32BE(end + 7) });
                o = end + 19;
              }
              current = { fields, rows: [], command: null };
              return;
            }
            case 'D': {
              const n = p.readInt16BE(0);
              const row = {};
              let o = 2;
              for (let i = 0; i < n; i++) {
                const len = p.readInt32BE(o); o += 4;
                const name = current && current.fields[i] ? current.fields[i].name : `column${i}`;
                if (len < 0) row[name] = null; else { row[name] = p.toString('utf8', o, o + len); o += len; }
              }
              if (current) current.rows.push(row);
              return;
            }
            case 'C': {
              const tag = p.toString('utf8', 0, p.indexOf(0));
              if (!current) current = { fields: [], rows: [], command: null };
              current.command = tag;
              results.push(current);
              current = null;
              return;
            }
            case 'I': return; // EmptyQueryResponse
            case 'E':
              error = pgError(parseErrorFields(p));
              if (error.severity === 'FATAL' || error.severity === 'PANIC') this.fatal = error;
              return;
            case 'G': this._write(frame('f', cstr('COPY FROM STDIN is not supported by admin.js'))); return;
            case 'H': case 'd': case 'c': return; // COPY TO STDOUT: data discarded
            case 'Z': {
              this.txStatus = String.fromCharCode(p[0]);
              this._cur = null;
              if (error) return reject(error);
              const last = [...results].reverse().find((r) => r.fields.length) || results[results.length - 1] || { fields: [], rows: [] };
              return resolve({ rows: last.rows, fields: last.fields, command: results.length ? results[results.length - 1].command : null, results });
            }
            default: throw new Error(`unexpected message '${type}' during query`);
          }
        },
      };
      try { this._write(frame('Q', cstr(sql))); } catch (err) { this._cur = null; reject(err); }
    });
    const p = this._queue.then(run);
    this._queue = p.catch(() => {});
    return p;
  }

  // Convenience: first row's first column (or null).
  async value(sql) {
    const { rows, fields } = await this.query(sql);
    return rows.length && fields.length ? rows[0][fields[0].name] : null;
  }

  end() {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      try { this.socket.end(frame('X', Buffer.alloc(0))); } catch { /* already gone */ }
      setTimeout(() => { this.socket.destroy(); resolve(); }, 1000).unref();
    });
  }
}

// connect({ host='127.0.0.1', port=5432, user, password, database, connectTimeout=5000, applicationName })
function connect(opts = {}) {
  const o = { host: '127.0.0.1', port: 5432, connectTimeout: 5000, ...opts };
  if (!o.user) throw new Error('admin.connect: user is required');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: o.host, port: o.port });
    socket.setNoDelay(true);
    const client = new AdminClient(socket, o);
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      socket.destroy();
      reject(Object.assign(new Error(`admin.connect: timeout after ${o.connectTimeout}ms to ${o.host}:${o.port}`), { code: 'ETIMEDOUT' }));
    }, o.connectTimeout);
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) { socket.destroy(); reject(err); } else resolve(client);
    };
    socket.once('error', (err) => finish(err));
    socket.once('connect', () => client._startup().then(() => finish(null), finish));
    socket.once('close', () => finish(client.fatal || Object.assign(new Error(`connection to ${o.host}:${o.port} closed during startup`), { code: 'ECONNRESET' })));
  });
}

module.exports = { connect, AdminClient };
