/**
 * The one error type of the engine: a message that says what to do, and a
 * stable `code` that callers, flows and tests match on. Domains subclass it
 * to narrow the codes (GalleryError, ImageError, EnrolError); the native
 * runtime's RuntimeError has the same shape.
 */
export class CodedError<Code extends string = string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Anything with a string `code` starting with ERR_: ours, the runtime's, or Node's own coded errors. */
export function errorCodeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** An error as one line: its message and, when it has one, its code. */
export function errorMessage(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  const code = errorCodeOf(error);
  return `${typeof message === 'string' ? message : String(error)}${code ? ` [${code}]` : ''}`;
}
