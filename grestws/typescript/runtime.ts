/* The grestws client runtime: the wire protocol of grestws (docs/protocol.md) over the
 * standard WebSocket global (browsers, Node 22+, Deno, Bun), with no dependencies.
 *
 * The generated API files build on it: each has a typed client class whose `outgoing`
 * calls the server and whose `handlers` answer the server. Everything here is exported
 * again by every API file, so an application imports from its API file only.
 */

// -- errors ------------------------------------------------------------------------------

/** One problem found by validation (the data of a VALIDATION_ERROR). */
export interface Issue {
  /** Dot-separated wire field names, "" for the top level. */
  path: string;
  code: string;
  message: string;
}

/** When a refused call may be tried again (the data of a TOO_MANY_REQUESTS). */
export interface RetryAfter {
  retryAfterMs: number;
}

/** The context of an error envelope; every field is optional. */
export interface ErrorContext {
  displayMessage?: string;
  /** Milliseconds since the epoch. */
  timestamp?: number;
  /** An opaque id that lets the server's operator find the logged details. */
  ref?: string;
}

/** The result envelope of an `s` frame (and of `x`). */
export interface ResultEnvelope {
  success: boolean;
  type: string;
  statusCode?: number;
  data?: unknown;
  context?: ErrorContext;
}

/** The base class of every error the runtime raises. */
export class GrestwsError extends Error {
  constructor(message: string) {
    super(message);
    Object.setPrototypeOf(this, new.target.prototype);
    this.name = new.target.name;
  }
}

/** What an ApiError is made with, besides its message. */
export interface ApiErrorOptions<D> {
  data?: D | undefined;
  ref?: string | undefined;
  timestamp?: number | undefined;
  /** The wire type, for an error of a type no class stands for. */
  type?: string | undefined;
  statusCode?: number | undefined;
}

/** An error that travels on the wire as an error envelope: thrown by a handler to answer
 * the server with it, and received as the class of its `type` (the declared class when the
 * method declares it, else the standard one, else ApiError itself). */
export class ApiError<D = unknown> extends GrestwsError {
  static readonly TYPE: string = "SERVER_ERROR";
  static readonly STATUS_CODE: number = 500;
  /** The wire type, e.g. "ROOM_FULL". */
  readonly type: string;
  /** The HTTP-like status code of the envelope. */
  readonly statusCode: number;
  /** The typed payload, null when the error has none. */
  readonly data: D;
  /** The displayMessage of the envelope, if any. */
  readonly displayMessage: string | undefined;
  readonly ref: string | undefined;
  /** Milliseconds since the epoch when the peer raised it. */
  readonly timestamp: number | undefined;
  /** True when the error was received from the peer. */
  remote = false;

  constructor(message?: string, options: ApiErrorOptions<D> = {}) {
    const cls = new.target as unknown as { TYPE: string; STATUS_CODE: number };
    const type = options.type ?? cls.TYPE;
    const statusCode = options.statusCode ?? cls.STATUS_CODE;
    super(message ? `${type} (${statusCode}): ${message}` : `${type} (${statusCode})`);
    this.type = type;
    this.statusCode = statusCode;
    this.data = (options.data ?? null) as D;
    this.displayMessage = message;
    this.ref = options.ref;
    this.timestamp = options.timestamp;
  }
}

/** An ApiError class: what the runtime makes a received error of. */
export interface ApiErrorClass {
  new (message?: string, options?: ApiErrorOptions<never>): ApiError<unknown>;
  readonly TYPE: string;
  readonly STATUS_CODE: number;
}

export class ValidationError extends ApiError<Issue[]> {
  static override readonly TYPE = "VALIDATION_ERROR";
  static override readonly STATUS_CODE = 422;
  declare readonly type: "VALIDATION_ERROR";
}
export class NotAuthorizedError extends ApiError<unknown> {
  static override readonly TYPE = "NOT_AUTHORIZED";
  static override readonly STATUS_CODE = 401;
  declare readonly type: "NOT_AUTHORIZED";
}
export class ForbiddenError extends ApiError<unknown> {
  static override readonly TYPE = "FORBIDDEN";
  static override readonly STATUS_CODE = 403;
  declare readonly type: "FORBIDDEN";
}
export class BadRequestError extends ApiError<unknown> {
  static override readonly TYPE = "BAD_REQUEST";
  static override readonly STATUS_CODE = 400;
  declare readonly type: "BAD_REQUEST";
}
export class NotFoundError extends ApiError<unknown> {
  static override readonly TYPE = "NOT_FOUND";
  static override readonly STATUS_CODE = 404;
  declare readonly type: "NOT_FOUND";
}
export class ExistsError extends ApiError<unknown> {
  static override readonly TYPE = "EXISTS";
  static override readonly STATUS_CODE = 409;
  declare readonly type: "EXISTS";
}
export class PayloadTooLargeError extends ApiError<unknown> {
  static override readonly TYPE = "PAYLOAD_TOO_LARGE";
  static override readonly STATUS_CODE = 413;
  declare readonly type: "PAYLOAD_TOO_LARGE";
}
export class RouteNotFoundError extends ApiError<unknown> {
  static override readonly TYPE = "ROUTE_NOT_FOUND";
  static override readonly STATUS_CODE = 404;
  declare readonly type: "ROUTE_NOT_FOUND";
}
export class TooManyRequestsError extends ApiError<RetryAfter | null> {
  static override readonly TYPE = "TOO_MANY_REQUESTS";
  static override readonly STATUS_CODE = 429;
  declare readonly type: "TOO_MANY_REQUESTS";
}
export class ServerError extends ApiError<unknown> {
  static override readonly TYPE = "SERVER_ERROR";
  static override readonly STATUS_CODE = 500;
  declare readonly type: "SERVER_ERROR";
}
/** The server is shutting down and did not run the call; the client sends it again on
 * the next connection by itself. */
export class UnavailableError extends ApiError<unknown> {
  static override readonly TYPE = "UNAVAILABLE";
  static override readonly STATUS_CODE = 503;
  declare readonly type: "UNAVAILABLE";
}

