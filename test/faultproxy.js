'use strict';
// Fault-injection TCP proxy for the tests: the faults that dropping packets (cluster.partition)
// cannot express. Pure Node, no dependencies.
//
//   const { startProxy } = require('./faultproxy');
//   const p = await startProxy({ target: { host: '127.0.0.1', port }, listenPort: 0 });
//   connect to 127.0.0.1:p.port ...; p.setMode('blackhole'); ...; await p.close();
//
// Modes apply to the connections already open and to new ones:
//   pass       forward both ways (what was held back by another mode goes first, in order)
//   blackhole  accept and read, never forward nor answer: a peer whose kernel is alive and
//              whose process is not. What arrives is held; back in 'pass', it is delivered.
//   reset      every connection is destroyed with a TCP RST; new ones right after accept
//   latency    each chunk is delayed by opts.ms, both directions, order kept
//   drip       opts.bytes bytes forwarded every opts.ms, both directions
// setMode() returns the proxy; p.connections is the number of client connections open.

const net = require('node:net');

const MODES = ['pass', 'blackhole', 'reset', 'latency', 'drip'];
const HIGH_WATER = 4 * 1024 * 1024; // held bytes per direction before reading pauses

function startProxy({ target, listenPort = 0, host = '127.0.0.1' } = {}) {
  if (!target || !target.port) throw new Error('startProxy: target { host, port } is required');
  let mode = 'pass';
  let opts = {};
  const pairs = new Set();

  // One direction of one connection: chunks from `src` queued for `dst`.
  function direction(src, dst) {
    const d = { q: [], bytes: 0, timer: null, dripping: false, paused: false };
    const take = () => {
      const item = d.q.shift();
      if (item.buf) d.bytes -= item.buf.length;
      return item;
    };
    const deliver = (item) => {
      if (dst.destroyed) return;
      if (item.buf) dst.write(item.buf);
      else if (item.end) dst.end();
      else if (item.destroy) dst.destroy();
    };
    d.pump = () => {
      clearTimeout(d.timer);
      d.timer = null;
      if (mode !== 'drip' && d.dripping) { clearInterval(d.drip); d.dripping = false; }
      if (mode === 'pass') {
        while (d.q.length) deliver(take());
      } else if (mode === 'latency') {
        const ms = opts.ms || 0;
        const now = Date.now();
        while (d.q.length && d.q[0].at + ms <= now) deliver(take());
        if (d.q.length) d.timer = setTimeout(d.pump, d.q[0].at + ms - now);
      } else if (mode === 'drip' && !d.dripping) {
        d.dripping = true;
        d.drip = setInterval(() => {
          let budget = Math.max(1, opts.bytes || 1);
          while (d.q.length && budget > 0) {
            const head = d.q[0];
            if (!head.buf) { deliver(take()); continue; } // end / destroy: no bytes
            if (head.buf.length <= budget) { budget -= head.buf.length; deliver(take()); } else {
              deliver({ buf: head.buf.subarray(0, budget) });
              head.buf = head.buf.subarray(budget);
              d.bytes -= budget;
              budget = 0;
            }
          }
          resume();
        }, Math.max(1, opts.ms || 1));
      } // blackhole: hold everything
      resume();
    };
    const resume = () => { if (d.paused && d.bytes < HIGH_WATER) { d.paused = false; src.resume(); } };
    d.push = (item) => {
      item.at = Date.now();
      d.q.push(item);
      if (item.buf) {
        d.bytes += item.buf.length;
        if (d.bytes >= HIGH_WATER && !d.paused) { d.paused = true; src.pause(); }
      }
      if (mode !== 'blackhole') d.pump();
    };
    d.stop = () => { clearTimeout(d.timer); clearInterval(d.drip); d.dripping = false; };
    src.on('data', (buf) => d.push({ buf }));
    src.on('end', () => d.push({ end: true }));
    return d;
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => {});
    if (mode === 'reset') { client.resetAndDestroy(); return; }
    const upstream = net.connect({ host: target.host || '127.0.0.1', port: target.port, allowHalfOpen: true });
    upstream.on('error', () => {});
    const pair = { client, upstream };
    pair.up = direction(client, upstream);
    pair.down = direction(upstream, client);
    pairs.add(pair);
    let closed = 0;
    const onClose = (other, dir) => () => {
      // A side that closed without FIN (reset, error): the other side is torn down too, after
      // what is queued for it, as the mode allows.
      if (++closed === 2) { pairs.delete(pair); pair.up.stop(); pair.down.stop(); return; }
      if (!other.destroyed && !other.writableEnded) dir.push({ destroy: true });
    };
    client.on('close', onClose(upstream, pair.up));
    upstream.on('close', onClose(client, pair.down));
  });

  const reset = (pair) => {
    pair.up.stop();
    pair.down.stop();
    for (const s of [pair.client, pair.upstream]) if (!s.destroyed) s.resetAndDestroy();
    pairs.delete(pair);
  };

  const proxy = {
    port: 0,
    get mode() { return mode; },
    get connections() { return pairs.size; },
    setMode(m, o = {}) {
      if (!MODES.includes(m)) throw new Error(`faultproxy: unknown mode ${m} (${MODES.join(', ')})`);
      if (m === 'latency' && !(o.ms >= 0)) throw new Error('faultproxy: latency needs opts.ms');
      if (m === 'drip' && !(o.bytes > 0 && o.ms > 0)) throw new Error('faultproxy: drip needs opts.bytes and opts.ms');
      const restartDrip = mode === 'drip';
      mode = m;
      opts = { ...o };
      for (const pair of [...pairs]) {
        if (m === 'reset') { reset(pair); continue; }
        for (const d of [pair.up, pair.down]) {
          if (restartDrip) d.stop(); // new drip parameters take effect
          d.pump();
        }
      }
      return proxy;
    },
    close() {
      for (const pair of [...pairs]) {
        pair.up.stop();
        pair.down.stop();
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, host, () => {
      proxy.port = server.address().port;
      resolve(proxy);
    });
  });
}

module.exports = { startProxy };
