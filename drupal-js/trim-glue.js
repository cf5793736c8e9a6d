// Trims wasm-bindgen's glue (drupal_push_client.js, before terser) to what drupal-push uses;
// build.sh runs it. Usage: node trim-glue.js GLUE_FILE WASM_FILE (the wasm after build.sh has
// removed the free and realloc exports).
//
// Why it is kept (measured 2026-12-08, wasm-bindgen 0.2.130, the same wasm through build.sh's
// steps with and without this script and the export removal it allows; bytes gzipped -9):
//   glue 709 trimmed, 1,668 untrimmed (+959); wasm 14,792 trimmed, 14,903 untrimmed (+111:
//   the free and realloc exports and the code only they reach). +1,070 bytes a page, 5% of the
//   20 KiB budget: untrimmed, both paths would be over it (socket.io.js 20,487, drupal-push.js
//   21,055 of 20,480 bytes; trimmed 19,417 and 19,985).
// A hand-written loader in place of wasm-bindgen could save at most the 709 bytes of the
// trimmed glue minus its own size (string passing, the externref table and the imports are
// most of those bytes and it would need them too), and it would replace wasm-bindgen's
// JsValue handling in the Rust code and the wasm-bindgen-test suite: not worth it.
//
// Every edit must apply, and afterwards nothing it removes may be referenced (the checks at the
// end): a new wasm-bindgen version that changes the glue fails the build here, with the name
// of the edit, instead of shipping untrimmed or broken glue.
//
// - Exports initSync only: core.js fetches and compiles the wasm itself, so the async loader
//   (its fallbacks and long warning texts) goes.
// - No FinalizationRegistry, free() or Symbol.dispose: the page's one client lives as long as
//   the page.
// - No cleanup when passing a string throws (it does not: every argument is a string).
// - Strings are passed with TextEncoder.encode (the ASCII fast path, the realloc path and the
//   encodeInto polyfill for browsers older than any with WebAssembly reference types go); the
//   wasm's free and realloc exports are then unused, and build.sh removes them.
// - No Safari decoder reset after 2 GB of decoded text, no deprecated-parameter warning.
'use strict';

const fs = require('node:fs');

const [file, wasmFile] = process.argv.slice(2);
if (!file || !wasmFile) {
  throw new Error('usage: node trim-glue.js GLUE_FILE WASM_FILE');
}
let text = fs.readFileSync(file, 'utf8');
// Replaces pattern (count: how many matches it must have; a global pattern otherwise needs one
// or more).
const edit = (pattern, to, what, count) => {
  const found = (text.match(pattern.global ? pattern : new RegExp(pattern.source, pattern.flags + 'g')) || []).length;
  if (found === 0 || (count !== undefined && found !== count)) {
    const expected = count === undefined ? 'some' : count;
    throw new Error(`trim-glue: ${what}: ${found} matches in ${file}, expected ${expected}`);
  }
  text = text.replace(pattern, to);
};

edit(/^export \{ initSync, __wbg_init as default \};$/m, 'export { initSync };', 'the exports', 1);
edit(/\n {4}__destroy_into_raw\(\) \{[\s\S]*?\n {4}\}\n {4}free\(\) \{[\s\S]*?\n {4}\}/, '', 'free()', 1);
edit(/^if \(Symbol\.dispose\).*$/m, '', 'Symbol.dispose', 1);
edit(/^ *\w+Finalization\.register\(.*\);$/gm, '', 'the finalization registration');
edit(/^const \w+Finalization = [\s\S]*?;\n/m, '', 'the finalization registry', 1);
edit(/ try \{\n([\s\S]*?)\n *\} catch \(e\) \{\n[\s\S]*?throw e;\n *\}/g, '\n$1', 'the string cleanup');
edit(/^function passStringToWasm0\(arg, malloc, realloc\) \{\n[\s\S]*?\n\}$/m,
  `function passStringToWasm0(arg, malloc) {
    const buf = cachedTextEncoder.encode(arg);
    const ptr = malloc(buf.length, 1) >>> 0;
    getUint8ArrayMemory0().set(buf, ptr);
    WASM_VECTOR_LEN = buf.length;
    return ptr;
}`, 'passStringToWasm0', 1);
edit(/^if \(!\('encodeInto' in cachedTextEncoder\)\) \{\n[\s\S]*?\n\}$/m, '', 'the encodeInto polyfill', 1);
edit(/^ *numBytesDecoded \+= bytes\.length;\n *if \(numBytesDecoded >= MAX_SAFARI_DECODE_BYTES\) \{[\s\S]*?\n {4}\}\n/m, '',
  'the decoder reset', 1);
edit(/ else \{\n *console\.warn\('using deprecated parameters for `initSync\(\)`[^\n]*\n *\}/, '',
  'the initSync warning', 1);
// build.sh removes the wasm's free and realloc exports.
edit(/, wasm\.__wbindgen_realloc\)/g, ')', 'the realloc arguments');

// What the edits removed must be gone everywhere (terser drops the async loader, which no
// export reaches any more).
for (const [pattern, what] of [
  [/Finalization\b/, 'a finalization registry'],
  [/\.free\(|_free\b/, 'free()'],
  [/realloc/, 'realloc'],
  [/Symbol\.dispose/, 'Symbol.dispose'],
  [/encodeInto/, 'encodeInto'],
  [/numBytesDecoded \+=/, 'the decoder reset'],
  [/ catch \(e\) \{\n[^\n]*wasm\./, 'a cleanup after a throwing string'],
]) {
  if (pattern.test(text)) {
    throw new Error(`trim-glue: ${what} is still in the trimmed glue ${file}`);
  }
}
const exportLines = text.match(/^export .*$/gm) || [];
if (exportLines.filter((l) => l.startsWith('export {')).join() !== 'export { initSync };' ||
  exportLines.some((l) => /\bdefault\b/.test(l))) {
  throw new Error(`trim-glue: the trimmed glue ${file} must export initSync and no default loader`);
}
// Every export of the wasm the glue calls must exist: build.sh removed the unused ones.
const wasm = new WebAssembly.Module(fs.readFileSync(wasmFile));
const exported = new Set(WebAssembly.Module.exports(wasm).map((e) => e.name));
for (const [, name] of text.matchAll(/\bwasm\.(\w+)/g)) {
  if (!exported.has(name)) {
    throw new Error(`trim-glue: the glue calls wasm.${name}, which ${wasmFile} does not export`);
  }
}
for (const name of exported) {
  if (/_free$|realloc/.test(name)) {
    throw new Error(`trim-glue: ${wasmFile} still exports ${name} (build.sh removes it)`);
  }
}
fs.writeFileSync(file, text);