/** The standard error classes, by wire type. */
export const STANDARD_ERRORS: Readonly<Record<string, ApiErrorClass>> = {
  VALIDATION_ERROR: ValidationError,
  NOT_AUTHORIZED: NotAuthorizedError,
  FORBIDDEN: ForbiddenError,
  BAD_REQUEST: BadRequestError,
  NOT_FOUND: NotFoundError,
  EXISTS: ExistsError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  ROUTE_NOT_FOUND: RouteNotFoundError,
  TOO_MANY_REQUESTS: TooManyRequestsError,
  SERVER_ERROR: ServerError,
  UNAVAILABLE: UnavailableError,
};

/** The errors any call may end with, whatever its method declares. */
export type ImplicitError =
  | ValidationError
  | ServerError
  | RouteNotFoundError
  | NotAuthorizedError
  | ForbiddenError
  | TooManyRequestsError
  | UnavailableError;

const IMPLICIT_TYPES: ReadonlySet<string> = new Set([
  "VALIDATION_ERROR",
  "SERVER_ERROR",
  "ROUTE_NOT_FOUND",
  "NOT_AUTHORIZED",
  "FORBIDDEN",
  "TOO_MANY_REQUESTS",
]);

/** The socket could not be opened: refused, unreachable, an HTTP error at the upgrade. */
export class ConnectError extends GrestwsError {}

/** The connection is closed, or closed while the call waited. */
export class ConnectionClosedError extends GrestwsError {
  /** The close code, or null when the connection closed without one. */
  readonly code: number | null;
  readonly reason: string;
  constructor(code: number | null, reason = "") {
    super(code === null ? `connection closed${reason ? `: ${reason}` : ""}` : `connection closed with code ${code}${reason ? `: ${reason}` : ""}`);
    this.code = code;
    this.reason = reason;
  }
}

/** The connection closed while a request was in flight: the server may or may not have
 * run it. */
export class ConnectionLostError extends ConnectionClosedError {}

/** No answer within the request's timeout (there is no cancel frame: the server may
 * still run it). */
export class RequestTimeoutError extends GrestwsError {
  readonly path: string;
  readonly timeoutMs: number | null;
  constructor(path: string, timeoutMs: number | null) {
    super(`${path}: no response within ${timeoutMs === null ? "ever" : `${timeoutMs / 1000} s`}`);
    this.path = path;
    this.timeoutMs = timeoutMs;
  }
}

/** The server neither accepted nor refused the handshake in time. */
export class HandshakeTimeoutError extends GrestwsError {}

/** A frame that does not follow the protocol: dropped, and reported to onError. */
export class FrameError extends GrestwsError {}

/** An operation the client's state does not allow (connect() twice, say). */
export class InvalidStateError extends GrestwsError {}

// -- the contract, as the API files describe it ---------------------------------------

/** One method of a contract. */
export interface MethodInfo {
  /** The member name in the API file (the wire name). */
  readonly name: string;
  /** The routing key, `<Contract>.<wireName>`. */
  readonly path: string;
  /** A request (one answer) or a fire-and-forget call. */
  readonly request: boolean;
  /** Whether it takes an argument. */
  readonly input: boolean;
  /** Whether it answers with a value. */
  readonly result: boolean;
  /** Whether a client may send it again after a drop. */
  readonly idempotent: boolean;
  /** The wire types of the errors it declares. */
  readonly errors: readonly string[];
}

/** A contract at its URL path. */
export interface SchemaInfo {
  readonly contract: string;
  readonly path: string;
  /** What the client calls on the server. */
  readonly outgoing: readonly MethodInfo[];
  /** What the server calls on the client. */
  readonly incoming: readonly MethodInfo[];
  /** The contract's declared error classes, by wire type. */
  readonly errors: Readonly<Record<string, ApiErrorClass>>;
}

function errorClass(type: string, declared: readonly string[] | null, schema: SchemaInfo): ApiErrorClass | undefined {
  if (declared === null || declared.includes(type)) {
    const cls = schema.errors[type];
    if (cls !== undefined) {
      return cls;
    }
  }
  return STANDARD_ERRORS[type];
}

/** The error an error envelope stands for. */
function errorFrom(envelope: ResultEnvelope, declared: readonly string[] | null, schema: SchemaInfo): ApiError {
  const cls = errorClass(envelope.type, declared, schema);
  const context = envelope.context ?? {};
  const options: ApiErrorOptions<never> = {
    data: (envelope.data ?? null) as never,
    ref: context.ref,
    timestamp: context.timestamp,
  };
  let error: ApiError;
  if (cls === undefined) {
    error = new ApiError(context.displayMessage, { ...options, type: envelope.type, statusCode: envelope.statusCode ?? 500 });
  } else {
    error = new cls(context.displayMessage, options);
  }
  error.remote = true;
  return error;
}

// -- the platform ----------------------------------------------------------------------

/** What the runtime needs of a WebSocket: the standard one has it, and so has the `ws`
 * package's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket class: the global one by default. */
export type WebSocketClass = new (url: string) => WebSocketLike;

interface Platform {
  WebSocket?: WebSocketClass;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  crypto?: { randomUUID?(): string };
}

const platform = globalThis as unknown as Platform;

function now(): number {
  return Date.now();
}

function later(ms: number, callback: () => void): () => void {
  const handle = platform.setTimeout(callback, Math.max(0, Math.min(ms, 2_147_483_647)));
  return () => platform.clearTimeout(handle);
}

function sleep(ms: number, wake?: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const cancel = later(ms, resolve);
    void wake?.then(() => {
      cancel();
      resolve();
    });
  });
}

function newRef(): string {
  const uuid = platform.crypto?.randomUUID?.();
  if (uuid !== undefined) {
    return uuid.replace(/-/g, "").slice(0, 16);
  }
  return Array.from({ length: 16 }, () => Math.floor(Math.random() * 16).toString(16)).join("");
}

