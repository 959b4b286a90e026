//! A streaming HTML tokenizer for the title/preview pass: text, tags (with attributes only when
//! asked for) and the modes that change how text is read (`<script>`, `<title>`, `<plaintext>`),
//! fed a piece at a time and resumable at any byte.
//!
//! It follows the WHATWG tokenizer's states for everything that decides what is text and what is
//! markup (tags and quoted attribute values, comments with their short forms, bogus comments and
//! doctypes, raw-text and RCDATA elements, character references, CDATA in foreign content), and
//! leaves out what only builds a tree or reports parse errors. A general tokenizer (html5ever's)
//! costs ~19 µs for the first 2 KB of a page, since it hands over one character at a time; this
//! one skips to the next `<` or `&` with `memchr` and costs a tenth of that, which is most of the
//! CPU time scrape spends per page in terminal mode. Pages that need a real DOM (`--select`,
//! `--links`, `--text`, expectations) still get html5ever's parser.

use html5ever::data::{C1_REPLACEMENTS, NAMED_ENTITIES};

/// Tag names kept, in bytes; a longer name is none of the names the pass looks for.
const MAX_NAME: usize = 16;
/// Characters of a named character reference looked at (the longest name has 32).
const MAX_REFERENCE: usize = 33;
/// Bytes kept of one attribute's name or value, when attributes are collected.
const MAX_ATTRIBUTE: usize = 1024;

/// How the text after a start tag is to be read, as the element demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Ordinary markup.
    Markup,
    /// Text with character references, up to the element's end tag (`<title>`, `<textarea>`).
    Rcdata,
    /// Text as it is, up to the element's end tag (`<script>`, `<style>`, `<noscript>`, …).
    Rawtext,
    /// Everything to the end of the input is text (`<plaintext>`).
    Plaintext,
}

/// A tag as the sink sees it.
pub struct Tag<'a> {
    /// Lower-cased; empty when longer than any name of interest.
    pub name: &'a str,
    pub end: bool,
    pub self_closing: bool,
    /// Name (lower-cased) and value of each attribute, when the sink asked for them.
    pub attributes: &'a [(String, String)],
}

/// Receives what the lexer finds.
pub trait Sink {
    /// Text outside markup, character references decoded (not called inside raw text).
    fn text(&mut self, text: &str);
    /// A tag; for a start tag, the answer says how the element's content is read.
    fn tag(&mut self, tag: &Tag<'_>) -> Content;
    /// Whether the tag named so needs its attributes collected.
    fn wants_attributes(&self, _name: &str) -> bool {
        false
    }
    /// Whether the open element is in foreign content (SVG, MathML), where `<![CDATA[` is text.
    fn in_foreign_content(&self) -> bool {
        false
    }
    /// True once the sink has what it needs: the lexer stops feeding it.
    fn is_done(&self) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    TagOpen,
    EndTagOpen,
    TagName,
    BeforeAttributeName,
    AttributeName,
    AfterAttributeName,
    BeforeAttributeValue,
    AttributeValue(u8),
    UnquotedAttributeValue,
    AfterAttributeValue,
    SelfClosing,
    /// After `<!`, deciding between a comment, CDATA and a bogus comment (`pending` holds what
    /// was seen).
    MarkupDeclaration,
    CommentStart,
    CommentStartDash,
    Comment,
    CommentEndDash,
    CommentEnd,
    CommentEndBang,
    BogusComment,
    Cdata,
    CdataBracket,
    CdataEnd,
    /// `<` seen in raw text or RCDATA: maybe the element's end tag.
    RawLessThan,
    RawEndTagOpen,
    RawEndTagName,
    /// `&` seen: a character reference is collected in `pending`.
    Reference,
}

/// A tag name being read: up to `MAX_NAME` ASCII characters, lower-cased.
#[derive(Clone, Default)]
struct Name {
    text: String,
    /// Longer than `MAX_NAME`, or not ASCII: none of the names the pass looks for.
    other: bool,
}

impl Name {
    fn clear(&mut self) {
        self.text.clear();
        self.other = false;
    }

