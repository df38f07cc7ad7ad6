import { LegacyCode, StdopsError } from '@stdops/core'

export interface Refusal {
  code: number
  message: string
  httpStatus: number
}

/** The one place a thrown error becomes a code and a message; causes of internal errors never leak. */
export function toRefusal(err: unknown, requestId: string): Refusal & { internal: boolean } {
  if (err instanceof StdopsError)
    return { code: err.code, message: err.message, httpStatus: err.httpStatus, internal: false }
  return {
    code: LegacyCode.UNKNOWN_ERROR,
    message: `internal error, see request_id ${requestId}`,
    httpStatus: 200,
    internal: true,
  }
}
