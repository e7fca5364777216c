// Validates Kubernetes objects against the API's schemas (kubernetes-models: the OpenAPI schemas of the
// Kubernetes release it was generated from, checked with ajv). Reads YAML (one or more documents, as
// `kubectl kustomize` prints them) from the files named, or from stdin; prints one line per object,
// "valid KIND NAME" or "invalid KIND NAME: why"; exits 1 if any object is invalid or of an unknown kind.
// With --json FILE, also writes the objects to FILE as one JSON array (for jq).
//   kubectl kustomize deploy/kubernetes/private | node tests/deploy/validate.mjs
// Unknown fields are errors too, as with `kubectl apply --validate=strict` (below).
import { readFileSync, writeFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// The schemas let fields they do not know through (the API server's lax decoding drops them), so a misspelt field
// (`readOnlyRootFilesystm`) would pass. The validators that kubernetes-models generates read every property their
// schema names, on every object they check (and every key of a map): the object is handed to them behind proxies that
// note what they read, and a key of a checked object that was never read is a field the schema does not know.
function tracked(value, path, nodes, proxies = new WeakMap()) {
  if (value === null || typeof value !== "object") return value;
  if (proxies.has(value)) return proxies.get(value);
  const node = { value, path, read: new Set() };
  nodes.push(node);
  const proxy = new Proxy(value, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== "string" || !Object.hasOwn(target, key)) return v;
      node.read.add(key);
      return tracked(v, Array.isArray(target) ? `${path}[${key}]` : `${path}.${key}`, nodes, proxies);
    },
  });
  proxies.set(value, proxy);
  return proxy;
}

function unknownFields(Model, obj) {
  const nodes = [];
  Model.prototype.validate.call(tracked(obj, "", nodes)); // throws on a schema error
  const unknown = [];
  for (const { value, path, read } of nodes)
    if (!Array.isArray(value) && read.size > 0)
      for (const key of Object.keys(value)) if (!read.has(key)) unknown.push(`${path}.${key}`.slice(1));
  return unknown;
}

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
      const unknown = unknownFields(Model, obj);
      if (unknown.length > 0) throw new Error(`unknown field ${unknown.join(", ")}`);
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
