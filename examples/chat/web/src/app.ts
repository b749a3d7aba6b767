// The chat page: logs in with a bearer token, shows the channel's messages as the server
// pushes them, sends, shows who is typing, asks who is here, and answers the server's
// "are you there?". Everything it says to the server goes through the client that
// `grestws typescript examples.chat.server:app -o src/api` generated.

import {
  ChatApiClient,
  ConnectionClosedError,
  NotAuthorizedError,
  ReadOnlyChannelError,
  ValidationError,
  type ClientState,
  type Message,
} from "./api/chat-api.js";

const TYPING_EVERY_MS = 2000;
const TYPING_SHOWN_MS = 3000;
const KEEP_MESSAGES = 200;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) {
    throw new Error(`the page has no #${id}`);
  }
  return found as T;
}

const page = {
  status: element<HTMLParagraphElement>("status"),
  login: element<HTMLFormElement>("login"),
  token: element<HTMLInputElement>("token"),
  channel: element<HTMLInputElement>("channel"),
  room: element<HTMLElement>("room"),
  messages: element<HTMLUListElement>("messages"),
  typing: element<HTMLParagraphElement>("typing"),
  compose: element<HTMLFormElement>("compose"),
  text: element<HTMLInputElement>("text"),
  who: element<HTMLButtonElement>("who"),
  present: element<HTMLInputElement>("present"),
  leave: element<HTMLButtonElement>("leave"),
  here: element<HTMLParagraphElement>("here"),
  asked: element<HTMLParagraphElement>("asked"),
  error: element<HTMLParagraphElement>("error"),
};

/** The server: `?server=ws://host:port` or this page's own host. */
function serverUrl(): string {
  const given = new URLSearchParams(location.search).get("server");
  if (given) {
    return given;
  }
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
}

const STATES: Record<ClientState, string> = {
  new: "Not connected.",
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Connection lost; reconnecting…",
  closing: "Leaving…",
  closed: "Not connected.",
};

let client: ChatApiClient | null = null;
let user = "";
let channel = "general";
let lastTyping = 0;
let asked = 0;
const typingTimers = new Map<string, ReturnType<typeof setTimeout>>();

function showStatus(state: ClientState): void {
  page.status.dataset["state"] = state;
  page.status.textContent = state === "open" ? `Connected as ${user} in #${channel}.` : STATES[state];
}

function showError(error: unknown): void {
  page.error.textContent = describe(error);
}

/** What went wrong, for a person. */
function describe(error: unknown): string {
  if (error instanceof ValidationError) {
    return error.data.map((issue) => `${issue.path || "message"}: ${issue.message}`).join("; ");
  }
  if (error instanceof ReadOnlyChannelError) {
    return `Only ${error.data.posters.join(", ")} may post in #${error.data.channelId}.`;
  }
  if (error instanceof NotAuthorizedError) {
    return "The server refused the token (the demo takes secret-<name>).";
  }
  if (error instanceof ConnectionClosedError) {
    return "Not connected to the server.";
  }
  return error instanceof Error ? error.message : String(error);
}

function showMessage(msg: Message): void {
  const item = document.createElement("li");
  item.dataset["id"] = msg.id;
  item.classList.toggle("mine", msg.senderId === user);
  const sender = document.createElement("span");
  sender.className = "sender";
  sender.textContent = msg.senderId;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = msg.text;
  const time = document.createElement("time");
  const when = new Date(msg.timestamp);
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString();
  item.append(sender, text, time);
  page.messages.append(item);
  while (page.messages.children.length > KEEP_MESSAGES) {
    page.messages.firstElementChild?.remove();
  }
  page.messages.scrollTop = page.messages.scrollHeight;
  clearTyping(msg.senderId);
}

function showTyping(who: string): void {
  clearTimeout(typingTimers.get(who));
  typingTimers.set(
    who,
    setTimeout(() => clearTyping(who), TYPING_SHOWN_MS),
  );
  renderTyping();
}

function clearTyping(who: string): void {
  clearTimeout(typingTimers.get(who));
  if (typingTimers.delete(who)) {
    renderTyping();
  }
}

function renderTyping(): void {
  const names = [...typingTimers.keys()].sort();
  page.typing.textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

async function join(token: string, room: string): Promise<void> {
  page.error.textContent = "";
  channel = room || "general";
  user = token.startsWith("secret-") ? token.slice("secret-".length) : token;
  const joining = new ChatApiClient(serverUrl(), {
    headers: { authorization: `Bearer ${token}` },
    recover: true,
    handlers: {
      newMessage: showMessage,
      typing: (event) => {
        if (event.channelId === channel && event.userId !== user) {
          showTyping(event.userId);
        }
      },
      areYouThere: () => {
        asked++;
        page.asked.textContent = `The server asked "are you there?" ${asked} time${asked === 1 ? "" : "s"}.`;
        return page.present.checked;
      },
    },
    setup: () => showStatus("open"), // on every connection: the first and each reconnect
    onDrop: () => showStatus("reconnecting"),
    onClose: () => {
      showStatus("closed");
      page.room.hidden = true;
      page.login.hidden = false;
    },
  });
  showStatus("connecting");
  try {
    await joining.connect();
  } catch (error) {
    showStatus("closed");
    showError(error);
    return;
  }
  client = joining;
  page.login.hidden = true;
  page.room.hidden = false;
  showStatus("open");
  page.text.focus();
}

async function send(text: string): Promise<void> {
  if (client === null) {
    return;
  }
  try {
    await client.outgoing.sendMessage({ text, channelId: channel });
    page.text.value = "";
    lastTyping = 0; // the next keystroke says "typing" again
    page.error.textContent = "";
  } catch (error) {
    showError(error);
  }
}

async function whoIsHere(): Promise<void> {
  if (client === null) {
    return;
  }
  page.here.textContent = "Asking…";
  try {
    const users = await client.outgoing.whoIsHere({ channelId: channel });
    page.here.textContent = `Here in #${channel}: ${users.length ? users.join(", ") : "nobody answered"}.`;
  } catch (error) {
    page.here.textContent = "";
    showError(error);
  }
}

async function leave(): Promise<void> {
  const leaving = client;
  client = null;
  await leaving?.disconnect();
  page.messages.replaceChildren();
  page.here.textContent = "";
  page.asked.textContent = "";
  asked = 0;
}

page.login.addEventListener("submit", (event) => {
  event.preventDefault();
  void join(page.token.value.trim(), page.channel.value.trim());
});

page.compose.addEventListener("submit", (event) => {
  event.preventDefault();
  void send(page.text.value);
});

page.text.addEventListener("input", () => {
  const now = Date.now();
  if (client !== null && page.text.value && now - lastTyping > TYPING_EVERY_MS) {
    lastTyping = now;
    client.outgoing.isTyping({ channelId: channel }).catch(showError);
  }
});

page.who.addEventListener("click", () => void whoIsHere());
page.leave.addEventListener("click", () => void leave());
