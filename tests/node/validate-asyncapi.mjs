// Validate an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser).
//
//   node validate-asyncapi.mjs DOCUMENT.json
//
// Prints one JSON object on stdout:
//   {"valid": bool, "parserVersion": "...", "errors": N, "warnings": N,
//    "diagnostics": [{"severity": "error"|"warning"|"info"|"hint", "code", "message", "path"}]}
// Exit codes: 0 no errors (warnings allowed), 1 errors (severity 0, or no document
// could be built), 2 usage: no path, or a file that cannot be read.

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { resolve } from "node:path";

import { Parser } from "@asyncapi/parser";

const SEVERITIES = ["error", "warning", "info", "hint"];

async function main(argv) {
  if (argv.length !== 1) {
    process.stderr.write("usage: node validate-asyncapi.mjs DOCUMENT.json\n");
    return 2;
  }
  const source = resolve(argv[0]);
  let text;
  try {
    text = await readFile(source, "utf8");
  } catch (error) {
    process.stderr.write(`cannot read ${source}: ${error.message}\n`);
    return 2;
  }
  const { version } = createRequire(import.meta.url)("@asyncapi/parser/package.json");
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source });
  const shown = diagnostics.map((diagnostic) => ({
    severity: SEVERITIES[diagnostic.severity] ?? String(diagnostic.severity),
    code: String(diagnostic.code),
    message: diagnostic.message,
    path: diagnostic.path.join("/"),
  }));
  const errors = shown.filter((diagnostic) => diagnostic.severity === "error").length;
  const warnings = shown.filter((diagnostic) => diagnostic.severity === "warning").length;
  const valid = errors === 0 && document !== undefined;
  const report = { valid, parserVersion: version, errors, warnings, diagnostics: shown };
  process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  return valid ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
