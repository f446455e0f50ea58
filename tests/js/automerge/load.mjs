// Loads an automerge file written by `hedgerow export automerge` with the JavaScript
// implementation and prints what it sees as one JSON line: the document's fields, its heads,
// and each change's hash and message (where Hedgerow keeps an import's provenance record).
// Usage: node load.mjs FILE
import { readFileSync } from "node:fs";
import * as A from "@automerge/automerge";

const bytes = readFileSync(process.argv[2]);
const doc = A.load(new Uint8Array(bytes));
const changes = A.getAllChanges(doc).map((raw) => {
  const change = A.decodeChange(raw);
  return { hash: change.hash, message: change.message ?? null, actor: change.actor, seq: change.seq };
});
process.stdout.write(
  JSON.stringify({ doc: A.toJS(doc), heads: A.getHeads(doc), changes }) + "\n",
);