function describe(error: unknown): GrestwsError {
  if (error instanceof GrestwsError) {
    return error;
  }
  return new GrestwsError(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}

// -- frames ----------------------------------------------------------------------------

const CLOSE_NORMAL = 1000;
const CLOSE_SERVICE_RESTART = 1012;
const RESTART_REASON = "Server restarting";
const CLOSE_INVALID_QUERY = 4000;
const RECOVERY_HEADER = "grestws-recovery";
const MAX_NODES = 256;
const MAX_ID = Number.MAX_SAFE_INTEGER;
const ID = /^[1-9][0-9]{0,15}$/;

interface Frame {
  readonly type: string;
  readonly path: string;
  readonly id: string;
  readonly data: string;
}

function splitFrame(text: string): Frame {
  const first = text.indexOf(":");
  const second = first < 0 ? -1 : text.indexOf(":", first + 1);
  const third = second < 0 ? -1 : text.indexOf(":", second + 1);
  if (third < 0) {
    throw new FrameError("expected <type>:<path>:<id>:<data>");
  }
  const type = text.slice(0, first);
  if (type.length !== 1 || !"hkxmrspo".includes(type)) {
    throw new FrameError(`unknown frame type ${JSON.stringify(type.slice(0, 8))}`);
  }
  const frame = { type, path: text.slice(first + 1, second), id: text.slice(second + 1, third), data: text.slice(third + 1) };
  if ("rsm".includes(type) && (!frame.path || frame.path.length > 256)) {
    throw new FrameError(`'${type}' frame without a valid path`);
  }
  if ("rs".includes(type) && (!ID.test(frame.id) || Number(frame.id) > MAX_ID)) {
    throw new FrameError(`'${type}' frame needs a decimal id from 1 upward`);
  }
  return frame;
}

function encodeOk(result: boolean, value: unknown): string {
  if (!result || value === undefined) {
    return '{"success":true,"type":"OK"}';
  }
  return `{"success":true,"type":"OK","data":${JSON.stringify(value)}}`;
}

function encodeError(error: ApiError): string {
  const envelope: ResultEnvelope = { success: false, type: error.type, statusCode: error.statusCode };
  if (error.data !== null && error.data !== undefined) {
    envelope.data = error.data;
  }
  const context: ErrorContext = { timestamp: now() };
  if (error.displayMessage) {
    context.displayMessage = error.displayMessage;
  }
  if (error.ref) {
    context.ref = error.ref;
  }
  envelope.context = context;
  return JSON.stringify(envelope);
}

// -- recovery ----------------------------------------------------------------------------

/** The last position the client got from each node, to skip what arrives twice. */
class Positions {
  last = new Map<string, number>();

  /** Note a position (an `m` id field); false when the push is a duplicate. */
  take(raw: string): boolean {
    const dot = raw.lastIndexOf(".");
    const node = raw.slice(0, dot);
    const digits = raw.slice(dot + 1);
    if (dot <= 0 || node.length > 64 || !/^[0-9]{1,16}$/.test(digits) || !/^[\x20-\x7e]+$/.test(node)) {
      return true; // a malformed position is taken: the push is not lost
    }
    const seq = Number(digits);
    const last = this.last.get(node) ?? 0;
    this.last.delete(node);
    if (seq <= last) {
      this.last.set(node, last);
      return false;
    }
    this.last.set(node, seq);
    if (this.last.size > MAX_NODES) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) {
        this.last.delete(oldest);
      }
    }
    return true;
  }

  snapshot(): Record<string, number> {
    const positions: Record<string, number> = {};
    this.last.forEach((seq, node) => (positions[node] = seq));
    return positions;
  }
}

/** The client's side of recovery: the session the server gave, and its positions. */
class Resumption {
  session: string | null = null;
  positions = new Positions();

  offer(): string {
    if (this.session === null) {
      return "{}";
    }
    const positions = this.positions.snapshot();
    return JSON.stringify(Object.keys(positions).length ? { session: this.session, positions } : { session: this.session });
  }

  /** What the `k` data says of recovery: null (nothing kept, or a new session), else
   * whether the client got everything it missed. */
  accepted(data: unknown): boolean | null {
    const recovery = typeof data === "object" && data !== null ? (data as { recovery?: unknown }).recovery : undefined;
    if (typeof recovery !== "object" || recovery === null || typeof (recovery as { session?: unknown }).session !== "string") {
      this.session = null;
      return null;
    }
    const { session, recovered } = recovery as { session: string; recovered?: unknown };
    if (recovered !== true) {
      this.positions = new Positions();
    }
    this.session = session;
    return recovered === true ? true : recovered === false ? false : null;
  }
}

// -- one connection ----------------------------------------------------------------------

interface Pending {
  readonly method: MethodInfo;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly cancelTimer: () => void;
}

type Handlers = Record<string, ((...args: unknown[]) => unknown) | undefined>;

interface SessionOptions {
  readonly schema: SchemaInfo;
  readonly handlers: () => Handlers | undefined;
  readonly report: (error: GrestwsError) => void;
  readonly pingIntervalMs: number | null;
  readonly pingTimeoutMs: number | null;
}

/** One open, accepted connection: its requests, the server's calls, liveness. */
class Session {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly incoming: Map<string, MethodInfo>;
  closed = false;
  closeCode: number | null = null;
  closeReason = "";
  positions: Positions | null = null;
  onClosed: (code: number | null, reason: string) => void = () => undefined;
  private lastSeen = now();
  private pingedAt: number | null = null;
  private cancelWatch: () => void = () => undefined;

  constructor(
    private readonly ws: WebSocketLike,
    private readonly options: SessionOptions,
  ) {
    this.incoming = new Map(options.schema.incoming.map((method) => [method.path, method]));
    const interval = options.pingIntervalMs;
    if (interval !== null && interval > 0) {
      this.cancelWatch = later(interval, () => this.watch());
    }
  }

  /** The liveness watch: any frame counts; silence for the interval sends `p`, and
   * nothing at all within the timeout after it drops the connection. */
  private watch(): void {
    const interval = this.options.pingIntervalMs ?? 0;
    const timeout = this.options.pingTimeoutMs;
    const at = now();
    if (this.pingedAt !== null && this.lastSeen < this.pingedAt) {
      this.drop(1006, "keepalive ping timeout");
      return;
    }
    this.pingedAt = null;
    const idleUntil = this.lastSeen + interval;
    if (at < idleUntil) {
      this.cancelWatch = later(idleUntil - at, () => this.watch());
      return;
    }
    this.write("p:::");
    if (timeout === null) {
      this.cancelWatch = later(interval, () => this.watch());
      return;
    }
    this.pingedAt = at;
    this.cancelWatch = later(Math.max(idleUntil + timeout - at, Math.min(timeout, interval)), () => this.watch());
  }

  private write(frame: string): void {
    if (this.closed) {
      throw new ConnectionClosedError(this.closeCode, this.closeReason);
    }
    try {
      this.ws.send(frame);
    } catch (error) {
      throw new ConnectionClosedError(this.closeCode, `cannot send: ${describe(error).message}`);
    }
  }

  get idle(): boolean {
    return this.pending.size === 0 && this.inFlight === 0;
  }

