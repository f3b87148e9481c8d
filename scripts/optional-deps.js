#!/usr/bin/env node
'use strict'
// The main package's optionalDependencies on its platform packages (npm/<platform>), each at
// the package's own version. They are written into package.json only to publish (release.yml,
// release:dry), as napi-rs's prepublish does: in the repository, a platform package of an
// unreleased version cannot be in package-lock.json, and `npm ci` refuses a package.json and
// lock that disagree. Usage: node scripts/optional-deps.js --write (edits package.json).
const fs = require('node:fs')
const path = require('node:path')
const ROOT = path.join(__dirname, '..')

function optionalDependencies(root = ROOT) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  const deps = {}
  for (const p of fs.readdirSync(path.join(root, 'npm')).sort()) {
    deps[`${pkg.name}-${p}`] = pkg.version
  }
  return deps
}

if (require.main === module) {
  if (process.argv[2] !== '--write') throw new Error('usage: optional-deps.js --write')
  const file = path.join(ROOT, 'package.json')
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8'))
  pkg.optionalDependencies = optionalDependencies()
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n')
  console.log(JSON.stringify(pkg.optionalDependencies))
}

module.exports = { optionalDependencies }
