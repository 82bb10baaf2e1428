/**
 * Errors of the native runtime. Every failure carries a stable `code` that
 * callers (and tests) match on, and a message that says what to do.
 */
export type RuntimeErrorCode =
  | 'ERR_MODEL_NOT_FOUND'
  | 'ERR_MODEL_INVALID'
  | 'ERR_UNSUPPORTED_OPS'
  | 'ERR_INTERPRETER'
  | 'ERR_ALLOCATE'
  | 'ERR_INPUT_COUNT'
  | 'ERR_INPUT_INDEX'
  | 'ERR_INPUT_SIZE'
  | 'ERR_INPUT_DTYPE'
  | 'ERR_INPUT_TYPE'
  | 'ERR_RESIZE'
  | 'ERR_INVOKE'
  | 'ERR_DISPOSED'
  | 'ERR_ADDON_MISSING'
  | 'ERR_DEVICE_SPEC'
  | 'ERR_EDGETPU_LIBRARY'
  | 'ERR_EDGETPU_NO_DEVICE'
  | 'ERR_EDGETPU_DEVICE_NOT_FOUND'
  | 'ERR_EDGETPU_DELEGATE'
  | 'ERR_EDGETPU_CRASHED'
  | 'ERR_EDGETPU_UNAVAILABLE';

export class RuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  constructor(code: RuntimeErrorCode, message: string) {
    super(message);
    this.name = 'RuntimeError';
    this.code = code;
  }
}

/** Native errors arrive as plain Errors with a `code`; give them our class. */
export function asRuntimeError(error: unknown): RuntimeError {
  if (error instanceof RuntimeError) return error;
  const err = error as { code?: string; message?: string };
  const code = (typeof err?.code === 'string' ? err.code : 'ERR_INVOKE') as RuntimeErrorCode;
  return new RuntimeError(code, err?.message ?? String(error));
}
