import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import type { CommandContext } from './commands/context'
import { login } from './commands/login'
import { type NodeActionOptions, type NodeVerb, nodeAction, nodeLog, nodeShow } from './commands/node'
import {
  clockedCreate,
  clockedDelete,
  clockedList,
  periodicCreate,
  periodicList,
  periodicSetConstants,
  periodicSetCron,
  periodicSetEnabled,
  periodicShow,
} from './commands/schedules'
import { taskCreate, taskList, taskOperate, taskRecords, taskStatus } from './commands/task'
import { templateCreate, templateList, templateShow } from './commands/template'
import { taskWatch } from './commands/watch'
import { type GlobalFlags, parseProjectId, SCOPES } from './config'
import { EXIT, reportError } from './errors'
import { type Io, processIo } from './io'

const projectArg = (v: string) => {
  try {
    return parseProjectId(v)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
}

const collect = (value: string, previous: string[]) => [...previous, value]

/** The `stdops` program; `exit` receives the code once the command has run. */
export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const ctxOf = (cmd: Command): CommandContext => ({ io, flags: cmd.optsWithGlobals<GlobalFlags>() })
  /** Runs a command body; a thrown error is printed once, here, and becomes the exit code. */
  const run =
    <A extends unknown[]>(body: (ctx: CommandContext, ...args: A) => Promise<unknown>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command
      const ctx = ctxOf(cmd)
      try {
        const code = await body(ctx, ...(args.slice(0, -1) as A))
        setExit(typeof code === 'number' ? code : EXIT.ok)
      } catch (err) {
        setExit(reportError(err, io, ctx.url))
      }
    }

  const program = new Command('stdops')
    .description('Steer stdops tasks from a terminal: templates, tasks, and a live view of a run.')
    .addOption(
      new Option('--project <bk_biz_id>', 'project to work in (its bk_biz_id; see --scope)').argParser(
        projectArg,
      ),
    )
    .addOption(
      new Option('--scope <scope>', 'what --project names: a CMDB business id or a project id').choices(
        SCOPES,
      ),
    )
    .option('--url <url>', 'server URL (default: $STDOPS_URL, then the profile)')
    .option('--app-code <code>', 'app code (default: $STDOPS_APP_CODE, then the profile)')
    .option('--username <name>', 'act as this user, for apps allowed to name users (instead of a bk_token)')
    .option('--profile <name>', 'profile to read or write (default: $STDOPS_PROFILE, then "default")')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
      outputError: (s, write) => write(io.color.err.red(s)),
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
Configuration: flags, then STDOPS_URL, STDOPS_APP_CODE, STDOPS_APP_SECRET, STDOPS_TOKEN or
STDOPS_USERNAME, STDOPS_PROJECT, STDOPS_SCOPE, then the profile \`stdops login\` saved.
Exit status: 0 ok, 1 failure (a refusal, a failed or revoked task), 2 usage or authentication error.`,
    )

  program
    .command('login')
    .description(
      'save server, app and user credentials in a profile (secrets are prompted or read from stdin/env)',
    )
    .option('--no-verify', 'save without checking the credentials against the server')
    .action(run((ctx, o: { verify: boolean }) => login(ctx, o)))

  const template = program.command('template').description('pipeline templates of the project')
  template
    .command('create')
    .description('create a template from a pipeline tree (JSON file, or - for stdin)')
    .requiredOption('-f, --file <tree.json>', 'the pipeline tree')
    .requiredOption('--name <name>', 'template name')
    .option('--description <text>', 'description')
    .option('--json', 'print JSON')
    .action(
      run((ctx, o: { file: string; name: string; description?: string; json?: boolean }) =>
        templateCreate(ctx, o),
      ),
    )
  template
    .command('list')
    .description("list the project's templates")
    .option('--json', 'print JSON')
    .action(run((ctx, o: { json?: boolean }) => templateList(ctx, o)))
  template
    .command('show <id>')
    .description('show a template: its fields, nodes and constants')
    .option('--json', 'print JSON')
    .action(run((ctx, id: string, o: { json?: boolean }) => templateShow(ctx, id, o)))

  const task = program.command('task').description('tasks: create, operate, inspect and watch')
  task
    .command('create')
    .description('create a task from a template (not started)')
    .requiredOption('--template <id>', 'template id')
    .requiredOption('--name <name>', 'task name')
    .option('--constant <key=value>', 'set a constant (repeatable); the key with or without ${}', collect, [])
    .option('--description <text>', 'description')
    .option('--json', 'print JSON')
    .action(
      run(
        (
          ctx,
          o: { template: string; name: string; constant: string[]; description?: string; json?: boolean },
        ) => taskCreate(ctx, o),
      ),
    )
  for (const action of ['start', 'resume', 'revoke'] as const) {
    task
      .command(`${action} <id>`)
      .description(`${action} a task`)
      .option('--json', 'print JSON')
      .action(run((ctx, id: string, o: { json?: boolean }) => taskOperate(ctx, action, id, o)))
  }
  task
    .command('pause <id>')
    .description('pause a task: no new node starts; running nodes finish')
    .option('--wait', 'return only when no node is running any more')
    .option('--timeout <seconds>', 'with --wait: give up (exit 1) after this long')
    .option('--json', 'print JSON')
    .action(
      run((ctx, id: string, o: { wait?: boolean; timeout?: string; json?: boolean }) =>
        taskOperate(ctx, 'pause', id, o),
      ),
    )
  task
    .command('status <id>')
    .description('the node tree with states, durations and the failed node’s error')
    .option('--json', 'print JSON (the status tree)')
    .action(run((ctx, id: string, o: { json?: boolean }) => taskStatus(ctx, id, o)))
  task
    .command('list')
    .description("list the project's tasks, newest first")
    .option('--keyword <text>', 'name contains')
    .option('--started', 'only tasks that have started')
    .option('--no-started', 'only tasks not started')
    .option('--finished', 'only FINISHED tasks')
    .option('--no-finished', 'only tasks not FINISHED')
    .option('--executor <user>', 'started by this user')
    .option('--template <id>', 'created from this template')
    .option('--created-after <time>', 'created at or after "YYYY-MM-DD[ HH:MM:SS]" (server time zone)')
    .option('--created-before <time>', 'created at or before "YYYY-MM-DD[ HH:MM:SS]"')
    .option('--offset <n>', 'skip this many')
    .option('--limit <n>', 'at most this many (1-200, default 100)')
    .option('--json', 'print JSON ({ list, count })')
    .action(run((ctx, o: Parameters<typeof taskList>[1]) => taskList(ctx, o)))
  task
    .command('records <id>')
    .description("the task's operate records")
    .option('--node <node_id>', 'only records of this node')
    .option('--json', 'print JSON')
    .action(run((ctx, id: string, o: { node?: string; json?: boolean }) => taskRecords(ctx, id, o)))
  task
    .command('watch <id>')
    .description('follow a task live until it ends: exit 0 FINISHED, 1 FAILED or REVOKED')
    .option('--json', 'print each event as one JSON line')
    .action(run((ctx, id: string, o: { json?: boolean }) => taskWatch(ctx, id, o)))

  const node = program
    .command('node')
    .description(
      'one node of a task: show it, read its log, and retry, skip, fail, call back, approve, pause or resume it',
    )
  node
    .command('show <task> <node>')
    .description("the node's state, inputs, outputs, error and earlier attempts")
    .option('--json', 'print JSON')
    .action(run((ctx, t: string, n: string, o: { json?: boolean }) => nodeShow(ctx, t, n, o)))
  node
    .command('log <task> <node>')
    .description("an attempt's log: the component's lines and the engine's (the newest attempt by default)")
    .option('--history <id>', 'the attempt (a history id from `node show`)')
    .option('--json', 'print JSON ({ log, history_id, page })')
    .action(
      run((ctx, t: string, n: string, o: { history?: string; json?: boolean }) => nodeLog(ctx, t, n, o)),
    )
  const verbs: Array<[NodeVerb, string, (c: Command) => Command]> = [
    [
      'retry',
      'run a FAILED node again (optionally with corrected inputs); --subprocess: a subprocess from its start',
      (c) =>
        c
          .option(
            '--input <key=value>',
            'replace an input for this and later attempts (repeatable; text)',
            collect,
            [],
          )
          .option('--subprocess', 'the node is a subprocess: run its child tree again (retry_subprocess)'),
    ],
    [
      'skip',
      'pass a FAILED node and go on (a gateway: along --flow, or --flows with --converge)',
      (c) =>
        c
          .option('--flow <flow_id>', 'an exclusive gateway: the flow to take')
          .option('--flows <flow_ids>', 'a conditional parallel gateway: the flows to fork, comma-separated')
          .option('--converge <id>', 'with --flows: the gateway’s converge gateway'),
    ],
    ['fail', 'force a RUNNING node to fail: its component is aborted (forced_fail)', (c) => c],
    [
      'callback',
      'deliver data to a node waiting for a callback',
      (c) =>
        c
          .option('--data <json>', 'the callback data: a JSON object, or @file.json')
          .option('--version <n>', 'refuse unless this is still the node’s version'),
    ],
    [
      'approve',
      'pass an approval point (pause_node): a callback, with --data if given',
      (c) => c.option('--data <json>', 'the callback data: a JSON object, or @file.json'),
    ],
    [
      'pause',
      'hold a node that has not started: when the run reaches it, it waits; --subprocess: pause a running subprocess',
      (c) =>
        c.option('--subprocess', 'the node is a subprocess: nothing new starts inside it (pause_subproc)'),
    ],
    [
      'resume',
      'release a held node (or pass a waiting approval point); --subprocess: resume a paused subprocess',
      (c) => c.option('--subprocess', 'the node is a paused subprocess (resume_subproc)'),
    ],
  ]
  for (const [verb, description, options] of verbs) {
    options(node.command(`${verb} <task> <node>`).description(description))
      .option('--json', 'print JSON')
      .action(run((ctx, t: string, n: string, o: NodeActionOptions) => nodeAction(ctx, verb, t, n, o)))
  }

  const periodic = program
    .command('periodic')
    .description('periodic tasks: a template run on a cron (server time zone), created disabled')
  periodic
    .command('list')
    .description("list the project's periodic tasks")
    .option('--json', 'print JSON')
    .action(run((ctx, o: { json?: boolean }) => periodicList(ctx, o)))
  periodic
    .command('show <id>')
    .description('show a periodic task: its cron, next due times and constants')
    .option('--json', 'print JSON')
    .action(run((ctx, id: string, o: { json?: boolean }) => periodicShow(ctx, id, o)))
  periodic
    .command('create')
    .description('create a periodic task (disabled until `periodic enable`)')
    .requiredOption('--template <id>', 'template id')
    .requiredOption('--name <name>', 'name (each task is named <name>_<YYYYmmddHHMMSS>)')
    .requiredOption('--cron <expr>', 'cron: "minute hour day_of_month month day_of_week", e.g. "*/5 * * * *"')
    .option('--constant <key=value>', 'set a constant (repeatable); the key with or without ${}', collect, [])
    .option('--json', 'print JSON')
    .action(
      run((ctx, o: { template: string; name: string; cron: string; constant: string[]; json?: boolean }) =>
        periodicCreate(ctx, o),
      ),
    )
  for (const [name, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    periodic
      .command(`${name} <id>`)
      .description(enabled ? 'start firing on the cron' : 'stop firing (tasks already created run on)')
      .option('--json', 'print JSON')
      .action(run((ctx, id: string, o: { json?: boolean }) => periodicSetEnabled(ctx, id, enabled, o)))
  }
  periodic
    .command('set-cron <id> <cron>')
    .description('change the cron ("minute hour day_of_month month day_of_week"); applies at once')
    .option('--json', 'print JSON')
    .action(run((ctx, id: string, cron: string, o: { json?: boolean }) => periodicSetCron(ctx, id, cron, o)))
  periodic
    .command('set-constants <id>')
    .description('change constants of the tree every firing runs')
    .option('--constant <key=value>', 'a constant to set (repeatable; at least one)', collect, [])
    .option('--json', 'print JSON (every constant)')
    .action(
      run((ctx, id: string, o: { constant: string[]; json?: boolean }) => periodicSetConstants(ctx, id, o)),
    )

  const clocked = program
    .command('clocked')
    .description('clocked tasks: a template run once at a planned time')
  clocked
    .command('list')
    .description("list the project's clocked tasks, newest first")
    .addOption(
      new Option('--state <state>', 'only in this state').choices(['not_started', 'started', 'failed']),
    )
    .option('--name <text>', 'name contains')
    .option('--json', 'print JSON ({ list, count })')
    .action(run((ctx, o: { state?: string; name?: string; json?: boolean }) => clockedList(ctx, o)))
  clocked
    .command('create')
    .description('create a task that is created and started once, at --at')
    .requiredOption('--template <id>', 'template id')
    .requiredOption('--name <name>', 'the task’s name')
    .requiredOption('--at <time>', '"YYYY-MM-DD HH:MM:SS", with a UTC offset (+0800) or in the server’s zone')
    .option('--constant <key=value>', 'set a constant (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .action(
      run((ctx, o: { template: string; name: string; at: string; constant: string[]; json?: boolean }) =>
        clockedCreate(ctx, o),
      ),
    )
  clocked
    .command('delete <id>')
    .description('delete a clocked task (one that already fired keeps its task)')
    .option('--json', 'print JSON')
    .action(run((ctx, id: string, o: { json?: boolean }) => clockedDelete(ctx, id, o)))

  return program
}

export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  let code: number = EXIT.ok
  const program = buildProgram(io, (c) => {
    code = c
  })
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every other parse problem is a usage error.
      code = err.exitCode === 0 ? EXIT.ok : EXIT.usage
    } else {
      code = reportError(err, io)
    }
  }
  return code
}
