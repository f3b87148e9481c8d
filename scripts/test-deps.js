'use strict'
// What `npm test` needs besides Rust and Node, installed by the project itself (`pretest`
// runs this): iptables, with which the harness's partition() drops a node's packets on lo
// (test/cluster.js; the chaos and harness tests). Only as root on Linux with apt-get, as
// .ci/run does it; elsewhere it says what is missing and the tests that need it say so too.
// Nothing happens when iptables is there.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')

function onPath(bin) {
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/sbin', '/sbin'])
  return dirs.some((d) => d && fs.existsSync(`${d}/${bin}`))
}

function main() {
  if (process.platform !== 'linux' || onPath('iptables')) return
  const root = typeof process.getuid === 'function' && process.getuid() === 0
  if (!root || !onPath('apt-get')) {
    console.warn('test-deps: iptables is not installed; the partition tests need it (as root: apt-get install -y iptables)')
    return
  }
  console.log('test-deps: installing iptables (apt-get install -y iptables) for the partition tests')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300000 })
    execFileSync('apt-get', ['install', '-y', '-qq', 'iptables'], { env, stdio: 'ignore', timeout: 300000 })
  } catch (e) {
    console.warn(`test-deps: could not install iptables (${e.message.split('\n')[0]}); the partition tests will fail`)
  }
}

main()
