'use strict';
// Tests of the cluster harness itself (test/cluster.js + test/admin.js).
//   node --test test/harness.test.js
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { clusterForTests } = require('./cluster');
const admin = require('./admin');

let cluster;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { if (await fn()) return; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(50);
  }
}

function connectAs(i, user, password) {
  const { host, port } = cluster.node(i);
  const conn = cluster.connection(user);
  return admin.connect({ host, port, user, password: password === undefined ? conn.password : password, database: conn.database });
}

async function valueOn(i, sql, user = 'app_scram') {
  const c = await connectAs(i, user);
  try { return await c.value(sql); } finally { await c.end(); }
}

async function assertHealthy() {
  const st = await cluster.status();
  const primaries = st.nodes.filter((n) => n.role === 'primary');
  const standbys = st.nodes.filter((n) => n.role === 'standby');
  assert.equal(primaries.length, 1, JSON.stringify(st));
  assert.equal(standbys.length, 2, JSON.stringify(st));
  assert.equal(st.primary, primaries[0].index);
  assert.equal(cluster.primaryIndex(), st.primary);
  assert.equal(primaries[0].readOnly, false);
  const c = await cluster.admin(st.primary);
  try {
    const { rows } = await c.query('select application_name, state, sync_state from pg_stat_replication order by 1');
    assert.deepEqual(rows.map((r) => r.application_name).sort(), standbys.map((n) => n.name).sort());
    for (const r of rows) {
      assert.equal(r.state, 'streaming');
      assert.ok(['sync', 'quorum'].includes(r.sync_state), `sync_state ${r.sync_state}`);
    }
  } finally { await c.end(); }
  return st;
}

before(async () => { cluster = await clusterForTests(); });
after(async () => { if (cluster) await cluster.destroy(); });

test('status: one primary, two synchronous streaming standbys', async () => {
  const st = await assertHealthy();
  assert.equal(st.nodes.length, 3);
  assert.ok(cluster.version() >= 12);
  const conn = cluster.connection();
  assert.equal(conn.hosts.length, 3);
  assert.equal(conn.user, 'app_scram');
  assert.equal(conn.database, 'hyperion');
});

test('auth: scram, md5, trust; wrong password is 28P01', async () => {
  const p = cluster.primaryIndex();
  for (const user of ['app_scram', 'app_md5', 'app_trust']) {
    assert.equal(await valueOn(p, 'select current_user', user), user);
  }
  // the md5 role really is stored as md5, the scram role as SCRAM
  const c = await cluster.admin(p);
  try {
    const { rows } = await c.query("select rolname, left(rolpassword, 3) as kind from pg_authid where rolname like 'app_%' order by 1");
    assert.deepEqual(rows, [{ rolname: 'app_md5', kind: 'md5' }, { rolname: 'app_scram', kind: 'SCR' }, { rolname: 'app_trust', kind: null }]);
  } finally { await c.end(); }
  for (const user of ['app_scram', 'app_md5']) {
    await assert.rejects(connectAs(p, user, 'wrong'), (e) => e.code === '28P01');
  }
  if (cluster.ipv6) {
    const c6 = await admin.connect({ host: '::1', port: cluster.node(p).port, user: 'app_scram', password: 'scram-pass', database: 'hyperion' });
    assert.equal(await c6.value('select 1'), '1');
    await c6.end();
  }
});

test('fence: an existing session gets 25006 and sees transaction_read_only=on', async () => {
  const p = cluster.primaryIndex();
  const s = await connectAs(p, 'app_scram');
  try {
    await s.query('drop table if exists fence_t');
    await s.query('create table fence_t (id int)');
    await s.query('insert into fence_t values (1)');
    await cluster.fence(p);
    await assert.rejects(s.query('insert into fence_t values (2)'), (e) => e.code === '25006' && e.severity === 'ERROR');
    assert.equal(await s.value('show transaction_read_only'), 'on');
    assert.equal((await cluster.status()).nodes[p].readOnly, true);
    await cluster.unfence(p);
    await s.query('insert into fence_t values (3)'); // the same session is writable again
    assert.equal(await s.value('select count(*) from fence_t'), '2');
  } finally { await s.end(); }
});

