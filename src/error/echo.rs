//! [`echo`]: how much of untrusted input an error message or a log line may repeat, and in
//! what form.

/// How much of a rejected input an error repeats; the rest is cut so logs stay bounded.
const MAX_ECHO: usize = 64;

/// Untrusted input, cut to a bounded length and made safe to print anywhere.
///
/// Every character Rust's `{:?}` would escape, except quotes and backslashes, is written
/// escaped (`\n`, `\r`, `\u{1b}`, `\u{202e}`...): control characters, line and paragraph
/// separators, bidirectional overrides and other invisible ones. So the text cannot end
/// a log line and forge the next, drive a terminal, or hide what it says, whether it is
/// printed with `{}` or `{:?}`. The budget counts characters as written, escapes
/// included, so input made of escapes (`\u{3347a}` is nine characters) cannot blow up a
/// message either.
pub(crate) fn echo(input: &str) -> String {
    echo_within(input, MAX_ECHO)
}

/// [`echo`] with a budget of `max` written characters (a description may say more than a
/// rejected value).
pub(crate) fn echo_within(input: &str, max: usize) -> String {
    let mut out = String::new();
    let mut budget = max;
    for c in input.chars() {
        let escaped = c.escape_debug();
        let plain = escaped.len() == 1 || matches!(c, '"' | '\'' | '\\');
        let written = if plain { 1 } else { escaped.len() };
        if written > budget {
            out.push('…');
            return out;
        }
        budget -= written;
        if plain {
            out.push(c);
        } else {
            out.extend(escaped);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_could_act_on_a_terminal_or_a_log_is_escaped_and_the_rest_kept() {
        let shown = echo("a\nb\r\u{1b}[2J\u{7}\u{0}\u{85}\u{2028}\u{202e}\t\"'\\ é 東");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(
            shown,
            r#"a\nb\r\u{1b}[2J\u{7}\0\u{85}\u{2028}\u{202e}\t"'\ é 東"#
        );
    }

    #[test]
    fn the_budget_counts_what_is_written() {
        assert_eq!(echo(&"x".repeat(64)), "x".repeat(64));
        assert_eq!(echo(&"x".repeat(65)), format!("{}…", "x".repeat(64)));
        // Each `\u{3347a}` written is nine characters: seven fit in 64.
        let shown = echo(&"\u{3347a}".repeat(100));
        assert_eq!(shown, format!("{}…", r"\u{3347a}".repeat(7)));
        assert_eq!(echo_within("a\nb", 3), r"a\n…");
    }
}
