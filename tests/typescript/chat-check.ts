// Drives the client generated from the chat example against the example itself,
// `grestws serve examples.chat.server:app`: compiled with `grestws typescript
// examples.chat.server:app` by tests/test_typescript.py, run with Node (the WebSocket
// global), the server's base URL as its argument. Prints one "ok <check>" line per check
// and exits 1 at the first failure.
//
// The server is fresh for the run; every client is in the channel "general", and the
// checks that count the members of a channel use channels of their own.

import {
  ConnectionLostError,
  ForbiddenError,
  NotAuthorizedError,
  ReadOnlyChannelError,
  ValidationError,
  connectChatApi,
  type ChatApiClient,
  type Message,
  type TypingEvent,
} from "./chat-api.js";
import { check, ok, rejection, waitFor } from "./checks.js";

declare const process: { argv: string[]; exit(code: number): never };

const url = process.argv[2] ?? "";

/** A connected user and what the server sent it. */
interface Peer {
  readonly client: ChatApiClient;
  readonly messages: Message[];
  readonly typing: TypingEvent[];
  /** How often the server asked areYouThere. */
  asked: number;
}

/** Connect as `name` (token `secret-<name>`); `there` answers areYouThere. */
async function join(name: string, there: () => boolean | Promise<boolean> = () => true): Promise<Peer> {
  const heard = { messages: [] as Message[], typing: [] as TypingEvent[], asked: 0 };
  const client = await connectChatApi(url, {
    headers: { authorization: `Bearer secret-${name}` },
    reconnect: false,
    handlers: {
      newMessage: (msg) => void heard.messages.push(msg),
      typing: (event) => void heard.typing.push(event),
      areYouThere: () => {
        heard.asked++;
        return there();
      },
    },
  });
  return Object.assign(heard, { client });
}

function received(peer: Peer, id: string): Message | undefined {
  return peer.messages.find((msg) => msg.id === id);
}

