import { flush } from './io'
import { main } from './program'

// A reader that goes away (`stdops task list | head`) is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0)
    throw err
  })
}

const code = await main(process.argv)
// Exit only once stdout and stderr are handed over: a pipe may still hold the output.
await Promise.all([flush(process.stdout), flush(process.stderr)])
process.exit(code)