test('failover(stop): acknowledged write survives, new primary writable, other standby follows', async (t) => {
  const old = cluster.primaryIndex();
  const s = await connectAs(old, 'app_scram');
  await s.query('drop table if exists fo_t');
  await s.query('create table fo_t (id int primary key, v text)');
  assert.equal(await s.value("show synchronous_commit"), 'on');
  const r = await s.query("insert into fo_t values (1, 'before failover')");
  assert.equal(r.command, 'INSERT 0 1');
  await s.end();

  const t0 = Date.now();
  const { oldPrimary, newPrimary } = await cluster.failover({ mode: 'stop' });
  const ms = Date.now() - t0;
  assert.equal(oldPrimary, old);
  assert.notEqual(newPrimary, old);
  assert.equal(cluster.primaryIndex(), newPrimary);
  t.diagnostic(`failover took ${ms}ms`);

  assert.equal(await valueOn(newPrimary, 'select v from fo_t where id = 1'), 'before failover');
  const w = await connectAs(newPrimary, 'app_md5');
  try {
    assert.equal((await w.query("insert into fo_t values (2, 'after failover')")).command, 'INSERT 0 1');
  } finally { await w.end(); }

  const other = [0, 1, 2].find((k) => k !== old && k !== newPrimary);
  await waitFor('row 2 on the other standby', async () => (await valueOn(other, 'select v from fo_t where id = 2')) === 'after failover');
  const st = await cluster.status();
  assert.equal(st.nodes[old].role, 'down');
  assert.equal(st.nodes[other].role, 'standby');
  assert.ok(st.replication.some((x) => x.name === `node${other}` && x.state === 'streaming' && ['sync', 'quorum'].includes(x.sync_state)));
});

test('heal: back to one primary and two streaming standbys', async () => {
  const p = cluster.primaryIndex();
  await cluster.heal();
  const st = await assertHealthy();
  assert.equal(st.primary, p);
  // every node has all the data
  for (const k of [0, 1, 2]) {
    await waitFor(`rows on node${k}`, async () => (await valueOn(k, 'select count(*) from fo_t')) === '2');
  }
});

test('failover(fence) + heal', async () => {
  const old = cluster.primaryIndex();
  const { oldPrimary, newPrimary } = await cluster.failover({ mode: 'fence' });
  assert.equal(oldPrimary, old);
  assert.notEqual(newPrimary, old);
  const st = await cluster.status();
  assert.equal(st.nodes[old].role, 'primary'); // still running, but fenced
  assert.equal(st.nodes[old].readOnly, true);
  assert.equal(st.primary, newPrimary);
  await assert.rejects(valueOn(old, "insert into fo_t values (3, 'x') returning id"), (e) => e.code === '25006');
  assert.equal(await valueOn(newPrimary, "insert into fo_t values (3, 'fenced failover') returning id"), '3');
  await cluster.heal();
  await assertHealthy();
  await waitFor('row 3 on the old primary', async () => (await valueOn(old, 'select v from fo_t where id = 3')) === 'fenced failover');
});

test('a test process killed outright leaves no cluster behind', async () => {
  // SIGKILL skips every exit handler: only the harness's watchdog can clean up.
  const { spawnSync } = require('node:child_process');
  const fs = require('node:fs');
  const script = `
    const { createCluster } = require(${JSON.stringify(require.resolve('./cluster'))});
    createCluster({ nodes: 1 }).then((c) => {
      console.log(JSON.stringify({ dir: c.baseDir, pid: c._pid(0) }));
      process.kill(process.pid, 'SIGKILL');
    });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const { dir, pid } = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.ok(pid > 0);
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  await waitFor('the postmaster to stop and the directory to go', () => !alive() && !fs.existsSync(dir), 20000);
});
