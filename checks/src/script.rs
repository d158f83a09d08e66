//! A script line's words as keepalived splits them (its `alloc_strvec_quoted_escaped`): blanks
//! separate words; `"…"` and `'…'` quote, also in the middle of a word; a backslash escapes
//! everywhere, inside either quote too, with C's escapes (`\n`, `\t`, `\x41`, `\101`, `\cA`, …).
//!
//! One splitter for every script keepalived runs (`vrrp_script`, notify lines, `MISC_CHECK`,
//! a virtual server's scripts): what the config check reports, what the dumps show and what
//! runs are the same words.

use thiserror::Error;

/// Why a script line has no words: keepalived then leaves the script unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LineError {
    /// A quote opened and never closed (keepalived: "String '…': missing terminating '").
    #[error("missing terminating {0}")]
    Unterminated(char),
    /// A `\` ends the line (keepalived: "Missing escape char at end").
    #[error("missing escape char at end")]
    TrailingEscape,
}

/// The words of `line`; an empty line has none.
pub fn words(line: &str) -> Result<Vec<String>, LineError> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    // keepalived finds a quote unterminated only when plain text follows the last thing it
    // read in it (the opening quote or an escape): `/bin/x "` is `/bin/x` and an empty word.
    let mut text_after = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match (quote, c) {
            (_, '\\') => {
                let (ch, used) = escape(&chars[i..]);
                let ch = ch.ok_or(LineError::TrailingEscape)?;
                word.get_or_insert_with(String::new).push(ch);
                text_after = false;
                i += used;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => {
                word.get_or_insert_with(String::new).push(c);
                text_after = true;
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                text_after = false;
                word.get_or_insert_with(String::new);
            }
            (None, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}') => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    match quote {
        Some(q) if text_after => Err(LineError::Unterminated(q)),
        _ => Ok(out.into_iter().chain(word).collect()),
    }
}

/// The character a `\` stands for, given what follows it, and how many of those characters it
/// used; `None` when nothing follows. Values past a byte wrap as keepalived's `char` does.
fn escape(rest: &[char]) -> (Option<char>, usize) {
    let Some(&c) = rest.first() else {
        return (None, 0);
    };
    let byte = |v: u32| char::from((v & 0xff) as u8);
    let radix_run = |skip: usize, max: usize, radix: u32| {
        let n = rest[skip..]
            .iter()
            .take(max)
            .take_while(|c| c.is_digit(radix))
            .count();
        let v = rest[skip..skip + n].iter().fold(0u32, |v, d| {
            ((v << radix.ilog2()) | d.to_digit(radix).unwrap_or(0)) & 0xff
        });
        (Some(byte(v)), skip + n)
    };
    match c {
        'x' if rest.get(1).is_some_and(char::is_ascii_hexdigit) => radix_run(1, usize::MAX, 16),
        '0'..='7' => radix_run(0, 3, 8),
        'c' if rest.len() > 1 => (Some(byte(u32::from(rest[1]) & 0x1f)), 2),
        'a' => (Some('\u{7}'), 1),
        'b' => (Some('\u{8}'), 1),
        'E' => (Some('\u{1b}'), 1),
        'f' => (Some('\u{c}'), 1),
        'n' => (Some('\n'), 1),
        'r' => (Some('\r'), 1),
        't' => (Some('\t'), 1),
        'v' => (Some('\u{b}'), 1),
        other => (Some(other), 1),
    }
}

/// A line that [`words`] splits back into `words`: each word single-quoted, its `\\` and `'`
/// escaped.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            format!(
                "'{}'",
                w.as_ref().replace('\\', "\\\\").replace('\'', "\\'")
            )
        })
        .collect();
    quoted.join(" ")
}

/// A script as keepalived names it in messages (its `cmd_str`): each word in single quotes.
pub fn cmd_str<S: AsRef<str>>(words: &[S]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{}'", w.as_ref())).collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(line: &str) -> Vec<String> {
        words(line).unwrap()
    }

    #[test]
    fn quotes_group_and_join_within_a_word() {
        assert_eq!(
            w(r#"/bin/check "a b" c\ d 'e'"#),
            ["/bin/check", "a b", "c d", "e"]
        );
        assert_eq!(
            w(r#"  /bin/sh -c 'exit 1'  x "a b"c"#),
            ["/bin/sh", "-c", "exit 1", "x", "a bc"]
        );
        assert_eq!(w("a ''"), ["a", ""]);
        assert!(w(" \t ").is_empty());
    }

    /// keepalived escapes inside single quotes too, with C's escapes.
    #[test]
    fn escapes_everywhere() {
        assert_eq!(w(r"'\x41\n' \101\cA \q \\"), ["A\n", "A\u{1}", "q", "\\"]);
        assert_eq!(w(r#""a\"b""#), ["a\"b"]);
        assert_eq!(w(r"\x"), ["x"], "\\x without a hex digit is an x");
        assert_eq!(
            w(r"\x4142"),
            ["B"],
            "hex digits run on, the value wraps to a byte"
        );
    }

    #[test]
    fn an_unfinished_line_has_no_words() {
        assert_eq!(words("/bin/x 'abc"), Err(LineError::Unterminated('\'')));
        assert_eq!(words("/bin/x \"abc"), Err(LineError::Unterminated('"')));
        assert_eq!(words(r"/bin/x abc\"), Err(LineError::TrailingEscape));
        // Nothing after the opening quote (or after an escape in it): keepalived ends the word.
        assert_eq!(w("/bin/x \""), ["/bin/x", ""]);
        assert_eq!(w(r"/bin/x 'a\x41"), ["/bin/x", "aA"]);
    }

    proptest::proptest! {
        #[test]
        fn join_is_split_back_into_its_words(ws in proptest::collection::vec(".*", 0..5)) {
            proptest::prop_assert_eq!(words(&join(&ws)).unwrap(), ws);
        }
    }

    #[test]
    fn messages_quote_each_word() {
        assert_eq!(cmd_str(&w("/bin/x 'a b'")), "'/bin/x' 'a b'");
    }
}
