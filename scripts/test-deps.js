'use strict'
// What `npm test` needs besides Rust and Node, installed by the project itself (`pretest`
// runs this): a working iptables, with which the harness's partition() drops a node's packets
// on lo (the chaos and harness tests). test/cluster.js's ensureIptables installs it as root
// with apt-get; elsewhere this says what is missing, and the tests that need it say so too.
// `--strict` (.ci/run) fails when there is none afterwards.

const { ensureIptables } = require('../test/cluster.js')

const ok = ensureIptables((m) => console.log(`test-deps: ${m}`))
if (!ok) {
  console.warn('test-deps: no working iptables; the partition tests need one (as root: apt-get install -y iptables)')
  if (process.argv.includes('--strict')) process.exit(1)
}
