//! Reading ARCHITECTURE.md: the paths its codemap names, the crates its headings name, and
//! the files its `unsafe` invariant lists (the convention is in the [module docs](super)).

use std::path::Path;

use super::{CODEMAP, INVARIANTS, UNSAFE_PHRASE};

/// A path the codemap names, resolved against the repository root.
pub(super) struct Named {
    /// The line of ARCHITECTURE.md it is on.
    pub(super) line: usize,
    /// As written.
    pub(super) written: String,
    /// Relative to the repository root, `/`-separated, without a trailing `/`.
    pub(super) path: String,
    /// Written with a trailing `/`: a directory.
    pub(super) dir: bool,
    /// How it was resolved, for messages (`inside \`client/\``).
    pub(super) how: String,
}

/// What the check reads from ARCHITECTURE.md.
#[derive(Default)]
pub(super) struct Doc {
    /// The crate directories the codemap's `###` headings name: (line, directory).
    pub(super) crates: Vec<(usize, String)>,
    /// Every path the codemap names.
    pub(super) named: Vec<Named>,
    /// The files the sentence starting with [`UNSAFE_PHRASE`] (in the [`INVARIANTS`]
    /// section) lists: (line, path), or `None` if there is no such sentence.
    pub(super) unsafe_files: Option<Vec<(usize, String)>>,
    /// Things the document gets wrong in form: (line, message).
    pub(super) problems: Vec<(usize, String)>,
}

/// A heading, a bullet, or a paragraph: the unit a directory's scope ends with.
struct Block {
    /// 3 for a `###` heading, and so on; 0 for bullets and paragraphs.
    heading: usize,
    /// (line, text) of each line.
    lines: Vec<(usize, String)>,
}

/// An inline code span.
struct Span {
    /// The line of ARCHITECTURE.md it starts on.
    line: usize,
    /// Where its backticks start and end in [`Block::text`].
    start: usize,
    end: usize,
    /// Its contents, trimmed.
    code: String,
}

impl Block {
    /// The block's lines, each ending in a newline.
    fn text(&self) -> String {
        self.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// The block's inline code spans (which may run over a line break).
    fn code_spans(&self) -> Vec<Span> {
        let text = self.text();
        let line_at = |offset: usize| {
            let newlines = text[..offset].matches('\n').count();
            self.lines[newlines.min(self.lines.len() - 1)].0
        };
        let b = text.as_bytes();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'`' {
                i += 1;
                continue;
            }
            let run = b[i..].iter().take_while(|&&c| c == b'`').count();
            let open = i + run;
            // The closing run has exactly as many backticks.
            let mut j = open;
            let close = loop {
                let Some(k) = text[j..].find('`').map(|k| j + k) else { break None };
                let n = b[k..].iter().take_while(|&&c| c == b'`').count();
                if n == run {
                    break Some(k);
                }
                j = k + n;
            };
            match close {
                Some(k) => {
                    let code = text[open..k].trim().to_owned();
                    spans.push(Span { line: line_at(i), start: i, end: k + run, code });
                    i = k + run;
                }
                None => i = open,
            }
        }
        spans
    }
}

/// The end of the sentence that `text[from..]` starts: the first `.` followed by white
/// space (or the end) that is not inside a code span.
fn sentence_end(text: &str, from: usize, spans: &[Span]) -> usize {
    let b = text.as_bytes();
    (from..b.len())
        .find(|&i| {
            b[i] == b'.'
                && b.get(i + 1).is_none_or(u8::is_ascii_whitespace)
                && !spans.iter().any(|s| s.start <= i && i < s.end)
        })
        .unwrap_or(b.len())
}

/// Splits markdown into blocks, leaving out fenced code; `(section, block)` where section
/// is the title of the `##` section the block is in.
fn blocks(text: &str) -> Vec<(String, Block)> {
    let mut out: Vec<(String, Block)> = Vec::new();
    let mut section = String::new();
    let mut fenced = false;
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            open = false;
            continue;
        }
        if fenced {
            continue;
        }
        if trimmed.is_empty() {
            open = false;
            continue;
        }
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if hashes > 0 && trimmed[hashes..].starts_with(' ') {
            if hashes <= 2 {
                section = trimmed[hashes..].trim().to_owned();
            }
            out.push((
                section.clone(),
                Block { heading: hashes, lines: vec![(n, trimmed[hashes..].to_owned())] },
            ));
            open = false;
            continue;
        }
        let bullet = trimmed.starts_with("- ")
            || trimmed.starts_with("* ")
            || trimmed.starts_with("+ ")
            || trimmed
                .split_once(". ")
                .is_some_and(|(d, _)| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        if bullet || !open {
            out.push((section.clone(), Block { heading: 0, lines: Vec::new() }));
            open = true;
        }
        if let Some((_, block)) = out.last_mut() {
            block.lines.push((n, line.to_owned()));
        }
    }
    out
}

