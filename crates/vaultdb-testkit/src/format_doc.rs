//! [`FormatDoc`]: docs/FORMAT.md's worked examples, for the tests that recompute them from
//! the code.

/// The text of docs/FORMAT.md, read from the workspace, and the example values it gives.
///
/// An example value stands on a line `label: value` inside a code block; a long value is
/// wrapped onto continuation lines, up to an empty line, a line with a colon or the end of
/// the block, and is read back joined without separators.
#[derive(Clone, Debug)]
pub struct FormatDoc {
    text: String,
}

impl FormatDoc {
    /// Reads docs/FORMAT.md.
    ///
    /// # Panics
    /// If the file cannot be read.
    pub fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FORMAT.md");
        Self { text: std::fs::read_to_string(path).expect("docs/FORMAT.md exists") }
    }

    /// The value of `label`, continuation lines joined.
    ///
    /// # Panics
    /// If the document has no line for `label`.
    pub fn value(&self, label: &str) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{label}:")))
            .unwrap_or_else(|| panic!("docs/FORMAT.md lacks the example line {label:?}"));
        let mut text = lines[start].trim_start()[label.len() + 1..].trim().to_owned();
        for l in &lines[start + 1..] {
            let l = l.trim();
            if l.is_empty() || l.contains(':') || l.starts_with("```") {
                break;
            }
            text.push_str(l);
        }
        text
    }

    /// Asserts that the document gives each `(label, value)` (a value's line breaks are where
    /// the document wraps it); `context` is added to the failure message. With the
    /// environment variable `VAULTDB_PRINT_EXAMPLE` set, first prints the values as the
    /// document should give them.
    ///
    /// # Panics
    /// On the first value the document gives otherwise.
    pub fn check<L: AsRef<str>>(&self, values: &[(L, String)], context: &str) {
        if std::env::var_os("VAULTDB_PRINT_EXAMPLE").is_some() {
            for (label, value) in values {
                let sep = if value.contains('\n') { "\n" } else { " " };
                println!("{}:{sep}{value}", label.as_ref());
            }
        }
        for (label, value) in values {
            let label = label.as_ref();
            let want = value.replace('\n', "");
            assert_eq!(self.value(label), want, "docs/FORMAT.md example {label:?} {context}");
        }
    }
}