    fn push(&mut self, byte: u8) {
        if self.text.len() == MAX_NAME || !byte.is_ascii() {
            self.other = true;
        } else {
            self.text.push(char::from(byte.to_ascii_lowercase()));
        }
    }

    fn as_str(&self) -> &str {
        if self.other { "" } else { &self.text }
    }
}

/// The tokenizer's state between pieces of input.
pub struct Lexer {
    state: State,
    /// How text is read where no tag is open.
    content: Content,
    /// The element whose end tag ends raw text or RCDATA.
    raw_end: Name,
    name: Name,
    end: bool,
    self_closing: bool,
    collect: bool,
    attributes: Vec<(String, String)>,
    /// A character reference, a `<!` declaration or a raw-text end tag being read.
    pending: String,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            state: State::Text,
            content: Content::Markup,
            raw_end: Name::default(),
            name: Name::default(),
            end: false,
            self_closing: false,
            collect: false,
            attributes: Vec::new(),
            pending: String::new(),
        }
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

impl Lexer {
    /// Reads `input`; true once the sink is done (the rest of the input is not looked at).
    pub fn feed(&mut self, input: &str, sink: &mut impl Sink) -> bool {
        let bytes = input.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let byte = bytes[i];
            match self.state {
                // Every tag ends here, so this is where the sink can have become done.
                State::Text if sink.is_done() => return true,
                State::Text => {
                    let rest = &bytes[i..];
                    let found = match self.content {
                        Content::Markup | Content::Rcdata => memchr::memchr2(b'<', b'&', rest),
                        Content::Rawtext => memchr::memchr(b'<', rest),
                        Content::Plaintext => None,
                    };
                    let end = found.map_or(bytes.len(), |at| i + at);
                    if end > i && self.content != Content::Rawtext {
                        sink.text(&input[i..end]);
                    }
                    i = end;
                    if let Some(&byte) = bytes.get(i) {
                        i += 1;
                        match (byte, self.content) {
                            (b'&', _) => {
                                self.pending.clear();
                                self.state = State::Reference;
                            }
                            (_, Content::Markup) => self.state = State::TagOpen,
                            _ => self.state = State::RawLessThan,
                        }
                    }
                    continue;
                }
                State::TagOpen => match byte {
                    b'!' => {
                        self.pending.clear();
                        self.state = State::MarkupDeclaration;
                    }
                    b'/' => self.state = State::EndTagOpen,
                    b'?' => {
                        self.state = State::BogusComment;
                        continue;
                    }
                    _ if byte.is_ascii_alphabetic() => {
                        self.start_tag(false);
                        continue;
                    }
                    _ => {
                        sink.text("<");
                        self.state = State::Text;
                        continue;
                    }
                },
                State::EndTagOpen => match byte {
                    b'>' => self.state = State::Text,
                    _ if byte.is_ascii_alphabetic() => {
                        self.start_tag(true);
                        continue;
                    }
                    _ => {
                        self.state = State::BogusComment;
                        continue;
                    }
                },
                State::TagName => match byte {
                    _ if is_space(byte) => self.state = State::BeforeAttributeName,
                    b'/' => self.state = State::SelfClosing,
                    b'>' => self.emit_tag(sink),
                    _ => {
                        let name = bytes[i..]
                            .iter()
                            .take_while(|&&b| !is_space(b) && b != b'/' && b != b'>');
                        for &b in name {
                            self.name.push(b);
                            i += 1;
                        }
                        continue;
                    }
                },
                State::BeforeAttributeName => match byte {
                    _ if is_space(byte) => {}
                    b'/' | b'>' => {
                        self.state = State::AfterAttributeName;
                        continue;
                    }
                    _ => {
                        self.start_attribute(sink);
                        self.state = State::AttributeName;
                        if byte != b'=' {
                            continue;
                        }
                        self.push_attribute_name(byte);
                    }
                },
                State::AttributeName => match byte {
                    _ if is_space(byte) || byte == b'/' || byte == b'>' => {
                        self.state = State::AfterAttributeName;
                        continue;
                    }
                    b'=' => self.state = State::BeforeAttributeValue,
                    _ if self.collect => self.push_attribute_name(byte),
                    _ => {
                        i += bytes[i..]
                            .iter()
                            .take_while(|&&b| !is_space(b) && !matches!(b, b'/' | b'>' | b'='))
                            .count();
                        continue;
                    }
                },
                State::AfterAttributeName => match byte {
                    _ if is_space(byte) => {}
                    b'/' => self.state = State::SelfClosing,
                    b'=' => self.state = State::BeforeAttributeValue,
                    b'>' => self.emit_tag(sink),
                    _ => {
                        self.start_attribute(sink);
                        self.state = State::AttributeName;
                        continue;
                    }
                },
                State::BeforeAttributeValue => match byte {
                    _ if is_space(byte) => {}
                    b'"' | b'\'' => self.state = State::AttributeValue(byte),
                    b'>' => self.emit_tag(sink),
                    _ => {
                        self.state = State::UnquotedAttributeValue;
                        continue;
                    }
                },
                State::AttributeValue(quote) => {
                    let rest = &input[i..];
                    let end = memchr::memchr(quote, rest.as_bytes()).unwrap_or(rest.len());
                    self.push_attribute_value(&rest[..end]);
                    i += end;
                    if i < bytes.len() {
                        i += 1;
                        self.state = State::AfterAttributeValue;
                    }
                    continue;
                }
                State::UnquotedAttributeValue => match byte {
                    _ if is_space(byte) => self.state = State::BeforeAttributeName,
                    b'>' => self.emit_tag(sink),
                    _ => {
                        let rest = &input[i..];
                        let end = rest
                            .bytes()
                            .position(|b| is_space(b) || b == b'>')
                            .unwrap_or(rest.len());
                        self.push_attribute_value(&rest[..end]);
                        i += end;
                        continue;
                    }
                },
                State::AfterAttributeValue => match byte {
                    _ if is_space(byte) => self.state = State::BeforeAttributeName,
                    b'/' => self.state = State::SelfClosing,
                    b'>' => self.emit_tag(sink),
                    _ => {
                        self.state = State::BeforeAttributeName;
                        continue;
                    }
                },
                State::SelfClosing => match byte {
                    b'>' => {
                        self.self_closing = true;
                        self.emit_tag(sink);
                    }
                    _ => {
                        self.state = State::BeforeAttributeName;
                        continue;
                    }
                },
                State::MarkupDeclaration => {
                    self.pending.push(char::from(byte));
                    let seen = self.pending.as_str();
                    if seen == "--" {
                        self.state = State::CommentStart;
                    } else if seen.eq_ignore_ascii_case("[CDATA[") && sink.in_foreign_content() {
                        self.state = State::Cdata;
                    } else if !("--".starts_with(seen)
                        || ("[CDATA[".starts_with(seen) && sink.in_foreign_content()))
                    {
                        // Not a comment: a doctype or a bogus comment, which ends at the next '>'
                        // (possibly this very byte).
                        self.state = State::BogusComment;
                        continue;
                    }
                }
                State::CommentStart => match byte {
                    b'-' => self.state = State::CommentStartDash,
                    b'>' => self.state = State::Text,
                    _ => {
                        self.state = State::Comment;
                        continue;
                    }
                },
                State::CommentStartDash => match byte {
                    b'-' => self.state = State::CommentEnd,
                    b'>' => self.state = State::Text,
                    _ => {
                        self.state = State::Comment;
                        continue;
                    }
                },
                State::Comment => {
                    match memchr::memchr(b'-', &bytes[i..]) {
                        Some(at) => {
                            i += at + 1;
                            self.state = State::CommentEndDash;
                        }
                        None => i = bytes.len(),
                    }
                    continue;
                }
                State::CommentEndDash => match byte {
                    b'-' => self.state = State::CommentEnd,
                    _ => {
                        self.state = State::Comment;
                        continue;
                    }
                },
                State::CommentEnd => match byte {
                    b'>' => self.state = State::Text,
                    b'!' => self.state = State::CommentEndBang,
                    b'-' => {}
                    _ => {
                        self.state = State::Comment;
                        continue;
                    }
                },
                State::CommentEndBang => match byte {
                    b'-' => self.state = State::CommentEndDash,
                    b'>' => self.state = State::Text,
                    _ => {
                        self.state = State::Comment;
                        continue;
                    }
                },
                State::BogusComment => {
                    match memchr::memchr(b'>', &bytes[i..]) {
                        Some(at) => {
                            i += at + 1;
                            self.state = State::Text;
                        }
                        None => i = bytes.len(),
                    }
                    continue;
                }
                State::Cdata => {
                    let rest = &input[i..];
                    let end = memchr::memchr(b']', rest.as_bytes()).unwrap_or(rest.len());
                    if end > 0 {
                        sink.text(&rest[..end]);
                    }
                    i += end;
                    if i < bytes.len() {
                        i += 1;
                        self.state = State::CdataBracket;
                    }
                    continue;
                }
                State::CdataBracket => {
                    if byte == b']' {
                        self.state = State::CdataEnd;
                    } else {
                        sink.text("]");
                        self.state = State::Cdata;
                        continue;
                    }
                }
                State::CdataEnd => match byte {
                    b'>' => self.state = State::Text,
                    b']' => sink.text("]"),
                    _ => {
                        sink.text("]]");
                        self.state = State::Cdata;
                        continue;
                    }
                },
                State::RawLessThan => {
                    if byte == b'/' {
                        self.pending.clear();
                        self.state = State::RawEndTagOpen;
                    } else {
                        self.raw_text(sink, "<");
                        self.state = State::Text;
                        continue;
                    }
                }
                State::RawEndTagOpen | State::RawEndTagName => {
                    if byte.is_ascii_alphabetic() && self.pending.len() <= MAX_NAME {
                        self.pending.push(char::from(byte.to_ascii_lowercase()));
                        self.state = State::RawEndTagName;
                    } else if self.state == State::RawEndTagName
                        && (is_space(byte) || byte == b'/' || byte == b'>')
                        && self.pending == self.raw_end.as_str()
                    {
                        // The element's end tag: its attributes, if any, are read as a tag's.
                        self.content = Content::Markup;
                        self.name.clone_from(&self.raw_end);
                        self.end = true;
                        self.self_closing = false;
                        self.collect = false;
                        self.state = State::BeforeAttributeName;
                        continue;
                    } else {
                        let text = format!("</{}", self.pending);
                        self.raw_text(sink, &text);
                        self.state = State::Text;
                        continue;
                    }
                }
                State::Reference => {
                    let (taken, ended) = self.reference(byte);
                    if taken {
                        i += 1;
                    }
                    if ended || !taken {
                        self.flush_reference(sink);
                    }
                    continue;
                }
            }
            i += 1;
        }
        sink.is_done()
    }

