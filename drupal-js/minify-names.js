// Shortens the wasm's import and export names (wasm-bindgen's are long and end in random
// hashes, which gzip cannot compress) and rewrites the glue to match: build.sh runs it after
// wasm-opt and terser. Usage: node minify-names.js DIST_DIR
'use strict';

const {execFileSync} = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dist = process.argv[2];
const wasm = path.join(dist, 'drupal_push_client_bg.wasm');
const glue = path.join(dist, 'drupal_push_client.js');
const features = ['--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext',
  '--enable-reference-types', '--enable-multivalue', '--enable-mutable-globals'];
const out = execFileSync(path.join(__dirname, 'node_modules', '.bin', 'wasm-opt'),
  [wasm, ...features, '--minify-imports-and-exports-and-modules', '-o', wasm], {encoding: 'utf8'});
const map = JSON.parse(out.slice(out.indexOf('{')));

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
let text = fs.readFileSync(glue, 'utf8');
const replace = (pattern, to, what) => {
  const before = text;
  text = text.replace(pattern, to);
  if (text === before) {
    throw new Error(`minify-names: ${what} not found in the glue`);
  }
};
const modules = new Set(map.imports.map(([module]) => module));
if (modules.size !== 1) {
  throw new Error(`minify-names: expected one import module, found ${[...modules]}`);
}
// --minify-imports-and-exports-and-modules names the single module "a".
replace(new RegExp(`"${escape([...modules][0])}":`), 'a:', 'the import module');
for (const [, name, short] of map.imports) {
  replace(new RegExp(`(["{,])${escape(name)}(["]?:)`, 'g'), `$1${short}$2`, `import ${name}`);
}
// Exports the glue never calls (wasm-bindgen's abort hooks) are left as they are.
for (const [name, short] of map.exports) {
  text = text.replace(new RegExp(`\\.${escape(name)}\\b`, 'g'), `.${short}`);
}
fs.writeFileSync(glue, text);