async function main(): Promise<void> {
  const before = Date.now();
  const ann = await join("ann");
  const bea = await join("bea");
  check(ann.client.state === "open" && bea.client.state === "open", "both connected");

  // -- every kind of call of a client ----------------------------------------------------
  const reply = await ann.client.outgoing.sendMessage({ text: "hello", channelId: "general" });
  check(reply.success && reply.messageId.length > 0, `sendMessage answers: ${JSON.stringify(reply)}`);
  check((await ann.client.outgoing.markAsRead({ messageId: reply.messageId })) === undefined, "markAsRead");
  check((await ann.client.outgoing.ping()) === undefined, "ping");
  check((await ann.client.outgoing.isTyping({ channelId: "general" })) === undefined, "isTyping");
  await waitFor(() => bea.typing.length > 0, "the typing push to the other client");
  check(
    JSON.stringify(bea.typing) === '[{"userId":"ann","channelId":"general"}]',
    `the typing push: ${JSON.stringify(bea.typing)}`,
  );
  check(ann.typing.length === 0, "typing does not go back to the typist");
  ok("request, fire-and-forget calls and the typing push");

  // -- pushes ------------------------------------------------------------------------------
  const second = await bea.client.outgoing.sendMessage({ text: "hi ann", channelId: "general" });
  await waitFor(
    () => [ann, bea].every((peer) => received(peer, reply.messageId) && received(peer, second.messageId)),
    "both messages at both clients",
  );
  for (const peer of [ann, bea]) {
    const first = received(peer, reply.messageId);
    const other = received(peer, second.messageId);
    check(first?.text === "hello" && first.senderId === "ann", `the first message: ${JSON.stringify(first)}`);
    check(other?.text === "hi ann" && other.senderId === "bea", `the second message: ${JSON.stringify(other)}`);
    for (const msg of [first, other]) {
      const stamp = msg?.timestamp ?? -1;
      const plausible = stamp >= before - 60_000 && stamp <= Date.now() + 60_000; // milliseconds, same clock
      check(Number.isInteger(stamp) && plausible, `a timestamp: ${stamp}`);
    }
  }
  ok("newMessage reaches both clients");

  // -- a request of the server -------------------------------------------------------------
  // Each joins the channel with its own whoIsHere (a request: it is in once answered), so
  // the members are dan (answers false), then bea, then ann.
  const dan = await join("dan", () => false);
  check(
    JSON.stringify(await dan.client.outgoing.whoIsHere({ channelId: "roll-call" })) === "[]",
    "a handler answering false is left out",
  );
  check(dan.asked === 1, `dan was asked (${dan.asked})`);
  const withBea = await bea.client.outgoing.whoIsHere({ channelId: "roll-call" });
  check(JSON.stringify(withBea) === '["bea"]', `bea alone answers true: ${JSON.stringify(withBea)}`);
  const asked = [ann.asked, bea.asked, dan.asked];
  const here = await ann.client.outgoing.whoIsHere({ channelId: "roll-call" });
  check(JSON.stringify(here) === '["ann","bea"]', `both users, sorted: ${JSON.stringify(here)}`);
  check(
    JSON.stringify([ann.asked, bea.asked, dan.asked]) === JSON.stringify(asked.map((count) => count + 1)),
    `every member was asked once: ${JSON.stringify([asked, [ann.asked, bea.asked, dan.asked]])}`,
  );
  ok("whoIsHere asks every connection in the channel");

  // -- the declared error ------------------------------------------------------------------
  const readOnly = await rejection(ann.client.outgoing.sendMessage({ text: "news", channelId: "announcements" }));
  check(readOnly instanceof ReadOnlyChannelError, `a non-admin in announcements: ${String(readOnly)}`);
  if (readOnly instanceof ReadOnlyChannelError) {
    check(readOnly.type === "READ_ONLY_CHANNEL" && readOnly.statusCode === 403, "its type and status");
    check(readOnly.data.channelId === "announcements", `its channel: ${JSON.stringify(readOnly.data)}`);
    check(readOnly.data.posters.includes("admin"), `its posters: ${JSON.stringify(readOnly.data)}`);
    check(readOnly.remote && readOnly.displayMessage === "Only admins may post in announcements", "its message");
  }
  const admin = await join("admin");
  const news = await admin.client.outgoing.sendMessage({ text: "news", channelId: "announcements" });
  check(news.success && news.messageId.length > 0, "the admin posts in announcements");
  await waitFor(() => received(ann, news.messageId)?.senderId === "admin", "the admin's message at ann");
  ok("declared error READ_ONLY_CHANNEL");

  // -- FORBIDDEN ---------------------------------------------------------------------------
  const forbidden = await rejection(ann.client.outgoing.deleteMessage({ messageId: reply.messageId }));
  check(forbidden instanceof ForbiddenError, `a non-admin deletes: ${String(forbidden)}`);
  if (forbidden instanceof ForbiddenError) {
    check(forbidden.type === "FORBIDDEN" && forbidden.statusCode === 403, "its type and status");
  }
  check((await admin.client.outgoing.deleteMessage({ messageId: reply.messageId })) === true, "an existing message");
  check((await admin.client.outgoing.deleteMessage({ messageId: reply.messageId })) === false, "a deleted message");
  check((await admin.client.outgoing.deleteMessage({ messageId: "nothing" })) === false, "a missing message");
  ok("FORBIDDEN and deleteMessage");

  // -- VALIDATION_ERROR --------------------------------------------------------------------
  const invalid = await rejection(ann.client.outgoing.sendMessage({ text: "", channelId: "general" }));
  check(invalid instanceof ValidationError, `an empty text: ${String(invalid)}`);
  if (invalid instanceof ValidationError) {
    check(invalid.type === "VALIDATION_ERROR" && invalid.statusCode === 422, "its type and status");
    check(invalid.data[0]?.path === "text", `its issue's path: ${JSON.stringify(invalid.data)}`);
  }
  ok("validation error");

  // -- refused handshakes ------------------------------------------------------------------
  const forged = await rejection(connectChatApi(url, { headers: { authorization: "Bearer forged" } }));
  check(forged instanceof NotAuthorizedError, `a forged token: ${String(forged)}`);
  const anonymous = await rejection(connectChatApi(url));
  check(anonymous instanceof NotAuthorizedError, `no token: ${String(anonymous)}`);
  ok("bad token refused");

  // -- pending calls fail on close ---------------------------------------------------------
  // cat never answers areYouThere: the server waits for it (2 s) while ann's whoIsHere is
  // pending, and ann closes meanwhile.
  const cat = await join("cat", () => new Promise<boolean>(() => undefined));
  await cat.client.outgoing.sendMessage({ text: "in limbo", channelId: "limbo" }); // joins limbo
  const pending = ann.client.outgoing.whoIsHere({ channelId: "limbo" });
  const outcome = rejection(pending);
  await waitFor(() => cat.asked === 1, "the server asking cat");
  const start = Date.now();
  await ann.client.close();
  const lost = await outcome;
  const elapsed = Date.now() - start;
  check(lost instanceof ConnectionLostError, `the pending call: ${String(lost)}`);
  check(elapsed < 1000, `it fails at once, not after the server's 2 s (${elapsed} ms)`);
  check(ann.client.state === "closed" && ann.client.closeCause === "manual", "ann is closed");
  ok("pending calls fail on close");

  await Promise.all([bea, dan, admin, cat].map((peer) => peer.client.close()));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.log(`FAILED ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