    /// The input ended: what was held back (an unfinished reference, a `<` that began nothing)
    /// goes out as text.
    pub fn finish(&mut self, sink: &mut impl Sink) {
        match self.state {
            State::Reference => self.flush_reference(sink),
            State::TagOpen => sink.text("<"),
            State::EndTagOpen => sink.text("</"),
            State::RawLessThan => self.raw_text(sink, "<"),
            State::RawEndTagOpen | State::RawEndTagName => {
                let text = format!("</{}", self.pending);
                self.raw_text(sink, &text);
            }
            State::CdataBracket => sink.text("]"),
            State::CdataEnd => sink.text("]]"),
            _ => {}
        }
        self.state = State::Text;
    }

    fn start_tag(&mut self, end: bool) {
        self.name.clear();
        self.end = end;
        self.self_closing = false;
        self.collect = false;
        self.attributes.clear();
        self.state = State::TagName;
    }

    fn start_attribute(&mut self, sink: &impl Sink) {
        if self.attributes.is_empty() && !self.end {
            self.collect = sink.wants_attributes(self.name.as_str());
        }
        if self.collect {
            self.attributes.push((String::new(), String::new()));
        }
    }

    fn push_attribute_name(&mut self, byte: u8) {
        if let Some((name, _)) = self.attributes.last_mut().filter(|_| self.collect)
            && name.len() < MAX_ATTRIBUTE
        {
            name.push(char::from(byte.to_ascii_lowercase()));
        }
    }

