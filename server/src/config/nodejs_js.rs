//! Reads the original server's `nodejs.config.js`: a JavaScript file that assigns a global
//! `settings = { … };` object literal. We do not run JavaScript: the literal is cut out and read
//! as JSON5 (unquoted keys, single quotes, comments, trailing commas), which covers the files
//! the original's README and example produce. Expressions (`process.env.X`, `+`) are refused
//! with the line they are on.

use serde_json::Value;

/// Keys the original read in older versions and 1.0.13 ignores; accepted with a warning.
const LEGACY_KEYS: &[&str] = &[
    "transports",
    "jsMinification",
    "jsEtag",
    "logLevel",
    "clientsCanWriteToChannels",
    "clientsCanWriteToClients",
    "socketOptions",
    "sslPassPhrase",
];

/// Parses the file's text into the settings object, minus legacy keys (returned as warnings).
pub fn parse(text: &str) -> Result<(Value, Vec<String>), String> {
    let start = find_assignment(text)
        .ok_or("no `settings = { … }` assignment found (the file must assign the settings object)")?;
    let end = matching_brace(text, start)?;
    let literal = &text[start..=end];
    let value: Value = json5::from_str(literal).map_err(|e| {
        let base_line = text[..start].matches('\n').count();
        let msg = e.to_string();
        let line = msg
            .split("line ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok())
            .map(|l| format!(" (file line {})", l + base_line))
            .unwrap_or_default();
        format!("the settings object is not a plain literal{line}: {msg}; only strings, numbers, booleans, arrays and objects are supported")
    })?;
    let Value::Object(mut map) = value else {
        return Err("settings must be an object".into());
    };
    let mut warnings = Vec::new();
    let legacy: Vec<String> =
        map.keys().filter(|k| LEGACY_KEYS.contains(&k.as_str()) || k.ends_with("Url")).cloned().collect();
    for k in legacy {
        map.remove(&k);
        let instead = match k.as_str() {
            "clientsCanWriteToChannels" => "; see clientWritableChannels (channel patterns)",
            "clientsCanWriteToClients" => "; see clientMessages (message types for Drupal)",
            _ => "",
        };
        warnings
            .push(format!("{k}: ignored (an option of older Node.js servers with no effect here){instead}"));
    }
    Ok((Value::Object(map), warnings))
}

/// Byte offset of the `{` that starts the literal assigned to `settings`.
fn find_assignment(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = text[from..].find("settings") {
        let at = from + pos;
        let before_ok = at == 0 || !is_ident(text[..at].chars().next_back()?);
        let rest = &text[at + "settings".len()..];
        let trimmed = rest.trim_start();
        if before_ok && trimmed.starts_with('=') && !trimmed.starts_with("==") {
            let after_eq = trimmed[1..].trim_start();
            if after_eq.starts_with('{') {
                return Some(text.len() - after_eq.len());
            }
        }
        from = at + "settings".len();
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || c == '.'
}

/// Offset of the `}` closing the `{` at `start`, skipping strings and comments.
fn matching_brace(text: &str, start: usize) -> Result<usize, String> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                let q = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err("the settings object is not closed (unbalanced braces)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
/**
 * Example configuration of the Node.js server.
 */
settings = {
  scheme: 'http',
  port: 8080,
  host: 'localhost',
  resource: '/socket.io',
  serviceKey: 'k3y', // the shared secret
  backend: {
    port: 80,
    host: 'drupal.example.org',
    scheme: 'http',
    basePath: '',
    messagePath: '/nodejs/message',
  },
  debug: false,
  publishUrl: 'publish',
  extensions: [],
  clientsCanWriteToChannels: false,
  transports: ['websocket', 'flashsocket', 'htmlfile', 'xhr-polling', 'jsonp-polling'],
  jsMinification: true,
  jsEtag: true,
  logLevel: 1
};
"#;

    #[test]
    fn reads_the_example_file_and_drops_legacy_keys() {
        let (v, warnings) = parse(EXAMPLE).unwrap();
        assert_eq!(v["serviceKey"], "k3y");
        assert_eq!(v["backend"]["host"], "drupal.example.org");
        assert_eq!(v["port"], 8080);
        assert!(v.get("transports").is_none() && v.get("publishUrl").is_none());
        assert_eq!(v["resource"], "/socket.io", "resource is ours again: where socket.io.js is served");
        assert_eq!(warnings.len(), 6, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("clientsCanWriteToChannels") && w.contains("clientWritableChannels")),
            "{warnings:?}"
        );
    }

    #[test]
    fn var_declaration_and_braces_in_strings() {
        let (v, _) = parse("var settings = {serviceKey: \"a}b{\", port: 1}; // }").unwrap();
        assert_eq!(v["serviceKey"], "a}b{");
    }

    #[test]
    fn expressions_are_refused_with_a_line() {
        let e = parse("\n\nsettings = {\n  port: process.env.PORT,\n};").unwrap_err();
        assert!(e.contains("not a plain literal"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(parse("module.exports = {}").unwrap_err().contains("no `settings"));
        assert!(parse("settings = {port: 1").unwrap_err().contains("not closed"));
    }
}
