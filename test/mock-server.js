'use strict'
// A scripted PostgreSQL backend for what no real server sends (a value we cannot decode in
// the middle of a large result). It speaks just enough of protocol 3.0: trust startup as
// PostgreSQL 17 reports it, then every extended-protocol statement is answered with the
// one-column text result `rows(sql)` returns (an array of Buffers, one value per row), and
// every simple query with `SELECT 0`.

const net = require('node:net')

function frame(tag, body) {
  const out = Buffer.alloc(5 + body.length)
  out[0] = tag.charCodeAt(0)
  out.writeUInt32BE(4 + body.length, 1)
  body.copy(out, 5)
  return out
}
const cstr = (s) => Buffer.from(`${s}\0`)
const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b }
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b }
const ready = () => frame('Z', Buffer.from('I'))

// An SSLRequest (8 bytes: length 8, code 80877103): what a client sends before its startup
// message when it would like TLS. A server without TLS answers 'N'.
const isSslRequest = (buf) => buf.length >= 8 && buf.readUInt32BE(0) === 8 && buf.readUInt32BE(4) === 80877103

// A text column of a RowDescription: name, table oid, column, type oid (text), size,
// modifier, format (text).
const column = (name) => Buffer.concat([cstr(name), u32(0), u16(0), u32(25), u16(0xffff), u32(0xffffffff), u16(0)])
const rowDescription = (...names) => frame('T', Buffer.concat([u16(names.length), ...names.map(column)]))
// One text value (a Buffer or a string).
const dataRow = (v) => frame('D', Buffer.concat([u16(1), u32(Buffer.byteLength(v)), Buffer.from(v)]))

/** Starts the mock on a loopback port; resolves to `{ port, close() }`. */
function mockServer(rows) {
  const sockets = new Set()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let started = false
    let sql = ''
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      const out = []
      for (;;) {
        if (!started) {
          if (buf.length < 4 || buf.length < buf.readUInt32BE(0)) break
          if (isSslRequest(buf)) { // no TLS here: 'N', then the client sends its startup
            buf = buf.subarray(8)
            out.push(Buffer.from('N'))
            continue
          }
          buf = buf.subarray(buf.readUInt32BE(0))
          started = true
          out.push(frame('R', u32(0)))
          for (const [k, v] of [['server_version', '17.7'], ['server_encoding', 'UTF8'], ['client_encoding', 'UTF8'],
            ['integer_datetimes', 'on'], ['standard_conforming_strings', 'on'], ['default_transaction_read_only', 'off'],
            ['in_hot_standby', 'off']]) out.push(frame('S', Buffer.concat([cstr(k), cstr(v)])))
          out.push(frame('K', Buffer.concat([u32(4242), u32(1)])), ready())
          continue
        }
        if (buf.length < 5 || buf.length < 1 + buf.readUInt32BE(1)) break
        const tag = String.fromCharCode(buf[0])
        const body = buf.subarray(5, 1 + buf.readUInt32BE(1))
        buf = buf.subarray(1 + buf.readUInt32BE(1))
        switch (tag) {
          case 'P': // Parse: statement name, then the text
            sql = body.subarray(body.indexOf(0) + 1, body.indexOf(0, body.indexOf(0) + 1)).toString()
            out.push(frame('1', Buffer.alloc(0)))
            break
          case 'D': // Describe (statement): no parameters, one text column
            out.push(frame('t', u16(0)), rowDescription('v'))
            break
          case 'B':
            out.push(frame('2', Buffer.alloc(0)))
            break
          case 'E': {
            const values = rows(sql)
            for (const v of values) out.push(dataRow(v))
            out.push(frame('C', cstr(`SELECT ${values.length}`)))
            break
          }
          case 'S':
            out.push(ready())
            break
          case 'Q':
            out.push(frame('C', cstr('SELECT 0')), ready())
            break
          case 'X':
            socket.end()
            return
          default:
            out.push(frame('E', Buffer.concat([cstr('SERROR'), cstr('C0A000'), cstr(`Mmock: unexpected ${tag}`), Buffer.from([0])])), ready())
        }
      }
      if (out.length) socket.write(Buffer.concat(out))
    })
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      close() {
        for (const s of sockets) s.destroy()
        return new Promise((r) => server.close(r))
      },
    }))
  })
}

// The message builders, for tests that script a backend of their own.
const be = { frame, cstr, u16, u32, ready, column, rowDescription, dataRow, isSslRequest }

module.exports = { mockServer, be }
