// Validates Kubernetes objects against the API's schemas (kubernetes-models: the OpenAPI schemas of the
// Kubernetes release it was generated from, checked with ajv). Reads YAML (one or more documents, as
// `kubectl kustomize` prints them) from the files named, or from stdin; prints one line per object,
// "valid KIND NAME" or "invalid KIND NAME: why"; exits 1 if any object is invalid or of an unknown kind.
// With --json FILE, also writes the objects to FILE as one JSON array (for jq).
//   kubectl kustomize deploy/kubernetes/private | node tests/deploy/validate.mjs
// Unknown fields are not reported (the schemas allow them, as the API server's non-strict decoding does).
import { readFileSync, writeFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// apiVersion "apps/v1" -> the module kubernetes-models/apps/v1; the core group "v1" -> kubernetes-models/v1
async function modelOf(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion)) return undefined;
  try {
    const mod = await import(`kubernetes-models/${apiVersion}`);
    return mod[kind];
  } catch {
    return undefined;
  }
}

const args = process.argv.slice(2);
let jsonOut;
if (args[0] === "--json") {
  jsonOut = args[1];
  args.splice(0, 2);
}
const inputs = args.length > 0 ? args : ["/dev/stdin"];
const objects = [];
let bad = 0;
let count = 0;
for (const file of inputs) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length > 0) {
      console.log(`invalid YAML in ${file}: ${doc.errors[0].message}`);
      bad++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    objects.push(obj);
    count++;
    const what = `${obj.kind} ${obj.metadata?.name ?? "(no name)"}`;
    const Model = await modelOf(obj.apiVersion, obj.kind);
    if (Model === undefined) {
      console.log(`invalid ${what}: unknown apiVersion ${obj.apiVersion} or kind ${obj.kind}`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`valid ${what}`);
    } catch (e) {
      console.log(`invalid ${what}: ${e.message}`);
      bad++;
    }
  }
}
if (count === 0) {
  console.log("no object to validate");
  bad++;
}
if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify(objects, null, 1));
process.exit(bad > 0 ? 1 : 0);
