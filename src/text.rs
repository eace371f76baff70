//! Text from inputs, made safe to print.
//!
//! Section names, `.cmdline`, `.osrel`, event data and file names come from files nodeimg is
//! asked to examine, which may be hostile: printed raw, an escape sequence in them would draw
//! on the user's terminal (move the cursor, rewrite earlier lines, set the window title), and a
//! newline would split one line of output into two that look like nodeimg's own. So every
//! control character (C0, DEL, C1) is printed escaped, as Rust's `escape_debug` spells it
//! (`\u{1b}`, `\n`, `\r`).

use std::borrow::Cow;

fn is_control(c: char) -> bool {
    c.is_control()
}

/// `s` with every control character escaped (newlines too: one field stays one line).
pub fn clean(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// `s` with every control character but newline and tab escaped: for text nodeimg assembled
/// itself from lines (an error message), whose untrusted parts are escaped where they can be.
pub fn clean_keep_lines(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_control(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_control(c) && !keep(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("console=ttyS0"), "console=ttyS0");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        assert_eq!(clean("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(clean("x\ny\rz\u{7f}\u{9b}"), "x\\ny\\rz\\u{7f}\\u{9b}");
        assert_eq!(clean("é ünïcode stays"), "é ünïcode stays");
        assert_eq!(clean_keep_lines("line1\n\tline2\u{1b}]0;title\u{7}"), "line1\n\tline2\\u{1b}]0;title\\u{7}");
    }
}