  /** Resolves once no request is pending either way. */
  waitIdle(): Promise<void> {
    return this.idle ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.idle) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((wake) => wake());
    }
  }

  request(method: MethodInfo, arg: unknown, timeoutMs: number | null): Promise<unknown> {
    const id = this.nextId++;
    const data = method.input ? JSON.stringify(arg ?? null) : "";
    return new Promise((resolve, reject) => {
      try {
        this.write(`r:${method.path}:${id}:${data}`);
      } catch (error) {
        reject(error);
        return;
      }
      const cancelTimer =
        timeoutMs === null
          ? () => undefined
          : later(timeoutMs, () => {
              if (this.pending.delete(id)) {
                reject(new RequestTimeoutError(method.path, timeoutMs));
                this.checkIdle();
              }
            });
      this.pending.set(id, { method, resolve, reject, cancelTimer });
    });
  }

  notify(method: MethodInfo, arg: unknown): void {
    this.write(`m:${method.path}::${method.input ? JSON.stringify(arg ?? null) : ""}`);
  }

  /** Handle one frame of the server. */
  receive(raw: unknown): void {
    if (this.closed) {
      return;
    }
    this.lastSeen = now();
    let frame: Frame;
    try {
      frame = splitFrame(typeof raw === "string" ? raw : String(raw));
      if (frame.type === "m" && frame.id && this.positions === null) {
        throw new FrameError("'m' frame must not carry an id");
      }
    } catch (error) {
      this.options.report(describe(error));
      return;
    }
    switch (frame.type) {
      case "s":
        this.answered(frame);
        break;
      case "r":
        void this.serve(frame, Number(frame.id));
        break;
      case "m":
        if (this.positions !== null && frame.id && !this.positions.take(frame.id)) {
          return; // a replayed push that arrived already
        }
        void this.serve(frame, null);
        break;
      case "p":
        try {
          this.write("o:::");
        } catch {
          // closing: nothing to answer on
        }
        break;
      default:
      // o frames only prove liveness; h k x after the handshake mean nothing.
    }
  }

  private answered(frame: Frame): void {
    const id = Number(frame.id);
    const call = this.pending.get(id);
    if (call === undefined) {
      return; // a late answer after a timeout
    }
    this.pending.delete(id);
    call.cancelTimer();
    let envelope: ResultEnvelope;
    try {
      envelope = JSON.parse(frame.data) as ResultEnvelope;
      if (typeof envelope !== "object" || envelope === null || typeof envelope.success !== "boolean" || typeof envelope.type !== "string") {
        throw new TypeError("not an envelope");
      }
    } catch {
      call.reject(
        new ValidationError(`${call.method.path}: the response is not a result envelope`, {
          data: [{ path: "", code: "invalid_value", message: "Not a result envelope" }],
        }),
      );
      this.checkIdle();
      return;
    }
    if (envelope.success) {
      call.resolve(call.method.result ? (envelope.data ?? null) : undefined);
    } else {
      call.reject(errorFrom(envelope, call.method.errors, this.options.schema));
    }
    this.checkIdle();
  }

  private async serve(frame: Frame, id: number | null): Promise<void> {
    const method = this.incoming.get(frame.path);
    const handlers = this.options.handlers();
    const handler = method === undefined ? undefined : handlers?.[method.name];
    if (method === undefined || handler === undefined || handlers === undefined) {
      const missing = new RouteNotFoundError(`Route not found: ${frame.path}`);
      this.refuse(frame.path, id, missing);
      return;
    }
    let arg: unknown;
    if (method.input) {
      try {
        arg = JSON.parse(frame.data);
      } catch {
        const issue = { path: "", code: "invalid_json", message: "Invalid JSON" };
        this.refuse(frame.path, id, new ValidationError("Invalid input", { data: [issue] }));
        return;
      }
    }
    this.inFlight++;
    try {
      const value = await (method.input ? handler.call(handlers, arg) : handler.call(handlers));
      if (id !== null) {
        this.answer(frame.path, id, encodeOk(method.result, value));
      }
    } catch (error) {
      const declared = error instanceof ApiError && (method.errors.includes(error.type) || IMPLICIT_TYPES.has(error.type));
      if (!declared) {
        const ref = newRef();
        const failure = describe(error);
        failure.message = `${frame.path} failed (ref ${ref}): ${failure.message}`;
        this.options.report(failure);
        if (id !== null) {
          this.answer(frame.path, id, encodeError(new ServerError(undefined, { ref })));
        }
      } else if (id !== null) {
        this.answer(frame.path, id, encodeError(error));
      } else {
        this.options.report(error);
      }
    } finally {
      this.inFlight--;
      this.checkIdle();
    }
  }

  private refuse(path: string, id: number | null, error: ApiError): void {
    if (id === null) {
      error.message = `dropped a message to ${path}: ${error.message}`;
      this.options.report(error);
    } else {
      this.answer(path, id, encodeError(error));
    }
  }

  private answer(path: string, id: number, envelope: string): void {
    try {
      this.write(`s:${path}:${id}:${envelope}`);
    } catch {
      // the connection closed while the handler ran: the server's call failed there
    }
  }

  /** Close with `code` (1000, or 3000-4999) and end the session at once. */
  close(code: number = CLOSE_NORMAL, reason = ""): void {
    try {
      this.ws.close(code, reason);
    } catch {
      // closed already
    }
    this.closedWith(code, reason);
  }

  /** Drop the connection at once (a dead peer), reporting `code`. */
  drop(code: number, reason: string): void {
    try {
      this.ws.close();
    } catch {
      // closed already
    }
    this.closedWith(code, reason);
  }

  /** The connection is closed: every pending request fails at once. */
  closedWith(code: number | null, reason: string): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.closeCode = code;
    this.closeReason = reason;
    this.cancelWatch();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const call of pending) {
      call.cancelTimer();
      call.reject(new ConnectionLostError(code, reason));
    }
    this.checkIdle();
    this.onClosed(code, reason);
  }
}

// -- the client ----------------------------------------------------------------------------

/** Handshake headers, sent in the `h` frame. */
export type Headers = Readonly<Record<string, string>>;

/** Handshake headers, or a function giving them (a token provider), called again for
 * every connection. */
export type HeadersOption = Headers | (() => Headers | Promise<Headers>);

