// Renders TeX with the KaTeX pinned in package.json for docs/hooks/katex.py: one process per MkDocs build.
// Protocol: one JSON line in, {"items": [{"tex": "...", "display": true|false}, ...]} (a whole page's formulas),
// one JSON line out, {"results": [{"html": "..."} | {"error": "..."}, ...]} in the same order.
"use strict";
const path = require("path");
const readline = require("readline");
const katex = require(path.join(process.argv[2] || process.cwd(), "node_modules", "katex"));

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  const { items } = JSON.parse(line);
  const results = items.map(({ tex, display }) => {
    try {
      return { html: katex.renderToString(tex, { displayMode: display, throwOnError: true, strict: "ignore" }) };
    } catch (err) {
      return { error: err.message };
    }
  });
  process.stdout.write(JSON.stringify({ results }) + "\n");
});
rl.on("close", () => process.exit(0));
