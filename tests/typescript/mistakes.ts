// Mistakes the generated types must catch: tests/test_typescript.py compiles this file with
// the generated clients of tests.typescript_app:app and expects exactly the errors named at
// the end of the lines (`// TSnnnn`), each on its own line, and no other.

import { BoardFullError, connectBoardApi, type BoardApiOptions, type NewPost } from "./board-api.js";
import { connectChatApi, type ChatApiOptions } from "./chat-api.js";

export async function mistakes(url: string): Promise<void> {
  const chat = await connectChatApi(url);
  await chat.outgoing.sendMessage({ text: 1, channelId: "general" }); // TS2322
  await chat.outgoing.sendMessage(); // TS2554
  await chat.outgoing.deleteEverything(); // TS2339
  const count: number = await chat.outgoing.sendMessage({ text: "hi", channelId: "general" }); // TS2322
  await chat.outgoing.ping("now"); // TS2554
  void count;

  const wrongReturn: ChatApiOptions = { handlers: { areYouThere: () => "yes" } }; // TS2322
  const unknownHandler: ChatApiOptions = { handlers: { newMesage: () => undefined } }; // TS2561
  const queryWithout: ChatApiOptions = { query: { room: "general" } }; // TS2322
  void [wrongReturn, unknownHandler, queryWithout];

  const wrongQuery: BoardApiOptions = { query: { boardId: 5 } }; // TS2322
  const board = await connectBoardApi(url, { query: { boardId: "b1" } });
  const video: NewPost = { title: "t", body: { type: "video", url: "u" } }; // TS2322
  const color: NewPost = { title: "t", body: { type: "text", text: "x" }, color: "blue" }; // TS2322
  const priority: NewPost = { title: "t", body: { type: "text", text: "x" }, priority: 3 }; // TS2322
  const point: NewPost = { title: "t", body: { type: "text", text: "x" }, where: [1] }; // TS2322
  void [wrongQuery, video, color, priority, point];
  await board.outgoing.getPost("1"); // TS2345
  try {
    await board.outgoing.listPosts();
  } catch (error) {
    if (error instanceof BoardFullError) {
      const capacity: string = error.data.capacity; // TS2322
      void capacity;
    }
  }
  const confirmReturn: BoardApiOptions = { handlers: { confirm: async () => "yes" } }; // TS2322
  void confirmReturn;
}
