// Drives the generated clients against `grestws serve tests.typescript_app:app --recovery 60`:
// compiled with the generated files by tests/test_typescript.py, run with Node (the WebSocket
// global), the server's base URL as its argument. Prints one "ok <check>" line per check
// and exits 1 at the first failure.

import {
  BoardFullError,
  ConnectionLostError,
  LockedError,
  NotAuthorizedError,
  connectBoardApi,
  type BoardApiOptions,
  type LinkInfo,
  type Post,
} from "./board-api.js";
import { check, ok, rejection, waitFor } from "./checks.js";
import { ValidationError, connectChatApi, type Message } from "./chat-api.js";

declare const process: { argv: string[]; exit(code: number): never };

const url = process.argv[2] ?? "";

async function chat(): Promise<void> {
  const got: Message[] = [];
  const client = await connectChatApi(url, {
    headers: { authorization: "Bearer secret-ann" },
    handlers: { newMessage: (msg) => void got.push(msg), areYouThere: () => true },
  });
  const reply = await client.outgoing.sendMessage({ text: "hi", channelId: "general" });
  check(reply.success && reply.messageId.length > 0, "sendMessage answers");
  ok("call");
  await waitFor(() => got.length === 1, "the newMessage push");
  check(got[0]?.text === "hi" && got[0]?.senderId === "ann", "the push's fields");
  ok("push");
  const invalid = await rejection(client.outgoing.sendMessage({ text: "", channelId: "general" }));
  check(invalid instanceof ValidationError, "an empty text is a ValidationError");
  if (invalid instanceof ValidationError) {
    check(invalid.type === "VALIDATION_ERROR" && invalid.statusCode === 422, "its type and status");
    check(invalid.data[0]?.path === "text", `its issue's path: ${JSON.stringify(invalid.data)}`);
  }
  ok("validation error");
  await client.outgoing.ping();
  await client.disconnect();
  check(client.state === "closed" && client.closeCause === "manual", "disconnect closes for good");
  ok("disconnect");
}

async function recovery(): Promise<void> {
  const links: LinkInfo[] = [];
  const got: string[] = [];
  const client = await connectChatApi(url, {
    headers: { authorization: "Bearer secret-ann" },
    recover: true,
    handlers: { newMessage: (msg) => void got.push(msg.text) },
    setup: (link) => void links.push(link),
  });
  const other = await connectChatApi(url, { headers: { authorization: "Bearer secret-bea" } });
  await other.outgoing.sendMessage({ text: "one", channelId: "general" });
  await waitFor(() => got.includes("one"), "a push before the drop");
  client.forceReconnect();
  await other.outgoing.sendMessage({ text: "two", channelId: "general" }); // maybe while away
  await waitFor(() => links.length === 2, "the setup of the reconnect");
  check(links[0]?.recovered === null && links[1]?.recovered === true, JSON.stringify(links));
  await other.outgoing.sendMessage({ text: "three", channelId: "general" });
  await waitFor(() => got.includes("three"), "a push after the reconnect");
  check(JSON.stringify(got) === '["one","two","three"]', `each push once, in order: ${JSON.stringify(got)}`);
  await Promise.all([client.close(), other.close()]);
  ok("recovery");
}

async function board(): Promise<void> {
  let tokens = 0;
  let locked = false;
  const links: LinkInfo[] = [];
  const pushed: Post[] = [];
  const options: BoardApiOptions = {
    headers: async () => {
      tokens++;
      return { authorization: "Bearer secret-bob" };
    },
    query: { boardId: "b1", pageSize: 5, verbose: true },
    handlers: {
      postCreated: (post) => void pushed.push(post),
      confirm: (question) => {
        if (locked) {
          throw new LockedError("Not now");
        }
        return question.options?.includes("yes") ?? false;
      },
    },
    setup: async (link, outgoing) => {
      links.push(link);
      await outgoing.listPosts(); // goes out on the connection being set up
    },
    pingIntervalMs: 100,
    pingTimeoutMs: 1000,
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
  };
  const client = await connectBoardApi(url, options);
  const me = await client.outgoing.whoami();
  check(me.user === "bob" && me.board === "b1" && me.pageSize === "5" && me.verbose === "true", JSON.stringify(me));
  ok("query and token provider");

  const post = await client.outgoing.createPost({
    title: "first",
    body: { type: "image", url: "https://example.com/a.png", widthPx: 64 },
    tags: ["a"],
    where: [1.5, 2],
  });
  check(post.id === 1 && post.body.type === "image" && post.author.displayName === "bob", JSON.stringify(post));
  check(post.created === "2030-01-02T03:04:05Z" && post.attachment === "AAE=", "datetime and bytes as strings");
  await waitFor(() => pushed.length === 1, "the postCreated push");
  ok("typed call and push");

  const full = await rejection(client.outgoing.createPost({ title: "full", body: { type: "text", text: "x" } }));
  check(full instanceof BoardFullError, `a declared error: ${String(full)}`);
  if (full instanceof BoardFullError) {
    check(full.type === "BOARD_FULL" && full.statusCode === 409, "its type and status");
    check(full.data.capacity === 2 && full.data.waiting[0] === "ann", "its typed data");
    check(full.displayMessage === "Board is full" && full.remote, "its message");
  }
  ok("declared error");

  check((await client.outgoing.askClient("ready?")) === "yes", "the handler's answer");
  locked = true;
  check((await client.outgoing.askClient("ready?")) === "locked: Not now", "a declared error of a handler");
  locked = false;
  ok("server to client request");

  await new Promise((resolve) => setTimeout(resolve, 400)); // pings go out and are answered
  check(client.state === "open", "a live server is not taken for dead");
  ok("liveness");

  await client.outgoing.dropMe();
  await waitFor(() => links.length === 2, "the setup of the reconnect");
  check(links[0]?.reconnect === false && links[1]?.reconnect === true, JSON.stringify(links));
  check(tokens === 2, `the token provider is called per connection (${tokens})`);
  check((await client.outgoing.getPost(1)) === null, "a new connection, a new handler");
  ok("reconnect");

  const slow = client.outgoing.createPost({ title: "slow", body: { type: "text", text: "x" } });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const start = Date.now();
  await client.close();
  const lost = await rejection(slow);
  check(lost instanceof ConnectionLostError && Date.now() - start < 1000, `fails at once: ${String(lost)}`);
  ok("pending calls fail on close");

  const refused = await rejection(connectBoardApi(url, { ...options, headers: { authorization: "Bearer forged" } }));
  check(refused instanceof NotAuthorizedError, `a forged token: ${String(refused)}`);
  ok("bad token refused");
}

async function main(): Promise<void> {
  await chat();
  await recovery();
  await board();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.log(`FAILED ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
