// Opens the AsyncAPI page of grestws.asyncapi.asyncapi_app in headless Chromium and checks
// that the AsyncAPI web component rendered the document the page embeds.
//
//   node asyncapi-page.mjs CHROMIUM PAGE_URL SCREENSHOT EXPECTED_TEXT...
//
// Prints one "ok <check>" line per check; at the first failure prints "FAILED ..." with
// what the page showed and exits 1. Every wait is bounded (WAIT_MS).

import { launch } from "./chromium.mjs";

const WAIT_MS = 90000; // the component parses and validates the document as it loads: seconds

function ok(name) {
  console.log(`ok ${name}`);
}

async function main([executable, url, screenshot, ...expected]) {
  const browser = await launch(executable);
  const problems = [];
  const requests = [];
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on("pageerror", (error) => problems.push(error.message));
    page.on("requestfailed", (request) => problems.push(`${request.url()}: ${request.failure()?.errorText}`));
    page.on("request", (request) => requests.push(request.url()));
    await page.goto(url, { waitUntil: "commit" });
    await page.waitForFunction(() => customElements.get("asyncapi-component") !== undefined);
    ok("the web component loads");
    for (const text of expected) {
      // Locators pierce the component's shadow root.
      await page.locator("asyncapi-component").getByText(text).filter({ visible: true }).first().waitFor();
    }
    ok("it renders the document");
    const open = await page.evaluate(() => document.getElementById("asyncapi-source")?.open);
    if (open !== false) {
      throw new Error(`the raw document is still unfolded (open: ${open})`);
    }
    ok("the raw document folds away");
    const foreign = requests.filter((address) => !address.startsWith(new URL(url).origin));
    if (foreign.length) {
      throw new Error(`requests to other hosts: ${foreign.join(", ")}`);
    }
    if (problems.length) {
      throw new Error(`the page reported errors:\n${problems.join("\n")}`);
    }
    ok("no errors and no other hosts");
    await page.screenshot({ path: screenshot, fullPage: false });
  } catch (error) {
    console.log(`FAILED ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    const shown = page
      ? await page
          .evaluate(() => document.querySelector("asyncapi-component")?.shadowRoot?.textContent ?? document.body.innerText)
          .catch(() => "?")
      : "?";
    await page?.screenshot({ path: screenshot }).catch(() => undefined);
    console.log(`--- the page:\n${shown.slice(0, 4000)}\n${problems.join("\n")}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

await main(process.argv.slice(2));
