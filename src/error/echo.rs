//! [`echo`]: how much of untrusted input an error message may repeat.

/// How much of a rejected input an error repeats; the rest is cut so logs stay bounded.
const MAX_ECHO: usize = 64;

/// Cuts untrusted input to a bounded, printable length for an error message.
///
/// The budget counts characters as `{:?}` will print them, so input full of escapes
/// (`\u{3347a}` is ten characters) cannot blow up a message either.
pub(crate) fn echo(input: &str) -> String {
    let mut out = String::new();
    let mut budget = MAX_ECHO;
    for c in input.chars() {
        let printed = c.escape_debug().count();
        if printed > budget {
            out.push('…');
            return out;
        }
        budget -= printed;
        out.push(c);
    }
    out
}
