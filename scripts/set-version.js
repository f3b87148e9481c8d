#!/usr/bin/env node
'use strict'
// Sets one version everywhere a release needs it: package.json, npm/*/package.json and the Cargo workspace (Cargo.lock follows with
// `cargo update --workspace`). Usage: node scripts/set-version.js <x.y.z>
const fs = require('node:fs')
const path = require('node:path')
const ROOT = path.join(__dirname, '..')
const version = process.argv[2]
if (!/^\d+\.\d+\.\d+$/.test(version || '')) throw new Error('usage: set-version.js <x.y.z>')
const edit = (file, f) => {
  const p = path.join(ROOT, file)
  const j = JSON.parse(fs.readFileSync(p, 'utf8'))
  f(j)
  fs.writeFileSync(p, JSON.stringify(j, null, 2) + '\n')
}
edit('package.json', (j) => {
  j.version = version
})
for (const d of fs.readdirSync(path.join(ROOT, 'npm'))) edit(`npm/${d}/package.json`, (j) => { j.version = version })
const cargo = path.join(ROOT, 'Cargo.toml')
const text = fs.readFileSync(cargo, 'utf8')
const next = text.replace(/(\[workspace\.package\][^[]*?\nversion = )"[^"]*"/, `$1"${version}"`)
if (next === text && !text.includes(`version = "${version}"`)) throw new Error('no [workspace.package] version in Cargo.toml')
fs.writeFileSync(cargo, next)
console.log(version)