/** How the client reconnects after a drop. */
export interface ReconnectOptions {
  /** The cap of the first pause (500 ms); the n-th pause is drawn uniformly between 0
   * and min(maxDelayMs, initialDelayMs * multiplier ** n): full jitter. */
  initialDelayMs?: number;
  /** The largest cap (30000 ms). */
  maxDelayMs?: number;
  /** How the cap grows (2). */
  multiplier?: number;
  /** Attempts in a row before the client gives up (null: never). */
  maxAttempts?: number | null;
  /** After a 1012 (the server restarting), the first attempt waits a random time below
   * this many ms instead of none, so that a server's clients come back spread over it
   * (0, the default: at once). */
  restartSpreadMs?: number;
  /** Whether an attempt that failed with this error is worth another one (default: not
   * after NOT_AUTHORIZED, FORBIDDEN or VALIDATION_ERROR at the handshake). */
  retry?: (error: unknown) => boolean;
  /** Whether a connection that closed with this code (null: none) is worth reconnecting
   * (default: not after 1000, 1003, 1007, 1008, 4000, 4001). */
  retryClose?: (code: number | null) => boolean;
  /** A number in [0, 1) for the jitter (Math.random). */
  random?: () => number;
}

/** The default rule for a failed attempt. */
export function retryAfterError(error: unknown): boolean {
  return !(error instanceof NotAuthorizedError || error instanceof ForbiddenError || error instanceof ValidationError);
}

const FINAL_CLOSES: ReadonlySet<number | null> = new Set([1000, 1003, 1007, 1008, 4000, 4001]);

/** The default rule for a drop. */
export function retryAfterClose(code: number | null): boolean {
  return !FINAL_CLOSES.has(code);
}

interface Policy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  readonly maxAttempts: number | null;
  readonly restartSpreadMs: number;
  readonly retry: (error: unknown) => boolean;
  readonly retryClose: (code: number | null) => boolean;
  readonly random: () => number;
}

function policyOf(options: ReconnectOptions): Policy {
  const policy: Policy = {
    initialDelayMs: options.initialDelayMs ?? 500,
    maxDelayMs: options.maxDelayMs ?? 30_000,
    multiplier: options.multiplier ?? 2,
    maxAttempts: options.maxAttempts ?? null,
    restartSpreadMs: options.restartSpreadMs ?? 0,
    retry: options.retry ?? retryAfterError,
    retryClose: options.retryClose ?? retryAfterClose,
    random: options.random ?? Math.random,
  };
  if (!(policy.initialDelayMs >= 0 && policy.initialDelayMs <= policy.maxDelayMs)) {
    throw new RangeError("need 0 <= initialDelayMs <= maxDelayMs");
  }
  if (!(policy.multiplier >= 1)) {
    throw new RangeError("multiplier must be at least 1");
  }
  if (policy.maxAttempts !== null && !(policy.maxAttempts >= 1)) {
    throw new RangeError("maxAttempts must be at least 1");
  }
  if (!(policy.restartSpreadMs >= 0 && Number.isFinite(policy.restartSpreadMs))) {
    throw new RangeError("restartSpreadMs must be a finite number of ms, at least 0");
  }
  return policy;
}

class Backoff {
  private attempt = 0;
  constructor(private readonly policy: Policy) {}

  next(): number {
    const { initialDelayMs, maxDelayMs, multiplier, random } = this.policy;
    const cap = Math.min(maxDelayMs, initialDelayMs * multiplier ** Math.min(this.attempt, 1024));
    this.attempt++;
    return random() * (Number.isFinite(cap) ? cap : maxDelayMs);
  }
}

/** What a setup callback is told about the connection it sets up. */
export interface LinkInfo {
  /** The URL connected to. */
  readonly url: string;
  /** False on the first connection, true on every later one. */
  readonly reconnect: boolean;
  /** How many attempts this connection took (1: the first worked). */
  readonly attempts: number;
  /** null when the client did not ask to recover (or the server keeps nothing, or this
   * is a new session); true when the server sent every push missed while away; false
   * when it could not: fetch the state again. */
  readonly recovered: boolean | null;
}

/** A connection that dropped. */
export interface Drop {
  /** The close code (1006: lost without a close frame). */
  readonly code: number | null;
  readonly reason: string;
  /** Whether the client will connect again. */
  readonly reconnecting: boolean;
}

export type ClientState = "new" | "connecting" | "open" | "reconnecting" | "closing" | "closed";

/** Why a client closed for good. */
export type CloseCause = "manual" | "dropped" | "retries exhausted" | "unrecoverable";

/** The query parameters of a schema without a query type. */
export type NoQuery = never;

/** The options of a generated client: O is its outgoing interface, H its handlers, Q its
 * query type. */
export interface ClientOptions<O, H, Q> {
  /** Handshake headers, or a token provider called for every connection. */
  headers?: HeadersOption;
  /** The query to connect with, of the schema's query type (scalars: sent as URL
   * parameters, null and undefined left out). */
  query?: Q;
  /** Handlers for the server's calls; a request without one is answered ROUTE_NOT_FOUND. */
  handlers?: H;
  /** Milliseconds to wait for an answer (30000; null: forever). A call made while the
   * client reconnects waits for the connection within the same time. */
  timeoutMs?: number | null;
  /** Milliseconds for the socket to open and the handshake to be answered (5000). */
  handshakeTimeoutMs?: number;
  /** Silence from the server, in milliseconds, before the client sends `p` (30000;
   * null: never); any frame counts. */
  pingIntervalMs?: number | null;
  /** Milliseconds a pinged server has to send anything before the connection is taken
   * for dead (10000): a drop, then a reconnect. */
  pingTimeoutMs?: number | null;
  /** How to reconnect: true (the default policy), false (every drop is final), or a
   * policy. */
  reconnect?: ReconnectOptions | boolean;
  /** Whether a call made while the client reconnects waits for the connection (true) or
   * fails at once with ConnectionClosedError. */
  waitForConnection?: boolean;
  /** Ask the server to number its pushes and send the ones missed while away (for
   * servers with recovery on; others ignore it). */
  recover?: boolean;
  /** Runs on every connection, the first and each reconnect, before other calls go out
   * on it; `outgoing` sends on that connection at once (the client's own `outgoing` would
   * wait for the setup to end). When it throws, the attempt failed. */
  setup?: (link: LinkInfo, outgoing: O) => void | Promise<void>;
  /** Every drop, with whether the client reconnects. */
  onDrop?: (drop: Drop) => void;
  /** The final close. */
  onClose?: (code: number | null, reason: string) => void;
  /** Malformed frames, dropped messages, failed handlers. */
  onError?: (error: GrestwsError) => void;
  /** The WebSocket class (the global WebSocket by default): the `ws` package's on old
   * Node versions. */
  WebSocket?: WebSocketClass;
}

