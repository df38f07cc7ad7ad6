import { accessSync, constants } from 'node:fs'

/**
 * Fails the run at once, saying what to do, when the browser is not there: the suite uses
 * Debian's Chromium (a test tool's own browser download cannot work on these machines).
 */
export default function globalSetup() {
  const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
  try {
    accessSync(path, constants.X_OK)
  } catch {
    throw new Error(
      `no Chromium at ${path}: install Debian's (apt-get install -y chromium), or set CHROMIUM_PATH to another build`,
    )
  }
}