/// A code span that the convention reads as a path: ends in `.rs` or `/`, and is made of
/// letters, digits, `_`, `-`, `.` and `/` only.
fn is_path(span: &str) -> bool {
    (span.ends_with(".rs") || span.ends_with('/'))
        && span.len() > 1
        && span.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
}

/// True for a path written from the repository root.
fn from_root(span: &str) -> bool {
    ["crates/", "xtask/", "fuzz/"].iter().any(|p| span.starts_with(p))
}

/// Reads ARCHITECTURE.md's text; `root` is the repository root (paths named relative to a
/// crate are looked up under its `src/` first, then under the crate directory).
pub(super) fn read(text: &str, root: &Path) -> Doc {
    let mut doc = Doc::default();
    let mut krate: Option<String> = None;
    for (section, block) in blocks(text) {
        if section == CODEMAP {
            codemap_block(&block, root, &mut krate, &mut doc);
        }
        if section != INVARIANTS {
            continue;
        }
        let text = block.text();
        if let Some(at) = text.find(UNSAFE_PHRASE) {
            let line = block.lines[0].0;
            if doc.unsafe_files.is_some() {
                doc.problems
                    .push((line, format!("a second sentence with {UNSAFE_PHRASE:?}: keep one")));
                continue;
            }
            let spans = block.code_spans();
            let end = sentence_end(&text, at + UNSAFE_PHRASE.len(), &spans);
            let files = spans
                .into_iter()
                .filter(|s| s.start > at && s.start < end && s.code.ends_with(".rs"))
                .filter(|s| is_path(&s.code))
                .map(|s| (s.line, s.code))
                .collect();
            doc.unsafe_files = Some(files);
        }
    }
    doc
}

/// One block of the codemap section: headings set the crate, paths are resolved.
fn codemap_block(block: &Block, root: &Path, krate: &mut Option<String>, doc: &mut Doc) {
    let spans = block.code_spans();
    if block.heading > 0 {
        if block.heading == 3 {
            for s in &spans {
                doc.crates.push((s.line, s.code.trim_end_matches('/').to_owned()));
            }
            *krate = match spans.as_slice() {
                [one] => Some(one.code.trim_end_matches('/').to_owned()),
                _ => None,
            };
        }
        return;
    }
    // The last directory named in this block: bare paths after it are inside it.
    let mut dir: Option<(String, String)> = None;
    for Span { line, code: span, .. } in spans {
        if !is_path(&span) {
            continue;
        }
        let trimmed = span.trim_end_matches('/');
        let (path, how) = if from_root(&span) {
            (trimmed.to_owned(), "from the repository root".to_owned())
        } else if let Some((d, written)) = &dir {
            (
                format!("{d}/{trimmed}"),
                format!("inside `{written}`, named before it in this bullet"),
            )
        } else if let Some(k) = krate.as_deref() {
            let in_src = format!("{k}/src/{trimmed}");
            if root.join(&in_src).exists() || !root.join(k).join(trimmed).exists() {
                (in_src, format!("in `{k}/src/`, the crate of its heading"))
            } else {
                (format!("{k}/{trimmed}"), format!("in `{k}/`, the crate of its heading"))
            }
        } else {
            doc.problems.push((
                line,
                format!(
                    "`{span}` has no crate to be relative to: write it from the repository \
                     root (`crates/...`), or put it under a `###` heading naming one crate"
                ),
            ));
            continue;
        };
        let is_dir = span.ends_with('/');
        if is_dir {
            dir = Some((path.clone(), span.clone()));
        }
        doc.named.push(Named { line, written: span, path, dir: is_dir, how });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_and_blocks() {
        let text = "# T\n\n## Codemap\n\n### `crates/a`\n\n\
                    - `x/`: `X` and\n  `y.rs`, ``z.rs``\n- `w.rs`\n\n\
                    para `p/`\n```\n`fenced.rs`\n```\n";
        let bs = blocks(text);
        let spans: Vec<Vec<String>> =
            bs.iter().map(|(_, b)| b.code_spans().into_iter().map(|s| s.code).collect()).collect();
        assert_eq!(
            spans,
            [
                vec![],
                vec![],
                vec!["crates/a"],
                vec!["x/", "X", "y.rs", "z.rs"],
                vec!["w.rs"],
                vec!["p/"]
            ]
        );
        assert_eq!(bs[3].0, "Codemap");
        assert_eq!(bs[3].1.code_spans()[2].line, 8, "the line a span is on");
        let b = &bs[3].1;
        assert_eq!(sentence_end(&b.text(), 0, &b.code_spans()), b.text().len(), "no sentence end");
        let text = "See `a.rs` and `b. c`. Then `d.rs`.";
        let block = Block { heading: 0, lines: vec![(1, text.to_owned())] };
        assert_eq!(sentence_end(&block.text(), 0, &block.code_spans()), 21);
        assert!(is_path("client/") && is_path("mod.rs") && !is_path("Kernel"));
        assert!(!is_path("<root>/.tmp/") && !is_path("*.rs") && !is_path("/"));
    }
}