    fn push_attribute_value(&mut self, text: &str) {
        if let Some((_, value)) = self.attributes.last_mut().filter(|_| self.collect) {
            let room = MAX_ATTRIBUTE.saturating_sub(value.len());
            let mut cut = text.len().min(room);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            value.push_str(&text[..cut]);
        }
    }

    fn emit_tag(&mut self, sink: &mut impl Sink) {
        let tag = Tag {
            name: self.name.as_str(),
            end: self.end,
            self_closing: self.self_closing,
            attributes: if self.collect { &self.attributes } else { &[] },
        };
        let content = sink.tag(&tag);
        self.content = Content::Markup;
        if !self.end && !self.name.other && content != Content::Markup {
            self.content = content;
            self.raw_end.clone_from(&self.name);
        }
        self.state = State::Text;
    }

    /// Text inside raw text or RCDATA: shown only for RCDATA.
    fn raw_text(&self, sink: &mut impl Sink, text: &str) {
        if self.content == Content::Rcdata {
            sink.text(text);
        }
    }

    /// Takes the next byte of a character reference: whether it belongs to it, and whether it
    /// ends it (a `;`).
    fn reference(&mut self, byte: u8) -> (bool, bool) {
        let fits = match self.pending.as_bytes() {
            [] => byte == b'#' || byte.is_ascii_alphanumeric(),
            [b'#', rest @ ..] => {
                let hex = matches!(rest.first(), Some(b'x' | b'X'));
                let digits = rest.len() - usize::from(hex);
                match byte {
                    b'x' | b'X' => rest.is_empty(),
                    b';' => digits > 0,
                    _ if digits >= MAX_REFERENCE => false,
                    _ if hex => byte.is_ascii_hexdigit(),
                    _ => byte.is_ascii_digit(),
                }
            }
            name => {
                name.len() < MAX_REFERENCE && (byte.is_ascii_alphanumeric() || byte == b';') && {
                    self.pending.push(char::from(byte));
                    let known = NAMED_ENTITIES.contains_key(self.pending.as_str());
                    self.pending.pop();
                    known
                }
            }
        };
        if fits {
            self.pending.push(char::from(byte));
        }
        (fits, fits && byte == b';')
    }