/** The outgoing calls' own options. */
export interface CallOptions {
  /** Milliseconds to wait for the answer, instead of the client's timeoutMs. */
  timeoutMs?: number | null;
}

function joinUrl(base: string, path: string): string {
  const match = /^(wss?:\/\/[^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/.exec(base);
  if (match === null) {
    throw new TypeError(`expected a ws:// or wss:// URL, got ${JSON.stringify(base)}`);
  }
  const [, origin, rawPath, query] = match;
  let prefix = (rawPath ?? "").replace(/\/+$/, "");
  const stem = path.replace(/\/+$/, "");
  if (stem && prefix.endsWith(stem)) {
    prefix = prefix.slice(0, prefix.length - stem.length);
  }
  return `${origin}${prefix}${path}${query ?? ""}`;
}

function withQuery(url: string, query: unknown): string {
  if (query === undefined || query === null) {
    return url;
  }
  const params: string[] = [];
  for (const [name, value] of Object.entries(query as Record<string, unknown>)) {
    if (value === null || value === undefined) {
      continue;
    }
    if (typeof value === "object") {
      throw new ValidationError("Query parameters are scalars", { data: [] });
    }
    params.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`);
  }
  if (!params.length) {
    return url;
  }
  return `${url}${url.includes("?") ? "&" : "?"}${params.join("&")}`;
}

interface Opened {
  readonly ws: WebSocketLike;
  readonly data: unknown;
  readonly early: ({ data: unknown } | { code: number; reason: string })[];
}

/** The base class of every generated client: one schema on a server, a connection that
 * comes back when it drops.
 *
 * Calls go through `outgoing`; any number may be in flight at once, matched by id. */
export class Client<O, H, Q = NoQuery> {
  /** The client's calls to the server, typed by the contract. */
  readonly outgoing: O;
  /** The URLs tried in turn (failover), with the schema's path. */
  readonly urls: readonly string[];
  private readonly options: ClientOptions<O, H, Q>;
  private readonly policy: Policy | null;
  private readonly timeoutMs: number | null;
  private readonly resumption: Resumption | null;
  private urlIndex = 0;
  private stateValue: ClientState = "new";
  private session: Session | null = null;
  private last: Session | null = null;
  private final: ConnectionClosedError | null = null;
  private waiters: (() => void)[] = [];
  private forced = false;
  private wakeup: (() => void) | null = null;
  private closedPromise: Promise<void>;
  private resolveClosed: () => void = () => undefined;
  /** Why the client closed for good (null until it has). */
  closeCause: CloseCause | null = null;
  /** The error that ended the last attempt, when the client gave up on one. */
  closeError: unknown = null;

  constructor(
    readonly schema: SchemaInfo,
    url: string | readonly string[],
    options: ClientOptions<O, H, Q> = {},
  ) {
    const given = typeof url === "string" ? [url] : [...url];
    if (!given.length) {
      throw new TypeError("no URL to connect to");
    }
    this.urls = given.map((one) => joinUrl(one, schema.path));
    this.options = options;
    const reconnect = options.reconnect ?? true;
    this.policy = reconnect === false ? null : policyOf(reconnect === true ? {} : reconnect);
    this.timeoutMs = options.timeoutMs === undefined ? 30_000 : options.timeoutMs;
    this.resumption = options.recover ? new Resumption() : null;
    this.outgoing = this.proxy(null, this.timeoutMs);
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** new, connecting, open, reconnecting, closing or closed. */
  get state(): ClientState {
    return this.stateValue;
  }

  /** The URL connected to (or to be tried next). */
  get url(): string {
    return this.urls[this.urlIndex] ?? "";
  }

  /** The close code of the last connection once it closed, else null. */
  get closeCode(): number | null {
    return this.last?.closeCode ?? null;
  }

  /** The outgoing calls, with another timeout (null: forever). */
  withTimeout(timeoutMs: number | null): O {
    return this.proxy(null, timeoutMs);
  }

  /** Resolves once the client closed for good. */
  closed(): Promise<void> {
    return this.closedPromise;
  }

  private proxy(session: Session | null, timeoutMs: number | null): O {
    const proxy: Record<string, (arg?: unknown) => Promise<unknown>> = {};
    for (const method of this.schema.outgoing) {
      proxy[method.name] = method.request
        ? (arg?: unknown) => (session === null ? this.request(method, arg, timeoutMs) : session.request(method, arg, timeoutMs))
        : (arg?: unknown) => (session === null ? this.notify(method, arg) : Promise.resolve().then(() => session.notify(method, arg)));
    }
    return proxy as unknown as O;
  }

  // -- connecting ---------------------------------------------------------------------

  /** Open the socket, make the handshake and run the setup callback; from then on the
   * client reconnects by itself (unless `reconnect` is false). With several URLs, each is
   * tried once, in turn. `retry: true` keeps trying with the reconnect policy's pauses
   * and rules instead (a service that starts before its server).
   *
   * Rejects with the handshake's error (NotAuthorizedError, ...), ValidationError (the
   * server refused the query), HandshakeTimeoutError, ConnectError, ConnectionClosedError,
   * or what the setup callback threw. */
  async connect(options: { retry?: boolean } = {}): Promise<this> {
    if (this.stateValue !== "new") {
      throw new InvalidStateError(`cannot connect a client that is ${this.stateValue}`);
    }
    this.stateValue = "connecting";
    const policy = this.policy ?? policyOf({});
    const backoff = new Backoff(policy);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.attempt(false, attempt);
        break;
      } catch (error) {
        if (this.stateValue !== "connecting") {
          throw error; // closed meanwhile
        }
        const triedAll = attempt % this.urls.length === 0;
        const exhausted = options.retry && policy.maxAttempts !== null && attempt >= policy.maxAttempts;
        if (!policy.retry(error) || (triedAll && !options.retry) || exhausted) {
          this.finish(options.retry && policy.retry(error) ? "retries exhausted" : "unrecoverable", error);
          throw error;
        }
        this.urlIndex = (this.urlIndex + 1) % this.urls.length;
        if (triedAll) {
          await sleep(backoff.next());
        }
      }
    }
    this.stateValue = "open";
    return this;
  }

  private async headers(): Promise<Record<string, string>> {
    const given = this.options.headers ?? {};
    const headers = { ...(typeof given === "function" ? await given() : given) };
    if (this.resumption !== null) {
      headers[RECOVERY_HEADER] = this.resumption.offer();
    }
    return headers;
  }

  /** One attempt on the current URL: open, handshake, setup, then the session is up. */
  private async attempt(reconnect: boolean, attempts: number): Promise<void> {
    const url = this.url;
    const headers = await this.headers();
    const { ws, data, early } = await this.open(withQuery(url, this.options.query), headers);
    const recovered = this.resumption === null ? null : this.resumption.accepted(data);
    const session = new Session(ws, {
      schema: this.schema,
      handlers: () => this.options.handlers as Handlers | undefined,
      report: (error) => this.report(error),
      pingIntervalMs: this.options.pingIntervalMs === undefined ? 30_000 : this.options.pingIntervalMs,
      pingTimeoutMs: this.options.pingTimeoutMs === undefined ? 10_000 : this.options.pingTimeoutMs,
    });
    if (this.resumption?.session != null) {
      session.positions = this.resumption.positions;
    }
    ws.onmessage = (event) => session.receive(event.data);
    ws.onclose = (event) => session.closedWith(event.code, event.reason);
    ws.onerror = () => undefined;
    for (const event of early) {
      // what came right after k, before this session was there to take it
      if ("code" in event) {
        session.closedWith(event.code, event.reason);
      } else {
        session.receive(event.data);
      }
    }
    this.last = session;
    const setup = this.options.setup;
    try {
      if (setup !== undefined) {
        await setup({ url, reconnect, attempts, recovered }, this.proxy(session, this.timeoutMs));
      }
    } catch (error) {
      session.close(CLOSE_NORMAL, "");
      throw error;
    }
    if (session.closed) {
      throw new ConnectionClosedError(session.closeCode, session.closeReason);
    }
    if (this.stateValue === "closing" || this.stateValue === "closed") {
      session.close(CLOSE_NORMAL, "");
      throw new ConnectionClosedError(CLOSE_NORMAL, "client closed");
    }
    session.onClosed = (code, reason) => this.dropped(session, code, reason);
    this.stateValue = "open";
    this.session = session;
    this.wake();
  }

  /** Open the socket and make the handshake: the socket, the data of `k`, and the events
   * that came after `k` in the same turn of the event loop. */
  private open(url: string, headers: Record<string, string>): Promise<Opened> {
    const WebSocketClass = this.options.WebSocket ?? platform.WebSocket;
    if (WebSocketClass === undefined) {
      return Promise.reject(new ConnectError("no WebSocket class: pass the WebSocket option (Node < 22: the 'ws' package)"));
    }
    const limit = this.options.handshakeTimeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new WebSocketClass(url);
      } catch (error) {
        reject(new ConnectError(`cannot connect to ${url}: ${describe(error).message}`));
        return;
      }
      let opened = false;
      let done = false;
      const fail = (error: unknown): void => {
        if (!done) {
          done = true;
          cancel();
          try {
            ws.close();
          } catch {
            // not open
          }
          reject(error);
        }
      };
      const cancel = later(limit, () => fail(new HandshakeTimeoutError(`${url}: no handshake answer within ${limit / 1000} s`)));
      ws.onopen = () => {
        opened = true;
        try {
          ws.send(`h:::${JSON.stringify(headers)}`);
        } catch (error) {
          fail(new ConnectError(`cannot send the handshake: ${describe(error).message}`));
        }
      };
      ws.onmessage = (event) => {
        let frame: Frame;
        try {
          frame = splitFrame(String(event.data));
        } catch {
          return;
        }
        if (frame.type === "k") {
          done = true;
          cancel();
          let data: unknown = null;
          try {
            data = frame.data ? JSON.parse(frame.data) : null;
          } catch {
            // a peer ignores the data of k
          }
          const early: Opened["early"] = [];
          ws.onmessage = (next) => void early.push(next);
          ws.onclose = (next) => void early.push(next);
          resolve({ ws, data, early });
        } else if (frame.type === "x") {
          let envelope: ResultEnvelope;
          try {
            envelope = JSON.parse(frame.data) as ResultEnvelope;
          } catch {
            envelope = { success: false, type: "SERVER_ERROR" };
          }
          fail(errorFrom(envelope, null, this.schema));
        }
      };
      ws.onclose = (event) => {
        if (!opened) {
          fail(new ConnectError(`cannot connect to ${url} (close ${event.code})`));
        } else if (event.code === CLOSE_INVALID_QUERY) {
          fail(new ValidationError(event.reason || "Invalid query parameters", { data: [] }));
        } else {
          fail(new ConnectionClosedError(event.code, event.reason));
        }
      };
      ws.onerror = () => {
        if (!opened) {
          fail(new ConnectError(`cannot connect to ${url}`)); // some platforms send no close then
        }
      };
    });
  }

  // -- staying connected ----------------------------------------------------------------

  private report(error: GrestwsError): void {
    this.options.onError?.(error);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((wake) => wake());
  }

  private changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = Number.isFinite(ms) ? later(ms, resolve) : () => undefined;
      this.waiters.push(() => {
        cancel();
        resolve();
      });
    });
  }

  private dropped(session: Session, code: number | null, reason: string): void {
    if (session !== this.session) {
      return;
    }
    this.session = null;
    this.wake();
    const forced = this.forced;
    this.forced = false;
    if (this.stateValue !== "open") {
      this.finish("manual");
      return;
    }
    const policy = this.policy;
    if (policy === null || !(forced || policy.retryClose(code))) {
      this.options.onDrop?.({ code, reason, reconnecting: false });
      this.finish("dropped");
      return;
    }
    this.stateValue = "reconnecting";
    this.options.onDrop?.({ code, reason, reconnecting: true });
    let first: number | null = null; // the pause before the first attempt (null: the backoff's)
    if (forced) {
      first = 0;
    } else if (code === CLOSE_SERVICE_RESTART) {
      first = policy.restartSpreadMs > 0 ? policy.random() * policy.restartSpreadMs : 0;
    }
    void this.comeBack(policy, first);
  }

  private async comeBack(policy: Policy, first: number | null): Promise<void> {
    const backoff = new Backoff(policy);
    let pause = first;
    for (let attempt = 1; ; attempt++) {
      if (this.urls.length > 1) {
        this.urlIndex = (this.urlIndex + 1) % this.urls.length;
      }
      if (pause === null || pause > 0) {
        await sleep(pause ?? backoff.next(), new Promise((resolve) => (this.wakeup = resolve)));
        this.wakeup = null;
      }
      if (this.stateValue !== "reconnecting") {
        this.finish("manual");
        return;
      }
      this.forced = false;
      try {
        await this.attempt(true, attempt);
      } catch (error) {
        if (this.stateValue !== "reconnecting") {
          this.finish("manual");
          return;
        }
        if (!policy.retry(error)) {
          this.finish("unrecoverable", error);
          return;
        }
        if (policy.maxAttempts !== null && attempt >= policy.maxAttempts) {
          this.finish("retries exhausted", error);
          return;
        }
        pause = this.forced ? 0 : null; // forceReconnect() during the attempt: no pause
        continue;
      }
      this.stateValue = "open";
      return;
    }
  }

  /** Drop the connection and connect again at once; the setup callback runs again. */
  forceReconnect(): void {
    if (this.stateValue === "reconnecting") {
      this.forced = true;
      this.wakeup?.();
      return;
    }
    if (this.stateValue !== "open" || this.session === null) {
      throw new InvalidStateError(`cannot reconnect a client that is ${this.stateValue}`);
    }
    this.forced = true;
    this.session.close(CLOSE_NORMAL, "Reconnecting");
  }

  private finish(cause: CloseCause, error: unknown = null): void {
    if (this.closeCause !== null) {
      return;
    }
    this.stateValue = "closed";
    this.closeCause = cause;
    this.closeError = error;
    const code = this.last?.closeCode ?? null;
    const reason = this.last?.closeReason ?? "";
    this.final = new ConnectionClosedError(code, reason || `client closed: ${cause}`);
    this.wake();
    this.wakeup?.();
    if (this.last !== null) {
      this.options.onClose?.(code, reason);
    }
    this.resolveClosed();
  }

  // -- calls ------------------------------------------------------------------------------

  private async sessionFor(path: string, timeoutMs: number | null, deadline: number, notThis: Session | null): Promise<Session> {
    for (;;) {
      const session = this.session;
      if (session !== null && session !== notThis && !session.closed) {
        return session;
      }
      if (this.final !== null) {
        throw this.final;
      }
      if (this.options.waitForConnection === false) {
        throw new ConnectionClosedError(null, "not connected");
      }
      const remaining = deadline - now();
      if (remaining <= 0) {
        throw new RequestTimeoutError(path, timeoutMs);
      }
      await this.changed(remaining);
    }
  }

  private again(method: MethodInfo, error: unknown): boolean {
    if (this.final !== null || this.options.waitForConnection === false || this.policy === null) {
      return false;
    }
    if (error instanceof ConnectionLostError) {
      // A graceful drain answered every request it received: this one was not run.
      const drained = error.code === CLOSE_SERVICE_RESTART && error.reason === RESTART_REASON;
      return method.idempotent || drained;
    }
    return error instanceof ConnectionClosedError || error instanceof UnavailableError;
  }

  /** Send a request on the connection that is up, waiting for one within the timeout;
   * sent again on the next connection when the server did not run it (UNAVAILABLE, a
   * drain), or when its method is idempotent. Answered UNAVAILABLE on a connection that
   * stays up, it goes again on that one after the reconnect policy's pauses. */
  private async request(method: MethodInfo, arg: unknown, timeoutMs: number | null): Promise<unknown> {
    const deadline = timeoutMs === null ? Infinity : now() + timeoutMs;
    let failed: Session | null = null;
    let backoff: Backoff | null = null;
    for (;;) {
      const session = await this.sessionFor(method.path, timeoutMs, deadline, failed);
      const remaining = timeoutMs === null ? null : Math.max(0, deadline - now());
      try {
        return await session.request(method, arg, remaining);
      } catch (error) {
        if (error instanceof RequestTimeoutError) {
          throw new RequestTimeoutError(method.path, timeoutMs);
        }
        if (!this.again(method, error)) {
          throw error;
        }
        failed = session;
        if (error instanceof UnavailableError && !session.closed && this.policy !== null) {
          // A busy or paused server that keeps the connection: again on it after a
          // pause, or on the next connection if this one goes meanwhile.
          backoff ??= new Backoff(this.policy);
          const delay = backoff.next();
          if (now() + delay >= deadline) {
            throw error;
          }
          await this.changed(delay);
          failed = null;
        }
      }
    }
  }

  /** Send a fire-and-forget call on the connection that is up, waiting for one (at most
   * the client's timeout) if it must. One sent before a drop is not sent again. */
  private async notify(method: MethodInfo, arg: unknown): Promise<void> {
    const limit = this.timeoutMs;
    const deadline = limit === null ? Infinity : now() + limit;
    for (;;) {
      let session: Session;
      try {
        session = await this.sessionFor(method.path, limit, deadline, null);
      } catch (error) {
        if (error instanceof RequestTimeoutError) {
          throw new ConnectionClosedError(null, `not connected within ${(limit ?? 0) / 1000} s`);
        }
        throw error;
      }
      try {
        session.notify(method, arg);
        return;
      } catch (error) {
        if (this.final !== null || this.options.waitForConnection === false || this.policy === null) {
          throw error;
        }
      }
    }
  }

  // -- closing ------------------------------------------------------------------------------

  /** Close at once with 1000, for good: pending requests fail with ConnectionLostError,
   * calls waiting for a connection with ConnectionClosedError. Idempotent. */
  close(): Promise<void> {
    const state = this.stateValue;
    if (state === "closed") {
      return this.closedPromise;
    }
    this.stateValue = "closing";
    const session = this.session;
    if (session !== null) {
      session.close(CLOSE_NORMAL, "");
    }
    this.finish("manual");
    return this.closedPromise;
  }

  /** Close gracefully: wait (at most timeoutMs) for the requests pending either way, then
   * close with 1000, for good. */
  async disconnect(timeoutMs = 5000): Promise<void> {
    const session = this.session;
    if (session !== null && this.stateValue === "open") {
      this.stateValue = "closing";
      await Promise.race([session.waitIdle(), sleep(timeoutMs)]);
    }
    await this.close();
  }
}
