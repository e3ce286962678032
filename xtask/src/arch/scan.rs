//! Reading Rust source just well enough for the architecture check: where the `unsafe`
//! keyword appears (not in comments, strings, character literals or longer identifiers such
//! as the lint name `unsafe_code`), and whether a long file explains itself.

/// Lines (1-based) on which the `unsafe` keyword appears in code.
pub(super) fn unsafe_lines(src: &str) -> Vec<usize> {
    let code = blank_comments_and_literals(src);
    let mut lines = Vec::new();
    for (i, line) in code.lines().enumerate() {
        if line.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == "unsafe") {
            lines.push(i + 1);
        }
    }
    lines
}

/// True if one of the first `head` lines is a `//` comment (plain, `//!` or `///`) holding
/// `phrase` followed by some reason.
pub(super) fn explains_length(src: &str, phrase: &str, head: usize) -> bool {
    src.lines().take(head).any(|line| {
        let line = line.trim_start();
        line.starts_with("//")
            && line
                .find(phrase)
                .is_some_and(|at| line[at + phrase.len()..].chars().any(char::is_alphanumeric))
    })
}

/// `src` with every comment and every string, byte-string and character literal replaced
/// by spaces; newlines are kept, so line numbers stay right. Lifetimes and labels (`'a`)
/// are left alone, and so are raw identifiers (`r#unsafe` is blanked: it names an
/// identifier, not the keyword).
pub(super) fn blank_comments_and_literals(src: &str) -> String {
    let s: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, chars: &[char]| {
        out.extend(chars.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        let prev_ident = i > 0 && ident(s[i - 1]);
        let end = if c == '/' && next == Some('/') {
            // Line comment, up to (not including) the newline.
            s[i..].iter().position(|&c| c == '\n').map_or(s.len(), |n| i + n)
        } else if c == '/' && next == Some('*') {
            block_comment_end(&s, i)
        } else if c == '"' {
            string_end(&s, i + 1)
        } else if !prev_ident && let Some((hashes, quote)) = raw_string_start(&s, i) {
            raw_string_end(&s, quote + 1, hashes)
        } else if !prev_ident
            && c == 'r'
            && next == Some('#')
            && s.get(i + 2).is_some_and(|&c| ident(c))
        {
            // A raw identifier: blank it whole.
            let len = s[i + 2..].iter().position(|&c| !ident(c)).unwrap_or(s.len() - i - 2);
            i + 2 + len
        } else if c == '\'' {
            match char_literal_end(&s, i) {
                Some(end) => end,
                None => {
                    out.push(c);
                    i += 1;
                    continue;
                }
            }
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        blank(&mut out, &s[i..end]);
        i = end;
    }
    out
}

/// The index after the `*/` that closes the (nested) block comment opening at `start`.
fn block_comment_end(s: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < s.len() {
        match (s[i], s[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    s.len()
}

/// The index after the `"` that closes a string whose contents start at `from`.
fn string_end(s: &[char], from: usize) -> usize {
    let mut i = from;
    while i < s.len() {
        match s[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// If a raw string (`r"`, `r#"`, `br"`, `cr#"`, ...) starts at `i`: its number of `#`s and
/// the index of its opening quote.
fn raw_string_start(s: &[char], i: usize) -> Option<(usize, usize)> {
    let r = match s[i] {
        'r' => i,
        'b' | 'c' if s.get(i + 1) == Some(&'r') => i + 1,
        _ => return None,
    };
    let hashes = s[r + 1..].iter().take_while(|&&c| c == '#').count();
    let quote = r + 1 + hashes;
    (s.get(quote) == Some(&'"')).then_some((hashes, quote))
}

/// The index after the `"` and `hashes` `#`s that close a raw string whose contents start
/// at `from`.
fn raw_string_end(s: &[char], from: usize, hashes: usize) -> usize {
    let mut i = from;
    while i < s.len() {
        if s[i] == '"' && s[i + 1..].iter().take(hashes).filter(|&&c| c == '#').count() == hashes {
            return i + 1 + hashes;
        }
        i += 1;
    }
    s.len()
}

/// If a character literal (`'x'`, `'\n'`, `'\''`, `'\u{..}'`; after `b` too) starts at `i`,
/// the index after it; `None` for a lifetime or a label (`'a`, `'static`).
fn char_literal_end(s: &[char], i: usize) -> Option<usize> {
    match s.get(i + 1)? {
        '\\' => {
            // Skip the escaped character, then up to the closing quote.
            let close = s.get(i + 3..)?.iter().position(|&c| c == '\'')?;
            Some(i + 3 + close + 1)
        }
        _ if s.get(i + 2) == Some(&'\'') => Some(i + 3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_keyword_in_code_only() {
        let src = "#![forbid(unsafe_code)]\n\
                   // unsafe in a comment\n\
                   /* unsafe /* nested */ unsafe */ fn a() {}\n\
                   const S: &str = \"unsafe \\\" unsafe\";\n\
                   const R: &str = r#\"unsafe \" unsafe\"#;\n\
                   const B: &[u8] = br\"unsafe\";\n\
                   const C: char = '\"'; fn b() { unsafe { f() } }\n\
                   fn c<'a>(x: &'a u8) -> &'a u8 { x } const Q: char = '\\'';\n\
                   #[allow(clippy::undocumented_unsafe_blocks)] fn r#unsafe() {}\n\
                   unsafe impl Send for T {}\n\
                   /// `unsafe` in a doc comment\n\
                   let s = \"multi\n\
                   line unsafe\";\n\
                   pub unsafe fn d() {}\n";
        assert_eq!(unsafe_lines(src), vec![7, 10, 14]);
    }

    #[test]
    fn blanking_keeps_lines_and_code() {
        let src = "let a = 'x'; // c\nlet b = \"s\ns\"; 'l: loop {}\n";
        let out = blank_comments_and_literals(src);
        assert_eq!(out.lines().count(), src.lines().count());
        assert_eq!(out.len(), src.len());
        assert!(out.contains("'l: loop {}"));
        assert!(!out.contains('x') && !out.contains('c') && !out.contains('s'));
    }

    #[test]
    fn long_file_comment() {
        let phrase = "This file is long because";
        let ok = "//! Docs.\n// This file is long because it holds one state machine.\n";
        assert!(explains_length(ok, phrase, 10));
        assert!(!explains_length(ok, phrase, 1), "only the first lines count");
        assert!(!explains_length("// This file is long because\nfn f() {}\n", phrase, 10));
        assert!(!explains_length("const X: &str = \"This file is long because x\";\n", phrase, 10));
    }
}
