import { readFile } from 'node:fs/promises'
import { CategorySchema, ParamInvalidError, StdopsError, TEMPLATE_CATEGORIES } from '@stdops/core'
import { Command, InvalidArgumentError } from 'commander'
import { bootstrapDemo } from './bootstrap'
import { DEFAULT_CONSOLE_DIR } from './console'
import { createLogger, createRuntime, type Runtime, testHooksFromPreload, warnAboutSecretKey } from './deps'
import { readEnv } from './env'
import { stopTracing } from './ops/tracing'
import { createOpsServer, createServer } from './server'
import * as admin from './services/admin'
import { addCommonTemplate } from './services/templates'

/** Prints a one-line reason and exits non-zero: 2 for bad input, 1 otherwise. */
function die(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`error: ${message.split('\n')[0]}\n`)
  process.exit(err instanceof StdopsError ? 2 : 1)
}

const int = (what: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${what} must be a positive integer`)
  return Number(v)
}

const DURATION = /^(\d+)(s|m|h|d)$/
const duration = (v: string) => {
  const m = DURATION.exec(v)
  if (!m) throw new InvalidArgumentError('expected a duration such as 30m, 12h or 7d')
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
}

async function withRuntime<T>(fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const env = readEnv()
  const rt = await createRuntime(
    env,
    createLogger({
      LOG_LEVEL: env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL,
      LOG_FORMAT: env.LOG_FORMAT,
    }),
  )
  try {
    return await fn(rt)
  } finally {
    await rt.db.close()
  }
}

const print = (line: string) => process.stdout.write(`${line}\n`)

/** Runs until SIGTERM/SIGINT, then drains (bounded) and exits 0. */
async function serve(opts: { api: boolean; worker: boolean }) {
  const env = readEnv()
  const logger = createLogger(env)
  warnAboutSecretKey(env, logger)
  const rt = await createRuntime(env, logger, testHooksFromPreload())
  const consoleDir = env.STDOPS_CONSOLE_DIR ?? DEFAULT_CONSOLE_DIR
  const server = opts.api ? createServer(rt.deps, { consoleDir }) : null
  const consoleUrl = `${env.STDOPS_PUBLIC_URL?.replace(/\/$/, '') ?? `http://127.0.0.1:${env.PORT}`}/`
  if (opts.api && env.STDOPS_DEMO === '1') {
    const banner = await bootstrapDemo(rt.deps, env.PORT, consoleUrl)
    if (banner) print(banner)
  }
  if (opts.worker) await rt.deps.engine.startWorker()
  const ops = env.STDOPS_OPS_PORT === undefined ? null : createOpsServer(rt.deps)
  if (ops) {
    const address = await ops.start({ port: env.STDOPS_OPS_PORT!, host: env.HOST })
    logger.info({ address }, 'operations endpoints serving')
  }
  if (server) {
    const address = await server.start({ port: env.PORT, host: env.HOST })
    logger.info({ address, worker: opts.worker, console: consoleUrl }, 'stdops serving')
  } else {
    logger.info('stdops worker running')
  }
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping: finishing requests in flight, then draining nodes')
    try {
      // Requests first (readiness turns 503 at once), then the worker's nodes, then the pool.
      await server?.stop({ drainMs: env.STDOPS_DRAIN_MS })
      await ops?.stop({ drainMs: env.STDOPS_DRAIN_MS })
      await rt.close()
      await stopTracing()
      process.exit(0)
    } catch (err) {
      logger.error({ err }, 'error while stopping')
      process.exit(1)
    }
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

const program = new Command('stdops-server')
  .description('stdops server: the API, the workers, and the admin commands')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))

program
  .command('serve')
  .description('serve the API (and run workers, unless --no-worker)')
  .option('--no-worker', 'run the API alone')
  .action((o: { worker: boolean }) => serve({ api: true, worker: o.worker }).catch(die))

program
  .command('worker')
  .description('run workers alone (no HTTP)')
  .action(() => serve({ api: false, worker: true }).catch(die))

program
  .command('migrate')
  .description('apply pending migrations and exit')
  .action(() =>
    withRuntime(async () => {
      print('migrations up to date')
    }).catch(die),
  )

const adminCmd = program.command('admin').description('bootstrap apps, users, projects and roles')

adminCmd
  .command('app')
  .description('manage apps')
  .command('add <code>')
  .option('--secret <secret>', 'the app secret (default: generate one and print it)')
  .option('--trusted', 'skip permission checks for this app (bk-sops app whitelist)', false)
  .option('--user-skip', 'let this app name users with bk_username', false)
  .action((code: string, o: { secret?: string; trusted: boolean; userSkip: boolean }) =>
    withRuntime(async ({ deps }) => {
      const r = await admin.addApp(deps, code, { secret: o.secret, trusted: o.trusted, userSkip: o.userSkip })
      print(r.created ? `app ${code} added` : `app ${code} updated`)
      if (r.secret) print(`secret: ${r.secret}`)
    }).catch(die),
  )

adminCmd
  .command('user')
  .description('manage users')
  .command('add <username>')
  .option('--token <token>', 'the bk_token to issue (default: generate one for a new user and print it)')
  .action((username: string, o: { token?: string }) =>
    withRuntime(async ({ deps }) => {
      const r = await admin.addUser(deps, username, { token: o.token })
      print(r.created ? `user ${username} added` : `user ${username} exists`)
      if (r.token) print(`token: ${r.token}`)
    }).catch(die),
  )

const tokenCmd = adminCmd.command('token').description('issue and revoke bk_tokens')
tokenCmd
  .command('add <username>')
  .option('--token <token>', 'the bk_token to issue (default: generate one and print it)')
  .option('--expires-in <duration>', 'expire after this long (30m, 12h, 7d)', duration)
  .action((username: string, o: { token?: string; expiresIn?: number }) =>
    withRuntime(async ({ deps }) => {
      const r = await admin.addToken(deps, username, { token: o.token, expiresInMs: o.expiresIn })
      print(`token issued to ${username}`)
      if (r.token) print(`token: ${r.token}`)
    }).catch(die),
  )
tokenCmd.command('revoke <token>').action((token: string) =>
  withRuntime(async ({ deps }) => {
    const r = await admin.revokeToken(deps, token)
    print(r.revoked ? 'token revoked' : 'token was already revoked')
  }).catch(die),
)

adminCmd
  .command('project')
  .description('manage projects')
  .command('add')
  .requiredOption('--name <name>', 'project name')
  .requiredOption('--biz-id <bk_biz_id>', 'the CMDB business id', int('--biz-id'))
  .action((o: { name: string; bizId: number }) =>
    withRuntime(async ({ deps }) => {
      const r = await admin.addProject(deps, o.name, o.bizId)
      print(String(r.id))
    }).catch(die),
  )

adminCmd
  .command('grant <username>')
  .description('give a user a role in a project')
  .requiredOption('--project <id>', "the project's own id", int('--project'))
  .requiredOption('--role <role>', 'viewer | operator | admin')
  .action((username: string, o: { project: number; role: string }) =>
    withRuntime(async ({ deps }) => {
      const r = await admin.grant(deps, username, o.project, o.role)
      print(`${r.username} is ${r.role} in project ${r.projectId}`)
    }).catch(die),
  )

adminCmd
  .command('template')
  .description('manage common templates (shared by every project)')
  .command('add-common')
  .requiredOption('--file <path>', 'a JSON file: a pipeline tree, or an object with a pipeline_tree key')
  .requiredOption('--name <name>', 'the template name (1-100 characters)')
  .option('--description <text>', 'a description', '')
  .option(
    '--category <category>',
    "bk-sops's category (OpsTools, MonitorAlarm, ConfManage, DevTools, EnterpriseIT, OfficeApp, Other)",
    'Other',
  )
  .action((o: { file: string; name: string; description: string; category: string }) =>
    withRuntime(async ({ deps }) => {
      const tree = await readTreeFile(o.file)
      const category = CategorySchema.safeParse(o.category)
      if (!category.success)
        throw new ParamInvalidError(`--category must be one of ${TEMPLATE_CATEGORIES.join(', ')}`)
      const r = await addCommonTemplate(deps, {
        name: o.name,
        pipeline_tree: tree,
        description: o.description,
        category: category.data,
      })
      print(String(r.id))
    }).catch(die),
  )

/** The tree in a file: the JSON object itself, or its `pipeline_tree` (a template as get_template_info answers it). */
async function readTreeFile(path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ParamInvalidError(`cannot read --file ${path}: ${(err as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ParamInvalidError(`--file ${path} is not JSON`)
  }
  const wrapped = parsed as { pipeline_tree?: unknown }
  return wrapped && typeof wrapped === 'object' && wrapped.pipeline_tree !== undefined
    ? wrapped.pipeline_tree
    : parsed
}

program.parseAsync(process.argv).catch(die)