    /// Writes out the character reference collected so far, decoded as far as it names one, and
    /// returns to the text it interrupted.
    fn flush_reference(&mut self, sink: &mut impl Sink) {
        let pending = std::mem::take(&mut self.pending);
        self.state = State::Text;
        let mut decoded = [0u8; 8];
        if let Some(digits) = pending.strip_prefix('#') {
            let (digits, radix) = match digits.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16),
                None => (digits, 10),
            };
            let digits = digits.trim_end_matches(';');
            if digits.is_empty() {
                sink.text("&");
                sink.text(&pending);
                return;
            }
            let c = numeric_reference(digits, radix);
            sink.text(c.encode_utf8(&mut decoded));
            return;
        }
        // The longest prefix that is a whole entity name wins; the rest is text, as browsers do
        // (`&copy2024` reads as "©2024").
        let entity = (1..=pending.len()).rev().find_map(|len| {
            NAMED_ENTITIES
                .get(&pending[..len])
                .filter(|&&(first, _)| first != 0)
                .map(|&(first, second)| (len, first, second))
        });
        match entity {
            Some((len, first, second)) => {
                for code in [first, second] {
                    if let Some(c) = char::from_u32(code).filter(|_| code != 0) {
                        sink.text(c.encode_utf8(&mut decoded));
                    }
                }
                if len < pending.len() {
                    sink.text(&pending[len..]);
                }
            }
            None => {
                sink.text("&");
                sink.text(&pending);
            }
        }
    }
}

