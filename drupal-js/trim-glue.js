// Trims wasm-bindgen's glue (drupal_push_client.js, before terser) to what drupal-push uses;
// build.sh runs it. Each edit must apply, or the build fails (a new wasm-bindgen version
// then needs a look here). Usage: node trim-glue.js GLUE_FILE
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

const file = process.argv[2];
let text = fs.readFileSync(file, 'utf8');
const edit = (pattern, to, what) => {
  const before = text;
  text = text.replace(pattern, to);
  if (text === before) {
    throw new Error(`trim-glue: ${what} not found in ${file}`);
  }
};

edit(/^export \{ initSync, __wbg_init as default \};$/m, 'export { initSync };', 'the exports');
edit(/\n {4}__destroy_into_raw\(\) \{[\s\S]*?\n {4}\}\n {4}free\(\) \{[\s\S]*?\n {4}\}/, '', 'free()');
edit(/^if \(Symbol\.dispose\).*$/m, '', 'Symbol.dispose');
edit(/^ *\w+Finalization\.register\(.*\);$/gm, '', 'the finalization registration');
edit(/^const \w+Finalization = [\s\S]*?;\n/m, '', 'the finalization registry');
edit(/ try \{\n([\s\S]*?)\n *\} catch \(e\) \{\n[\s\S]*?throw e;\n *\}/g, '\n$1', 'the string cleanup');
edit(/^function passStringToWasm0\(arg, malloc, realloc\) \{\n[\s\S]*?\n\}$/m,
  `function passStringToWasm0(arg, malloc) {
    const buf = cachedTextEncoder.encode(arg);
    const ptr = malloc(buf.length, 1) >>> 0;
    getUint8ArrayMemory0().set(buf, ptr);
    WASM_VECTOR_LEN = buf.length;
    return ptr;
}`, 'passStringToWasm0');
edit(/^if \(!\('encodeInto' in cachedTextEncoder\)\) \{\n[\s\S]*?\n\}$/m, '', 'the encodeInto polyfill');
edit(/^ *numBytesDecoded \+= bytes\.length;\n *if \(numBytesDecoded >= MAX_SAFARI_DECODE_BYTES\) \{[\s\S]*?\n {4}\}\n/m, '',
  'the decoder reset');
edit(/ else \{\n *console\.warn\('using deprecated parameters for `initSync\(\)`[^\n]*\n *\}/, '',
  'the initSync warning');
// build.sh removes the wasm's free and realloc exports.
edit(/, wasm\.__wbindgen_realloc\)/g, ')', 'the realloc arguments');
fs.writeFileSync(file, text);
