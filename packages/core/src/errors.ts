/** bk-sops / ESB result codes. */
export const LegacyCode = {
  SUCCESS: 0,
  ESB_COMMON: 1306000,
  COMPONENT_NOT_FOUND: 1306404,
  METHOD_NOT_ALLOWED: 1306405,
  RATE_LIMITED: 1306429,
  REQUEST_PARAM_INVALID: 3540000,
  CONTENT_NOT_EXIST: 3540400,
  INVALID_OPERATION: 3545000,
  UNKNOWN_ERROR: 3599999,
} as const

/** A domain error that carries its legacy code; each API maps it to its reply in one place. */
export class StdopsError extends Error {
  readonly code: number
  readonly httpStatus: number

  constructor(message: string, code: number, httpStatus = 200) {
    super(message)
    this.name = new.target.name
    this.code = code
    this.httpStatus = httpStatus
  }
}

export class ParamInvalidError extends StdopsError {
  constructor(message: string) {
    super(message, LegacyCode.REQUEST_PARAM_INVALID)
  }
}

export class NotFoundError extends StdopsError {
  constructor(message: string) {
    super(message, LegacyCode.CONTENT_NOT_EXIST)
  }
}

export class InvalidOperationError extends StdopsError {
  constructor(message: string) {
    super(message, LegacyCode.INVALID_OPERATION)
  }
}

export class PermissionDeniedError extends StdopsError {
  constructor(message: string) {
    super(message, LegacyCode.UNKNOWN_ERROR)
  }
}

export class AuthenticationError extends StdopsError {
  constructor(message: string) {
    super(message, LegacyCode.ESB_COMMON)
  }
}

export class RateLimitedError extends StdopsError {
  constructor(message: string) {
    super(message, LegacyCode.RATE_LIMITED, 429)
  }
}