/// The character a numeric reference stands for, with the HTML spec's repairs: out-of-range and
/// surrogate values become U+FFFD, and the C1 controls windows-1252 uses for punctuation map to it.
fn numeric_reference(digits: &str, radix: u32) -> char {
    let value = u32::from_str_radix(digits, radix).unwrap_or(u32::MAX);
    match value {
        0x80..=0x9F => C1_REPLACEMENTS[(value - 0x80) as usize]
            .unwrap_or_else(|| char::from_u32(value).unwrap_or('\u{FFFD}')),
        0 => '\u{FFFD}',
        _ => char::from_u32(value).unwrap_or('\u{FFFD}'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes what the lexer finds as a string: text as it is, tags as `[name]`, `[/name]` or
    /// `[name/]`, collected attributes as `[name a=v]`.
    #[derive(Default)]
    struct Record {
        out: String,
        foreign: bool,
    }

    impl Sink for Record {
        fn text(&mut self, text: &str) {
            self.out.push_str(text);
        }

        fn tag(&mut self, tag: &Tag<'_>) -> Content {
            self.out.push('[');
            if tag.end {
                self.out.push('/');
            }
            self.out.push_str(tag.name);
            for (name, value) in tag.attributes {
                self.out.push_str(&format!(" {name}={value}"));
            }
            if tag.self_closing {
                self.out.push('/');
            }
            self.out.push(']');
            match (tag.end, tag.name) {
                (false, "title" | "textarea") => Content::Rcdata,
                (false, "script" | "style") => Content::Rawtext,
                (false, "plaintext") => Content::Plaintext,
                (false, "svg") => {
                    self.foreign = true;
                    Content::Markup
                }
                _ => Content::Markup,
            }
        }

        fn wants_attributes(&self, name: &str) -> bool {
            name == "meta"
        }

        fn in_foreign_content(&self) -> bool {
            self.foreign
        }

        fn is_done(&self) -> bool {
            false
        }
    }

    /// The lexer's reading of `html`, which must not depend on how the input is split: it is
    /// checked whole and one character at a time.
    fn lex(html: &str) -> String {
        let mut whole = Record::default();
        let mut lexer = Lexer::default();
        lexer.feed(html, &mut whole);
        lexer.finish(&mut whole);
        let mut pieces = Record::default();
        let mut lexer = Lexer::default();
        let mut buf = [0u8; 4];
        for c in html.chars() {
            lexer.feed(c.encode_utf8(&mut buf), &mut pieces);
        }
        lexer.finish(&mut pieces);
        assert_eq!(
            whole.out, pieces.out,
            "split input read differently: {html:?}"
        );
        whole.out
    }

    #[test]
    fn tags_and_text() {
        assert_eq!(
            lex("<P class=x>Hi <B>there</b></p>"),
            "[p]Hi [b]there[/b][/p]"
        );
        assert_eq!(lex("<br/><img src=a.png />"), "[br/][img/]");
        assert_eq!(lex("a < b, 1<2 and x<>y"), "a < b, 1<2 and x<>y");
        assert_eq!(lex("<a href=\"x>y\" title='it>s'>link</a>"), "[a]link[/a]");
        assert_eq!(lex("<div\n  data-x = 1\n>t</div >"), "[div]t[/div]");
        assert_eq!(lex("</>gone</ x>"), "gone");
    }

    #[test]
    fn comments_doctypes_and_processing_instructions_are_skipped() {
        assert_eq!(lex("<!DOCTYPE html><!-- a -- b > c -->x"), "x");
        assert_eq!(lex("<!---->a<!-->b<!--->c<!-- x --!>d"), "abcd");
        assert_eq!(lex("<?xml version=\"1.0\"?>e<!bogus>f"), "ef");
        assert_eq!(lex("<!-- unclosed"), "");
    }

    #[test]
    fn raw_text_ends_only_at_its_own_end_tag() {
        assert_eq!(
            lex("<script>if (a</b) { x = '<p>' }</script >after"),
            "[script][/script]after"
        );
        assert_eq!(lex("<style>p{}</STYLE>x"), "[style][/style]x");
        assert_eq!(
            lex("<title>A &amp; <b>B</b></title>"),
            "[title]A & <b>B</b>[/title]"
        );
        assert_eq!(
            lex("<textarea></textareax></textarea>"),
            "[textarea]</textareax>[/textarea]"
        );
        assert_eq!(
            lex("<plaintext><p>all text</p>"),
            "[plaintext]<p>all text</p>"
        );
        assert_eq!(lex("<title>cut <"), "[title]cut <");
    }

    #[test]
    fn character_references() {
        assert_eq!(lex("&amp; &lt;&gt; &quot;&nbsp;"), "& <> \"\u{a0}");
        assert_eq!(
            lex("&#65;&#x42;&#X43; &#128; &#0; &#xD800;"),
            "ABC € \u{FFFD} \u{FFFD}"
        );
        assert_eq!(lex("&copy2024 &notit; &amp"), "©2024 ¬it; &");
        assert_eq!(lex("&nosuch; & &#; &#x;"), "&nosuch; & &#; &#x;");
        assert_eq!(lex("a&b<p>"), "a&b[p]");
        assert_eq!(lex("&NotEqualTilde;"), "\u{2242}\u{338}");
    }

    #[test]
    fn cdata_is_text_only_in_foreign_content() {
        assert_eq!(lex("<![CDATA[a>b]]>"), "b]]>");
        assert_eq!(lex("<svg><![CDATA[a]b]]c]]]>x"), "[svg]a]b]]c]x");
    }

    #[test]
    fn attributes_are_collected_when_asked_for() {
        assert_eq!(
            lex(
                "<meta charset=UTF-8><meta HTTP-EQUIV='Content-Type' content=\"text/html; charset=x\">"
            ),
            "[meta charset=UTF-8][meta http-equiv=Content-Type content=text/html; charset=x]"
        );
        assert_eq!(lex("<link rel=x>"), "[link]");
    }

    #[test]
    fn long_names_match_nothing() {
        assert_eq!(lex("<averyveryverylongname>x"), "[]x");
        assert_eq!(
            lex("<script>a</scriptandmore>b</script>"),
            "[script][/script]"
        );
    }

    #[test]
    fn a_sink_that_is_done_stops_the_lexer() {
        struct UntilP(String);
        impl Sink for UntilP {
            fn text(&mut self, text: &str) {
                self.0.push_str(text);
            }
            fn tag(&mut self, tag: &Tag<'_>) -> Content {
                if tag.name == "p" {
                    self.0.push('|');
                }
                Content::Markup
            }
            fn is_done(&self) -> bool {
                self.0.ends_with('|')
            }
        }
        let mut sink = UntilP(String::new());
        assert!(Lexer::default().feed("one<p>two", &mut sink));
        assert_eq!(sink.0, "one|");
    }
}
