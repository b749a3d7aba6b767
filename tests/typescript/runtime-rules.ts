// The runtime's rules, against a scripted WebSocket (no server): what is sent again after
// a drop, what is final, calls waiting for the connection, liveness, recovery's
// duplicates, handshake refusals. Compiled with the generated files of
// tests.typescript_app:app by tests/test_typescript.py and run with Node; prints one
// "ok <check>" line per check and exits 1 at the first failure.

import {
  BoardApiClient,
  ConnectionClosedError,
  ConnectionLostError,
  ForbiddenError,
  NotAuthorizedError,
  RequestTimeoutError,
  UnavailableError,
  ValidationError,
  type BoardApiOptions,
  type Drop,
  type WebSocketLike,
} from "./board-api.js";
import { check, ok, rejection, sleep, waitFor } from "./checks.js";

declare const process: { exit(code: number): never };

type Event = { code: number; reason: string };

/** A WebSocket whose server is the test: it opens, answers `h` with `k` unless told
 * otherwise, and records what the client sends. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  static refuse: string | null = null;
  static acceptData = "null";
  readyState = 0;
  sent: string[] = [];
  closedWith: Event | null = null;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: Event) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }

  send(data: string): void {
    this.sent.push(data);
    if (data.startsWith("h:::")) {
      setTimeout(() => {
        if (FakeSocket.refuse !== null) {
          this.push(`x:::${FakeSocket.refuse}`);
          this.drop(4001, "Handshake failed");
        } else {
          this.push(`k:::${FakeSocket.acceptData}`);
        }
      }, 0);
    }
  }

  close(code = 1005, reason = ""): void {
    this.drop(code, reason);
  }

  push(frame: string): void {
    if (this.closedWith === null) {
      this.onmessage?.({ data: frame });
    }
  }

  drop(code: number, reason: string): void {
    if (this.closedWith === null) {
      this.closedWith = { code, reason };
      this.readyState = 3;
      setTimeout(() => this.onclose?.({ code, reason }), 0);
    }
  }

  requests(path: string): string[] {
    return this.sent.filter((frame) => frame.startsWith(`r:${path}:`));
  }

  static get last(): FakeSocket {
    const socket = FakeSocket.all[FakeSocket.all.length - 1];
    if (socket === undefined) {
      throw new Error("no socket");
    }
    return socket;
  }
}

const POST = '{"id":1,"title":"t","body":{"type":"text","text":"x"},"color":"red","priority":1,"status":"draft","author":{"userId":"u"},"created":"c","tags":[],"scores":{}}';

async function client(options: BoardApiOptions = {}): Promise<BoardApiClient> {
  FakeSocket.all = [];
  FakeSocket.refuse = null;
  FakeSocket.acceptData = "null";
  const made = new BoardApiClient("ws://fake/base/", {
    query: { boardId: "b 1", verbose: true },
    WebSocket: FakeSocket,
    reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
    pingIntervalMs: null,
    ...options,
  });
  return made.connect();
}

async function connecting(): Promise<void> {
  const board = await client({ headers: () => ({ authorization: "Bearer t" }) });
  const socket = FakeSocket.last;
  check(socket.url === "ws://fake/base/ws/board?boardId=b%201&verbose=true", socket.url);
  check(socket.sent[0] === 'h:::{"authorization":"Bearer t"}', String(socket.sent[0]));
  check(board.state === "open", board.state);
  socket.push("p:::");
  check(socket.sent.includes("o:::"), "p is answered with o");
  await board.close();
  check(board.state === "closed" && board.closeCause === "manual", `${board.state} ${board.closeCause}`);
  ok("handshake, query, p/o");
}

async function idempotentSentAgain(): Promise<void> {
  const drops: Drop[] = [];
  const board = await client({ onDrop: (drop) => void drops.push(drop) });
  const first = FakeSocket.last;
  const idempotent = board.outgoing.getPost(1);
  const plain = board.outgoing.listPosts();
  await waitFor(() => first.requests("BoardApi.listPosts").length === 1, "the requests");
  first.drop(1006, "");
  const lost = await rejection(plain);
  check(lost instanceof ConnectionLostError && lost.code === 1006, `a plain request fails: ${String(lost)}`);
  await waitFor(() => FakeSocket.all.length === 2 && FakeSocket.last.requests("BoardApi.getPost").length === 1, "sent again");
  const again = FakeSocket.last.requests("BoardApi.getPost")[0] ?? "";
  check(again === "r:BoardApi.getPost:1:1", again);
  FakeSocket.last.push(`s:BoardApi.getPost:1:{"success":true,"type":"OK","data":${POST}}`);
  check((await idempotent)?.id === 1, "the idempotent call is answered on the next connection");
  check(drops.length === 1 && drops[0]?.reconnecting === true && drops[0]?.code === 1006, JSON.stringify(drops));
  await board.close();
  ok("idempotent requests sent again after a drop");
}

async function drainedAndUnavailable(): Promise<void> {
  const board = await client();
  const first = FakeSocket.last;
  const unanswered = board.outgoing.listPosts();
  const refused = board.outgoing.whoami();
  await waitFor(() => first.requests("BoardApi.whoami").length === 1, "the requests");
  first.push('s:BoardApi.whoami:2:{"success":false,"type":"UNAVAILABLE","statusCode":503}');
  first.drop(1012, "Server restarting");
  const start = Date.now();
  await waitFor(() => FakeSocket.all.length === 2 && FakeSocket.last.sent.length === 3, "both sent again");
  check(Date.now() - start < 500, "after 1012 the client comes back at once");
  const second = FakeSocket.last;
  second.push('s:BoardApi.listPosts:1:{"success":true,"type":"OK","data":[]}');
  second.push('s:BoardApi.whoami:2:{"success":true,"type":"OK","data":{"user":"u"}}');
  check((await unanswered).length === 0 && (await refused)["user"] === "u", "both answered");
  await board.close();
  ok("UNAVAILABLE and drained requests sent again");
}

async function restartSpread(): Promise<void> {
  const board = await client({
    reconnect: { initialDelayMs: 5, maxDelayMs: 20, restartSpreadMs: 200, random: () => 0.5 },
  });
  const start = Date.now();
  FakeSocket.last.drop(1012, "Server restarting");
  await waitFor(() => FakeSocket.all.length === 2, "the reconnect");
  check(Date.now() - start >= 90, `after 1012 the first attempt waits its part of restartSpreadMs (${Date.now() - start} ms)`);
  await waitFor(() => board.state === "open", "open again");
  await board.close();
  let thrown: unknown = null;
  try {
    new BoardApiClient("ws://fake/base/", { WebSocket: FakeSocket, reconnect: { restartSpreadMs: -1 } });
  } catch (error) {
    thrown = error;
  }
  check(thrown instanceof RangeError, `a negative restartSpreadMs: ${String(thrown)}`);
  ok("restart spread");
}

async function unavailableOnALiveConnection(): Promise<void> {
  const board = await client({ reconnect: { initialDelayMs: 5, maxDelayMs: 20, random: () => 0.5 } });
  const socket = FakeSocket.last;
  const busy = board.outgoing.whoami();
  await waitFor(() => socket.requests("BoardApi.whoami").length === 1, "the request");
  socket.push('s:BoardApi.whoami:1:{"success":false,"type":"UNAVAILABLE","statusCode":503}');
  await waitFor(() => socket.requests("BoardApi.whoami").length === 2, "sent again on the same connection");
  socket.push('s:BoardApi.whoami:2:{"success":true,"type":"OK","data":{"user":"u"}}');
  check((await busy)["user"] === "u" && FakeSocket.all.length === 1, "answered, no reconnect");
  await board.close();
  // Pauses of 2.5 s (half a 5 s cap): none fits in a 1 s timeout, so the answer is final.
  const patient = await client({ reconnect: { initialDelayMs: 5000, maxDelayMs: 5000, random: () => 0.5 } });
  const only = FakeSocket.last;
  const impatient = patient.withTimeout(1000).whoami();
  await waitFor(() => only.requests("BoardApi.whoami").length === 1, "the impatient request");
  only.push('s:BoardApi.whoami:1:{"success":false,"type":"UNAVAILABLE","statusCode":503}');
  const refused = await rejection(impatient);
  check(refused instanceof UnavailableError, `UNAVAILABLE, not a timeout: ${String(refused)}`);
  check(only.requests("BoardApi.whoami").length === 1, "not sent again");
  await patient.close();
  ok("UNAVAILABLE on a live connection: sent again on it");
}

async function finalCloses(): Promise<void> {
  for (const code of [1000, 1003, 1007, 1008, 4000, 4001]) {
    const board = await client();
    const waiting = board.outgoing.listPosts();
    await waitFor(() => FakeSocket.last.requests("BoardApi.listPosts").length === 1, "the request");
    FakeSocket.last.drop(code, "bye");
    check((await rejection(waiting)) instanceof ConnectionLostError, "the pending call fails");
    await board.closed();
    check(board.closeCause === "dropped" && FakeSocket.all.length === 1, `${code}: ${board.closeCause}`);
    const after = await rejection(board.outgoing.listPosts());
    check(after instanceof ConnectionClosedError && !(after instanceof ConnectionLostError), String(after));
  }
  ok("final closes");
}

async function refusedOnReconnect(): Promise<void> {
  const board = await client();
  FakeSocket.refuse = '{"success":false,"type":"NOT_AUTHORIZED","statusCode":401,"context":{"displayMessage":"Token expired"}}';
  FakeSocket.last.drop(1006, "");
  await board.closed();
  check(board.closeCause === "unrecoverable" && board.closeError instanceof NotAuthorizedError, String(board.closeError));
  ok("a refused handshake is final");
}

async function refusedAtConnect(): Promise<void> {
  FakeSocket.refuse = null;
  const refusing = new BoardApiClient("ws://fake", { WebSocket: FakeSocket, query: { boardId: "b" } });
  FakeSocket.refuse = '{"success":false,"type":"FORBIDDEN","statusCode":403}';
  check((await rejection(refusing.connect())) instanceof ForbiddenError, "refused");
  check(refusing.closeCause === "unrecoverable", String(refusing.closeCause));
  FakeSocket.refuse = null;
  class QueryRefused extends FakeSocket {
    override send(data: string): void {
      this.sent.push(data);
      this.drop(4000, "Invalid query parameters");
    }
  }
  const invalid = new BoardApiClient("ws://fake", { WebSocket: QueryRefused, query: { boardId: "b" } });
  check((await rejection(invalid.connect())) instanceof ValidationError, "4000 at the handshake is a ValidationError");
  ok("refusals at connect");
}

async function waitingForTheConnection(): Promise<void> {
  const board = await client({ reconnect: { initialDelayMs: 100, maxDelayMs: 100, random: () => 1 } });
  FakeSocket.last.drop(1011, "");
  await waitFor(() => board.state === "reconnecting", "reconnecting");
  const waits = board.outgoing.listPosts();
  const tooShort = board.withTimeout(20).listPosts();
  check((await rejection(tooShort)) instanceof RequestTimeoutError, "a call times out while waiting");
  await waitFor(() => FakeSocket.all.length === 2 && FakeSocket.last.sent.length === 2, "sent once connected");
  check(FakeSocket.last.sent[1] === "r:BoardApi.listPosts:1:", String(FakeSocket.last.sent[1]));
  FakeSocket.last.push('s:BoardApi.listPosts:1:{"success":true,"type":"OK","data":[]}');
  check((await waits).length === 0, "answered");
  await board.close();
  // A pause of a second: the client is still reconnecting when the call is made.
  const noWait = await client({ waitForConnection: false, reconnect: { initialDelayMs: 1000, maxDelayMs: 1000, random: () => 1 } });
  FakeSocket.last.drop(1011, "");
  await waitFor(() => noWait.state === "reconnecting", "reconnecting");
  check((await rejection(noWait.outgoing.listPosts())) instanceof ConnectionClosedError, "fails at once");
  await noWait.close();
  ok("calls wait for the connection");
}

async function liveness(): Promise<void> {
  const drops: Drop[] = [];
  const board = await client({ pingIntervalMs: 20, pingTimeoutMs: 20, onDrop: (drop) => void drops.push(drop) });
  const socket = FakeSocket.last;
  await waitFor(() => socket.sent.includes("p:::"), "a ping after the interval");
  await waitFor(() => drops.length === 1, "a drop after the timeout");
  check(drops[0]?.code === 1006 && drops[0]?.reason === "keepalive ping timeout", JSON.stringify(drops));
  await waitFor(() => FakeSocket.all.length === 2 && board.state === "open", "reconnected");
  const alive = FakeSocket.last;
  for (let i = 0; i < 10; i++) {
    await sleep(10);
    alive.push("o:::"); // any frame counts
  }
  check(board.state === "open" && drops.length === 1, "a server that talks is not dropped");
  await board.close();
  ok("liveness");
}

async function recovery(): Promise<void> {
  const posts: number[] = [];
  const recovered: (boolean | null)[] = [];
  const board = await client({
    recover: true,
    handlers: { postCreated: (post) => void posts.push(post.id) },
    setup: (link) => void recovered.push(link.recovered),
  });
  const first = FakeSocket.all[0];
  check(first?.sent[0] === 'h:::{"grestws-recovery":"{}"}', String(first?.sent[0]));
  check(recovered[0] === null, "no session yet");
  await board.close();

  FakeSocket.all = [];
  const again = new BoardApiClient("ws://fake", {
    WebSocket: FakeSocket,
    query: { boardId: "b" },
    recover: true,
    pingIntervalMs: null,
    reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
    handlers: { postCreated: (post) => void posts.push(post.id) },
    setup: (link) => void recovered.push(link.recovered),
  });
  FakeSocket.acceptData = '{"recovery":{"session":"S1","recovered":null,"window":60}}';
  await again.connect();
  const push = (id: number, position: string): void =>
    FakeSocket.last.push(`m:BoardApi.postCreated:${position}:${POST.replace('"id":1', `"id":${id}`)}`);
  push(1, "n1.1");
  push(2, "n1.2");
  FakeSocket.acceptData = '{"recovery":{"session":"S1","recovered":true,"window":60}}';
  FakeSocket.last.drop(1006, "");
  await waitFor(() => recovered.length === 3, "the reconnect");
  const header = FakeSocket.last.sent[0] ?? "";
  check(header === 'h:::{"grestws-recovery":"{\\"session\\":\\"S1\\",\\"positions\\":{\\"n1\\":2}}"}', header);
  push(2, "n1.2"); // a replay of what arrived already
  push(3, "n1.3");
  push(4, "n2.1");
  await sleep(5);
  check(JSON.stringify(posts) === "[1,2,3,4]", JSON.stringify(posts));
  check(recovered[2] === true, JSON.stringify(recovered));
  await again.close();
  ok("recovery");
}

async function main(): Promise<void> {
  await connecting();
  await idempotentSentAgain();
  await drainedAndUnavailable();
  await restartSpread();
  await unavailableOnALiveConnection();
  await finalCloses();
  await refusedOnReconnect();
  await refusedAtConnect();
  await waitingForTheConnection();
  await liveness();
  await recovery();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.log(`FAILED ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
