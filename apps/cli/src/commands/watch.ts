import { stripVTControlCharacters } from 'node:util'
import { EXIT } from '../errors'
import type { Io } from '../io'
import { printJsonLine } from '../output/json'
import { layoutOf, nodeLabel, type StatusTree, type TreeLayout } from '../output/status'
import {
  applyEvent,
  eventError,
  isFinal,
  newWatchModel,
  renderEventLine,
  renderWatch,
  type TaskEvent,
  type WatchModel,
} from '../output/watch'
import { type CommandContext, connect, parseId } from './context'

/** Redraws a block of lines in place: cursor up over the last drawing, clear, write. */
class LiveBlock {
  private lines = 0
  private last = ''
  constructor(private readonly io: Io) {}

  draw(text: string) {
    if (text === this.last) return
    this.last = text
    const columns = this.io.out.columns ?? 0
    const lines = text.replace(/\n$/, '').split('\n')
    const fitted =
      columns > 0
        ? lines.map((l) =>
            stripVTControlCharacters(l).length > columns
              ? stripVTControlCharacters(l).slice(0, columns - 1)
              : l,
          )
        : lines
    const up = this.lines > 0 ? `\x1b[${this.lines}F\x1b[J` : ''
    this.io.out.write(`${up}${fitted.join('\n')}\n`)
    this.lines = fitted.length
  }
}

type Outcome = { code: number; message?: string }

/**
 * `task watch`: follows `task.events` until the final state. On a TTY the node table is redrawn
 * in place; otherwise each event is one line (one JSON object with --json). Exit 0 when the
 * task finishes, 1 when it is revoked or a node fails and holds the task (displayed FAILED).
 */
export async function taskWatch(ctx: CommandContext, id: string, o: { json?: boolean }): Promise<number> {
  const taskId = parseId(id, 'task id')
  const { client, project } = connect(ctx)
  const io = ctx.io
  const ref = { ...project(), task_id: taskId }
  const detail = await client.task.detail.query(ref)
  const layout: TreeLayout = layoutOf(detail.pipeline_tree)
  const model: WatchModel = newWatchModel(taskId, detail.name)
  const live = io.out.isTTY === true && !o.json
  const block = live ? new LiveBlock(io) : null
  let dirty = true
  const redraw = () => {
    if (block) block.draw(renderWatch(io.color.out, model, layout, Date.now()))
    dirty = false
  }
  const ticker = block
    ? setInterval(() => {
        if (dirty || model.startedAt !== null) redraw()
      }, 250)
    : null

  /** A failed node holds a task (the root stays RUNNING): ask the status tree whether this one does. */
  const failure = async (e: TaskEvent): Promise<Outcome | null> => {
    const tree = (await client.task.status.query(ref)) as unknown as StatusTree
    if (tree.state !== 'FAILED') return null
    const failed = Object.values(tree.children).filter((n) => n.state === 'FAILED')
    const lines = failed.map(
      (n) =>
        `node ${n.id} (${nodeLabel(n, layout)}) failed: ${n.ex_data ?? eventError(e) ?? 'no error message'}`,
    )
    return { code: EXIT.failure, message: `task ${taskId} failed\n${lines.join('\n')}` }
  }

  const outcome = await new Promise<Outcome>((resolve, reject) => {
    let settled = false
    let final: Outcome | null = null
    let chain = Promise.resolve()
    let sub: { unsubscribe(): void } | null = null
    const settle = (r: Outcome | Error) => {
      if (settled) return
      settled = true
      sub?.unsubscribe()
      if (r instanceof Error) reject(r)
      else resolve(r)
    }
    const handle = async (e: TaskEvent) => {
      if (settled || e.seq <= model.lastSeq) return
      applyEvent(model, e)
      dirty = true
      if (o.json) printJsonLine(io, e)
      else if (!block) io.out.write(renderEventLine(io.color.out, e, layout))
      if (isFinal(e)) {
        // The stream ends after this event and what committed with it (a revoke's nodes): settle then.
        final =
          e.state === 'FINISHED'
            ? { code: EXIT.ok }
            : { code: EXIT.failure, message: `task ${taskId} was ${e.state.toLowerCase()}` }
      } else if (e.type === 'node_state' && e.state === 'FAILED') {
        const failed = await failure(e)
        if (failed) settle(failed)
      }
    }
    const subscribe = () => {
      sub = client.task.events.subscribe(
        { ...ref, ...(model.lastSeq > 0 ? { lastEventId: String(model.lastSeq) } : {}) },
        {
          onData: (tracked) => {
            chain = chain.then(() => handle(tracked.data)).catch((err: unknown) => settle(err as Error))
          },
          onError: (err) => settle(err),
          // The server ends a stream only after the final event (also called when we unsubscribe);
          // should one end early (a server stopping), follow again from the last event seen.
          onComplete: () => {
            void chain.then(() => {
              if (settled) return
              if (final) settle(final)
              else setTimeout(subscribe, 500)
            })
          },
          onConnectionStateChange: (state) => {
            if (state.state === 'connecting' && state.error && !o.json) {
              io.err.write(`connection lost (${state.error.message}); reconnecting…\n`)
            }
          },
        },
      )
    }
    subscribe()
  }).finally(() => {
    if (ticker) clearInterval(ticker)
    redraw()
  })
  if (!block && !o.json && outcome.code === EXIT.ok) io.err.write(`task ${taskId} finished\n`)
  if (outcome.message) io.err.write(`${io.color.err.red(outcome.message)}\n`)
  return outcome.code
}
