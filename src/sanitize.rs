//! Makes untrusted text (page titles, page text, server-supplied strings) safe to show on a terminal.
//!
//! A page can embed escape sequences that recolour, retitle or clear the user's terminal, and bidi
//! overrides or zero-width characters that make a line read differently from what it contains. Such
//! characters are dropped; runs of whitespace (including line breaks) become one space.

use std::borrow::Cow;

/// True for characters that must never reach a terminal from page-derived text.
fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}'              // BOM / zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation controls
        )
}

/// Collapses whitespace to single spaces, trims, and drops control and invisible characters.
pub fn clean(text: &str) -> Cow<'_, str> {
    let tidy = !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains("  ")
        && !text
            .chars()
            .any(|c| (c.is_whitespace() && c != ' ') || is_hidden_or_control(c));
    if tidy {
        return Cow::Borrowed(text);
    }
    let mut out = CleanText::new(usize::MAX);
    out.push(text);
    Cow::Owned(out.into_string())
}

/// Text accumulated piece by piece with whitespace collapsed and control/invisible characters
/// dropped, up to a limit in characters: the page preview is built this way while a body streams.
/// A space is written only once a visible character follows it, so the text never ends in one, and
/// the text counts as full (cut) once a visible character did not fit.
#[derive(Debug)]
pub struct CleanText {
    text: String,
    chars: usize,
    limit: usize,
    /// A word boundary seen since the last visible character.
    space: bool,
    /// A visible character did not fit.
    cut: bool,
}

impl CleanText {
    pub fn new(limit: usize) -> Self {
        CleanText {
            text: String::with_capacity(limit.min(256)),
            chars: 0,
            limit,
            space: false,
            cut: false,
        }
    }

    /// Appends `piece`; never a leading space, never two spaces in a row, never past the limit.
    pub fn push(&mut self, piece: &str) {
        let bytes = piece.as_bytes();
        let mut at = 0;
        while at < bytes.len() && !self.is_full() {
            // Printable ASCII, the bulk of most text, is copied a run at a time.
            let run = bytes[at..]
                .iter()
                .take_while(|b| b.is_ascii_graphic())
                .count();
            if run > 0 {
                let fits = run.min(self.room());
                self.text.push_str(&piece[at..at + fits]);
                self.chars += fits;
                self.cut = fits < run;
                at += run;
                continue;
            }
            let c = piece[at..]
                .chars()
                .next()
                .expect("a character at a boundary");
            at += c.len_utf8();
            if c.is_whitespace() {
                self.push_break();
            } else if !is_hidden_or_control(c) {
                if self.room() > 0 {
                    self.text.push(c);
                    self.chars += 1;
                } else {
                    self.cut = true;
                }
            }
        }
    }

    /// Separates what comes next from what came before (a word boundary, e.g. between blocks).
    pub fn push_break(&mut self) {
        self.space = !self.text.is_empty();
    }

    /// How many visible characters fit now, after writing the pending space if one and a character
    /// after it still fit.
    fn room(&mut self) -> usize {
        if std::mem::take(&mut self.space) {
            if self.chars + 1 >= self.limit {
                return 0;
            }
            self.text.push(' ');
            self.chars += 1;
        }
        self.limit - self.chars
    }

    /// True once the text was cut (or when its limit is zero): nothing more goes in.
    pub fn is_full(&self) -> bool {
        self.cut || self.limit == 0
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_overrides_are_dropped() {
        assert_eq!(
            clean("a\x1b[31mred\x07 \u{202E}gnp.exe"),
            "a[31mred gnp.exe"
        );
        assert_eq!(clean("zero\u{200B}width"), "zerowidth");
    }

    #[test]
    fn whitespace_collapses_and_trims() {
        assert_eq!(clean("  two\n\n lines\t "), "two lines");
        assert!(matches!(clean("already clean"), Cow::Borrowed(_)));
    }

    #[test]
    fn clean_text_stops_at_the_limit_in_characters() {
        let mut out = CleanText::new(9);
        out.push("  héllo   wörld ");
        assert!(out.is_full());
        out.push("more");
        assert_eq!(out.into_string(), "héllo wör");
    }

    #[test]
    fn ascii_runs_stop_at_the_limit_and_controls_between_them_go() {
        let mut out = CleanText::new(8);
        out.push("ab\x07cd\x0Bef\u{202E}gh-ij");
        assert_eq!(out.into_string(), "abcd efg");
    }

    #[test]
    fn a_text_that_fits_exactly_is_not_cut() {
        let mut out = CleanText::new(5);
        out.push("lorem ");
        out.push_break();
        assert!(!out.is_full());
        out.push("\n");
        assert!(!out.is_full(), "spaces alone never cut the text");
        out.push("x");
        assert!(out.is_full());
        assert_eq!(out.into_string(), "lorem");
    }

    #[test]
    fn breaks_separate_words_once() {
        let mut out = CleanText::new(100);
        out.push_break();
        out.push("a");
        out.push_break();
        out.push_break();
        out.push(" b ");
        assert_eq!(out.into_string(), "a b");
    }
}
