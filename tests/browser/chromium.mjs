// How the drivers of tests/browser start Debian's Chromium: headless, each launch with a
// new empty profile, and with nothing that reaches for the network on its own.

import { chromium } from "playwright-core";

export const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Chromium at `executable`, headless. */
export function launch(executable) {
  return chromium.launch({ executablePath: executable, headless: true, args: FLAGS });
}
