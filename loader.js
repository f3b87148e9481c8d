'use strict'
// Finds the native addon for this machine. A published install has no .node file of its
// own: the binary comes in one of the per-platform packages (npm/<platform>/package.json),
// listed as optionalDependencies so that npm installs only the one whose os/cpu/libc fit.
// A developer checkout has a local build next to this file (`npm run build`). When neither
// loads, the error names the platform this process runs on and every place that was tried,
// so a user on an unsupported libc or architecture sees why rather than "Cannot find module".

const fs = require('node:fs')
const path = require('node:path')

const PACKAGE = 'hyperiondb-client'
// The targets that have a per-platform package (napi's platform-arch-abi names).
const SUPPORTED = ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'linux-arm64-musl']

// glibc or musl, as the running process sees it: Node's own report names the glibc it runs
// on (`glibcVersionRuntime`) and has no such field under musl.
function libc() {
  if (process.platform !== 'linux') return null
  try {
    const header = process.report.getReport().header
    if (header.glibcVersionRuntime) return { abi: 'gnu', describe: `glibc ${header.glibcVersionRuntime}` }
  } catch {
    // process.report disabled: fall back to the dynamic loader on disk.
  }
  try {
    if (fs.readdirSync('/lib').some((f) => f.startsWith('ld-musl-'))) return { abi: 'musl', describe: 'musl' }
  } catch {
    // no /lib: below
  }
  return { abi: 'musl', describe: 'musl (no glibc found)' }
}

function describeError(e) {
  if (e && e.code === 'MODULE_NOT_FOUND') return 'not installed'
  return String((e && e.message) || e).split('\n')[0]
}

function load() {
  const c = libc()
  const platform = c ? `${process.platform}-${process.arch}-${c.abi}` : `${process.platform}-${process.arch}`
  const where = `${process.platform} ${process.arch}${c ? ` (${c.describe})` : ''}`
  const tried = []

  // The platform package must be the one released with this version: it holds the other
  // half of the same build (the JS here and the Rust there speak one internal API).
  const pkg = `${PACKAGE}-${platform}`
  try {
    const version = require(`${pkg}/package.json`).version
    const own = require('./package.json').version
    if (version !== own) throw new Error(`version ${version}, but ${PACKAGE} is ${own}`)
    return require(pkg)
  } catch (e) {
    tried.push(`the package ${pkg}: ${describeError(e)}`)
  }

  const local = path.join(__dirname, `${PACKAGE}.${platform}.node`)
  if (fs.existsSync(local)) {
    try {
      return require(local)
    } catch (e) {
      tried.push(`the local build ${local}: ${describeError(e)}`)
    }
  } else {
    tried.push(`the local build ${local}: no such file`)
  }

  const hint = SUPPORTED.includes(platform)
    ? `Reinstall without --omit=optional / --no-optional so that npm installs ${pkg}, or build from source with \`npm run build\` (needs Rust).`
    : `There is no prebuilt binary for ${platform} (prebuilt: ${SUPPORTED.join(', ')}); build from source with \`npm run build\` (needs Rust).`
  const err = new Error(`hyperiondb-client: no native addon loads on ${where}, platform ${platform}. Tried:\n  - ${tried.join('\n  - ')}\n${hint}`)
  err.code = 'ERR_HYPERIONDB_NATIVE_NOT_FOUND'
  throw err
}

module.exports = load()
