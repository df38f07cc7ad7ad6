// A deployment's own component, registered with STDOPS_COMPONENTS=apps/api/examples/components/sha256.mjs
// (see docs/components.md). The default export is one component module, or an array of them.
import { createHash } from 'node:crypto'
import { z } from 'zod'

export default {
  code: 'sha256_text',
  name: 'SHA-256 of a text',
  version: '1.0',
  // Validated before execute: a bad input fails the node with a message naming the field.
  inputs: z.object({
    text: z.string(),
    rounds: z.coerce.number().int().min(1).max(1_000_000).default(1),
  }),
  // Validated after: these keys can feed `component_outputs` constants and gateway conditions.
  outputs: z.object({ digest: z.string() }),
  async execute({ text, rounds }, ctx) {
    let digest = text
    for (let i = 0; i < rounds; i++) {
      // Honour revoke: a long computation checks the signal between steps.
      if (ctx.signal.aborted) return { status: 'failed', error: 'aborted' }
      digest = createHash('sha256').update(digest).digest('hex')
    }
    return { status: 'finished', outputs: { digest } }
  },
}
