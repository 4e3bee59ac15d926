//! Text that people read as written: names on consent pages, reasons in an
//! approver's inbox. No control characters, no bidirectional overrides or
//! isolates (which make text read differently than it was written), and no
//! invisible characters that would pass for content.

/// True when `c` is invisible or reorders text: format characters such as
/// zero-width spaces and joiners, bidi controls, soft hyphens, blank
/// look-alikes and tag characters.
fn hidden(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{2800}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{e0000}'..='\u{e007f}')
}

/// At most `max` characters, none of them control (but newlines and tabs
/// when `multiline`) or hidden.
pub fn readable(s: &str, max: usize, multiline: bool) -> bool {
    s.chars().count() <= max
        && !s.chars().any(|c| {
            hidden(c) || (c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')))
        })
}

/// How many characters a reader sees (whitespace and hidden ones aside):
/// what a minimum length should count.
pub fn visible_len(s: &str) -> usize {
    s.chars()
        .filter(|c| !c.is_whitespace() && !hidden(*c) && !c.is_control())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_reordering_characters_are_refused() {
        assert!(readable("Payroll (EU)", 200, false));
        assert!(!readable("Payroll\nseq 99", 200, false));
        assert!(readable("line one\nline two", 200, true));
        assert!(!readable("EVIL\u{1b}[2J", 200, true));
        assert!(!readable("abc\u{202e}fed", 200, true));
        assert!(!readable("zero\u{200b}width", 200, true));
        assert!(!readable("tag\u{e0041}", 200, true));
        assert!(!readable(&"x".repeat(201), 200, false));
    }

    #[test]
    fn only_visible_characters_count_towards_a_minimum() {
        assert_eq!(visible_len(&"\u{200b}".repeat(10)), 0);
        assert_eq!(visible_len(&"\u{2800}".repeat(10)), 0);
        assert_eq!(visible_len(" fix it\u{3000}"), 5);
    }
}
