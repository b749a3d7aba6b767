// Drives the chat example's web page (examples/chat/web) in headless Chromium: two pages
// log in, exchange messages, see each other typing, ask who is here (each answering the
// server's areYouThere), see the server's refusals; a third page's token is refused.
//
//   node chat-page.mjs CHROMIUM PAGE_URL SCREENSHOT_DIR
//
// Prints one "ok <check>" line per check; at the first failure prints "FAILED ..." with
// what the pages showed and exits 1. Every wait is bounded (WAIT_MS).

import { join } from "node:path";

import { launch } from "./chromium.mjs";

const WAIT_MS = 15000;

function ok(name) {
  console.log(`ok ${name}`);
}

async function open(context, url, name) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  page.on("pageerror", (error) => problems.push(`${name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") {
      problems.push(`${name} console: ${message.text()}`);
    }
  });
  await page.goto(url);
  return { page, name, problems };
}

async function logIn(user, token) {
  await user.page.fill("#token", token);
  await user.page.click("#join");
}

async function connected(user) {
  await user.page.waitForSelector('#status[data-state="open"]');
  await user.page.waitForSelector("#room:not([hidden])");
}

async function say(user, text) {
  await user.page.fill("#text", text);
  await user.page.click("#send");
}

function seen(user, sender, text) {
  return user.page
    .locator("#messages li", { has: user.page.locator(".sender", { hasText: sender }) })
    .filter({ has: user.page.locator(".text", { hasText: text }) })
    .first()
    .waitFor();
}

async function text(user, selector, expected) {
  await user.page.locator(selector, { hasText: expected }).waitFor();
}

async function main([executable, url, shots]) {
  // A new, empty profile for every launch.
  const browser = await launch(executable);
  const users = [];
  try {
    // Separate contexts: nothing shared between the two people but the server.
    const [first, second, third] = await Promise.all([
      browser.newContext({ viewport: { width: 720, height: 640 } }),
      browser.newContext({ viewport: { width: 720, height: 640 } }),
      browser.newContext({ viewport: { width: 720, height: 640 } }),
    ]);
    const ann = await open(first, url, "ann");
    const bob = await open(second, url, "bob");
    users.push(ann, bob);

    await logIn(ann, "secret-ann");
    await logIn(bob, "secret-bob");
    await Promise.all([connected(ann), connected(bob)]);
    await text(ann, "#status", "Connected as ann in #general.");
    ok("two pages log in with their tokens");

    await say(ann, "Hello from the browser, bob!");
    await seen(bob, "ann", "Hello from the browser, bob!");
    await seen(ann, "ann", "Hello from the browser, bob!");
    await say(bob, "Hi ann, I see you.");
    await seen(ann, "bob", "Hi ann, I see you.");
    ok("messages go both ways");

    await bob.page.locator("#text").pressSequentially("typing", { delay: 5 });
    await text(ann, "#typing", "bob is typing");
    await say(bob, "done typing");
    await seen(ann, "bob", "done typing");
    ok("typing shows on the other page");

    await ann.page.click("#who");
    await text(ann, "#here", "Here in #general: ann, bob.");
    await text(bob, "#asked", 'The server asked "are you there?" 1 time.');
    await bob.page.uncheck("#present");
    await ann.page.click("#who");
    await text(ann, "#here", "Here in #general: ann.");
    await bob.page.check("#present");
    ok("who is here: each page answers areYouThere");

    await say(ann, "");
    await text(ann, "#error", "text: Expected `str` of length >= 1");
    ok("a validation error is shown");

    const cid = await open(third, url, "cid");
    users.push(cid);
    await logIn(cid, "forged");
    await text(cid, "#error", "The server refused the token");
    await cid.page.waitForSelector('#status[data-state="closed"]');
    ok("a bad token is refused");

    await ann.page.screenshot({ path: join(shots, "ann.png") });
    await bob.page.screenshot({ path: join(shots, "bob.png") });

    await bob.page.click("#leave");
    await bob.page.waitForSelector("#login:not([hidden])");
    ok("leaving closes the connection");

    const problems = users.flatMap((user) => user.problems);
    if (problems.length) {
      throw new Error(`the pages reported errors:\n${problems.join("\n")}`);
    }
    ok("no errors on the pages");
  } catch (error) {
    console.log(`FAILED ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    for (const user of users) {
      const shown = await user.page.evaluate(() => document.body.innerText).catch(() => "?");
      console.log(`--- ${user.name}'s page:\n${shown}\n${user.problems.join("\n")}`);
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

await main(process.argv.slice(2));
