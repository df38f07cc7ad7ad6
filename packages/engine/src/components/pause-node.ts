import { z } from 'zod'
import { defineComponent } from './define'

export const pauseNode = defineComponent({
  code: 'pause_node',
  name: 'Pause (approval point)',
  version: '1.0',
  inputs: z.object({ description: z.string().optional() }),
  outputs: z.object({ callback_data: z.unknown() }),
  // Waits for a node callback (operate_node `callback` or `resume`); no worker is held. Its output
  // `callback_data` is the data of the callback that passed it (bk-sops's key).
  async execute() {
    return { status: 'callback' }
  },
  async schedule(_inputs, ctx) {
    return { status: 'finished', outputs: { callback_data: ctx.callbackData ?? {} } }
  },
})
