// better-sqlite3 builds from source on machines that cannot reach its prebuilt binaries, and
// node-gyp then downloads Node's headers, which fails offline. Node installs that ship their
// headers (Debian's nodejs, the official tarballs) have them at <prefix>/include/node: point
// node-gyp there, so that `pnpm install` works with nothing exported by hand.
const fs = require('node:fs')
const path = require('node:path')

const prefix = path.dirname(path.dirname(process.execPath))
const hasHeaders = fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))

function updateConfig(config) {
  if (!hasHeaders || process.env.npm_config_nodedir) return config
  return { ...config, extraEnv: { ...(config.extraEnv || {}), npm_config_nodedir: prefix } }
}

module.exports = { hooks: { updateConfig } }
