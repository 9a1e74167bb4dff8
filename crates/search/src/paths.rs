//! Turning a `DT_RUNPATH`/`DT_RPATH`/`LD_LIBRARY_PATH` string into the directory names the loader
//! searches: dynamic string tokens expanded, empty and unusable entries handled, one trailing slash.

/// What dynamic string tokens expand to for one object.
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    /// `$ORIGIN`: the directory of the object (`None` when the loader could not determine it).
    pub origin: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub lib: &'a str,
    /// Secure mode (`AT_SECURE`): `$ORIGIN` is restricted.
    pub secure: bool,
    /// The object is the main program (secure mode then requires `$ORIGIN` paths to be trusted).
    pub is_executable: bool,
    /// Trusted directories for secure mode: the loader's default directories.
    pub trusted: &'a [String],
}

/// Length of the token `name` at the start of `input` (`NAME` or `{NAME}`), or 0.
fn token_len(input: &str, name: &str) -> usize {
    if let Some(rest) = input.strip_prefix('{') {
        if rest.starts_with(name) && rest[name.len()..].starts_with('}') {
            return name.len() + 2;
        }
        return 0;
    }
    match input.strip_prefix(name) {
        Some(rest) if !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') => {
            name.len()
        }
        _ => 0,
    }
}

/// Expands `$ORIGIN`, `$PLATFORM` and `$LIB` in one path element, as glibc's `_dl_dst_substitute`
/// does. Returns `None` when the element must be dropped (a known token without a value, or secure
/// mode forbidding it). Unknown `$NAME` stays as written.
pub fn expand(element: &str, tokens: &Tokens) -> Option<String> {
    let mut out = String::with_capacity(element.len());
    let mut check_trusted = false;
    let mut rest = element;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (len, value) = if let len @ 1.. = token_len(after, "ORIGIN") {
            // In secure mode $ORIGIN is only honoured alone at the start of the element.
            let alone_at_start =
                out.is_empty() && matches!(after.as_bytes().get(len), None | Some(b'/'));
            check_trusted = tokens.secure && tokens.is_executable;
            (
                len,
                if tokens.secure && !alone_at_start {
                    None
                } else {
                    tokens.origin
                },
            )
        } else if let len @ 1.. = token_len(after, "PLATFORM") {
            (len, tokens.platform)
        } else if let len @ 1.. = token_len(after, "LIB") {
            (len, Some(tokens.lib))
        } else {
            (0, None)
        };
        match (len, value) {
            (0, _) => out.push('$'),
            (_, Some(value)) => out.push_str(value),
            (_, None) => return None,
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    if check_trusted && !is_trusted(&out, tokens.trusted) {
        return None;
    }
    Some(out)
}

/// Secure mode's test for `$ORIGIN` paths of the main program: after normalising `.` and `..`, the
/// path must lie in a trusted (default) directory.
fn is_trusted(path: &str, trusted: &[String]) -> bool {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let normal = format!("/{}/", parts.join("/"));
    trusted.iter().any(|dir| {
        let dir = dir.trim_end_matches('/');
        normal.starts_with(&format!("{dir}/"))
    })
}

/// Splits a search path into the directory names the loader uses as keys: each expanded, trailing
/// slashes reduced to one (an empty element stays `""`, the current directory), duplicates kept in
/// first position only.
pub fn decompose(path: &str, separators: &[char], tokens: &Tokens) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for element in path.split(separators) {
        let dir = if element.is_empty() {
            String::new()
        } else {
            let Some(expanded) = expand(element, tokens) else {
                continue;
            };
            if expanded.is_empty() {
                continue;
            }
            normalize_slash(&expanded)
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// `a/b//` → `a/b/`, `/` stays `/`.
pub fn normalize_slash(dir: &str) -> String {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() && dir.starts_with('/') {
        "/".to_string()
    } else {
        format!("{trimmed}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secure: bool) -> Tokens<'static> {
        static TRUSTED: [String; 0] = [];
        Tokens {
            origin: Some("/opt/app/bin"),
            platform: Some("x86_64"),
            lib: "lib64",
            secure,
            is_executable: true,
            trusted: &TRUSTED,
        }
    }

    #[test]
    fn expands_tokens() {
        let t = tokens(false);
        assert_eq!(expand("$ORIGIN/../lib", &t).unwrap(), "/opt/app/bin/../lib");
        assert_eq!(expand("${ORIGIN}/x", &t).unwrap(), "/opt/app/bin/x");
        assert_eq!(
            expand("/usr/$LIB/$PLATFORM", &t).unwrap(),
            "/usr/lib64/x86_64"
        );
        assert_eq!(expand("/a/$ORIGINAL", &t).unwrap(), "/a/$ORIGINAL");
        assert_eq!(expand("/a/$FOO", &t).unwrap(), "/a/$FOO");
    }

    #[test]
    fn drops_unknown_platform_and_untrusted_origin() {
        let t = Tokens {
            platform: None,
            ..tokens(false)
        };
        assert_eq!(expand("/x/$PLATFORM", &t), None);
        assert_eq!(expand("$ORIGIN/lib", &tokens(true)), None);
        assert_eq!(expand("/x/$ORIGIN", &tokens(true)), None);
    }

    #[test]
    fn decomposes_like_fillin_rpath() {
        let t = tokens(false);
        let dirs = decompose("/a//:/b:/a:::rel", &[':'], &t);
        assert_eq!(dirs, ["/a/", "/b/", "", "rel/"]);
        assert_eq!(decompose("/", &[':'], &t), ["/"]);
    }
}
