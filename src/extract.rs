//! The title and preview of a page, taken in one streaming pass over the body as it arrives.
//!
//! Bytes go in chunk by chunk; the pass decodes them to UTF-8 (charset from the `Content-Type`
//! header, a BOM, or a `<meta>` in the first 1024 bytes, as browsers do), tokenizes HTML with
//! the streaming `lexer` (no tree is built), and stops asking for input as soon as it has the title
//! and `preview_chars` characters of visible text. A page's cost therefore does not grow with its
//! size, and nothing of the body is kept but the preview. A full DOM parse (scraper) is for features
//! that need one, and runs off the async reactor.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

use crate::lexer::{self, Content, Lexer, Tag};
use crate::sanitize::CleanText;

/// Bytes looked at before the type and charset are decided (the HTML spec's prescan window).
const SNIFF_BYTES: usize = 1024;
/// Decoded bytes scanned at most per page: a page that hides its text behind megabytes of inline
/// script gets the preview found so far, and the pass stays cheap.
const MAX_SCAN_BYTES: usize = 1024 * 1024;
/// Bytes decoded and tokenized at a time: the pass stops within one slice of the point where it has
/// what it needs, so a large chunk is not copied and tokenized in full.
const SLICE_BYTES: usize = 4096;
/// Characters of `<title>` kept.
const MAX_TITLE_CHARS: usize = 512;

/// What a body is, for the purpose of showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Html,
    Text,
    Binary,
}

impl BodyKind {
    /// The kind a media type names, or `None` when the bytes must tell (no type, or a vague one).
    pub fn from_mime(mime: &mime::Mime) -> Option<BodyKind> {
        let (kind, subtype) = (mime.type_().as_str(), mime.subtype().as_str());
        let suffix = mime.suffix().map(|s| s.as_str());
        match (kind, subtype) {
            ("text", "html") | ("application", "xhtml") => Some(BodyKind::Html),
            ("text", _) => Some(BodyKind::Text),
            ("application", "json" | "xml" | "javascript" | "ecmascript" | "x-javascript")
            | ("application", "x-www-form-urlencoded" | "x-ndjson" | "ld+json")
            | ("image", "svg") => Some(BodyKind::Text),
            _ if matches!(suffix, Some("json" | "xml")) => Some(BodyKind::Text),
            ("application", "octet-stream") | ("unknown", _) => None,
            _ => Some(BodyKind::Binary),
        }
    }
}

/// The result of the pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub title: Option<String>,
    /// The start of the visible text; `None` for binary content.
    pub content: Option<String>,
    /// The preview was cut: a visible character of the text did not fit.
    pub content_cut: bool,
    pub binary: bool,
}

/// The streaming title/preview pass over one body.
pub struct Scanner {
    preview_chars: usize,
    state: State,
}

enum State {
    /// Collecting the first bytes, to decide the type and charset.
    Sniffing {
        head: Vec<u8>,
        kind: Option<BodyKind>,
        charset: Option<&'static Encoding>,
    },
    Decoding(Box<Decoding>),
    Binary,
    Done(Extracted),
}

struct Decoding {
    decoder: encoding_rs::Decoder,
    /// Reused buffer for each chunk's UTF-8.
    utf8: String,
    scanned: usize,
    target: Target,
}

enum Target {
    Html(Box<(Lexer, PreviewSink)>),
    Text(CleanText),
}

impl Scanner {
    /// A pass for a body with this `Content-Type` header value (if any).
    pub fn new(content_type: Option<&str>, preview_chars: usize) -> Self {
        let (kind, charset) = declared(content_type);
        let state = if kind == Some(BodyKind::Binary) {
            State::Binary
        } else {
            State::Sniffing {
                head: Vec::new(),
                kind,
                charset,
            }
        };
        Scanner {
            preview_chars,
            state,
        }
    }

    /// Whether the pass still wants input; once false, `feed` ignores what it is given.
    pub fn wants_more(&self) -> bool {
        matches!(self.state, State::Sniffing { .. } | State::Decoding(_))
    }

    /// Takes the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        match &mut self.state {
            State::Sniffing { head, .. } => {
                let wanted = SNIFF_BYTES - head.len();
                if chunk.len() < wanted {
                    head.extend_from_slice(chunk);
                } else {
                    head.extend_from_slice(&chunk[..wanted]);
                    self.start_decoding();
                    self.feed(&chunk[wanted..]);
                }
            }
            State::Decoding(decoding) => {
                if decoding.feed(chunk, false) {
                    self.stop();
                }
            }
            State::Binary | State::Done(_) => {}
        }
    }

    /// The body ended (or reading stopped): the title and preview found.
    pub fn finish(mut self) -> Extracted {
        if let State::Sniffing { .. } = self.state {
            self.start_decoding();
        }
        if let State::Decoding(decoding) = &mut self.state {
            decoding.feed(&[], true);
            self.stop();
        }
        match self.state {
            State::Done(extracted) => extracted,
            _ => Extracted {
                binary: true,
                ..Extracted::default()
            },
        }
    }

    fn start_decoding(&mut self) {
        let State::Sniffing {
            head,
            kind,
            charset,
        } = std::mem::replace(&mut self.state, State::Binary)
        else {
            return;
        };
        let kind = kind.unwrap_or_else(|| sniff(&head));
        let target = match kind {
            BodyKind::Binary => return,
            BodyKind::Html => Target::Html(Box::new((
                Lexer::default(),
                PreviewSink::new(self.preview_chars),
            ))),
            BodyKind::Text => Target::Text(CleanText::new(self.preview_chars)),
        };
        let encoding = charset
            .or_else(|| {
                (kind == BodyKind::Html)
                    .then(|| prescan_meta(&head))
                    .flatten()
            })
            .unwrap_or_else(|| guess_encoding(&head));
        let mut decoding = Box::new(Decoding {
            // BOM sniffing stays on: a BOM overrides every other declaration.
            decoder: encoding.new_decoder(),
            utf8: String::new(),
            scanned: 0,
            target,
        });
        let finished = decoding.feed(&head, false);
        self.state = State::Decoding(decoding);
        if finished {
            self.stop();
        }
    }

    fn stop(&mut self) {
        if let State::Decoding(decoding) = std::mem::replace(&mut self.state, State::Binary) {
            self.state = State::Done(decoding.into_extracted());
        }
    }
}

impl Decoding {
    /// Decodes and scans `bytes` a slice at a time; true when the pass has what it needs.
    fn feed(&mut self, bytes: &[u8], last: bool) -> bool {
        let mut slices = bytes.chunks(SLICE_BYTES).peekable();
        if bytes.is_empty() {
            return self.feed_slice(&[], last);
        }
        while let Some(slice) = slices.next() {
            if self.feed_slice(slice, last && slices.peek().is_none()) {
                return true;
            }
        }
        false
    }

    fn feed_slice(&mut self, bytes: &[u8], last: bool) -> bool {
        self.utf8.clear();
        let needed = self
            .decoder
            .max_utf8_buffer_length(bytes.len())
            .unwrap_or(bytes.len() * 3 + 16);
        self.utf8.reserve(needed);
        let _ = self.decoder.decode_to_string(bytes, &mut self.utf8, last);
        self.scanned += self.utf8.len();
        let done = match &mut self.target {
            Target::Html(html) => {
                let (lexer, sink) = &mut **html;
                let done = lexer.feed(&self.utf8, sink);
                if last && !done {
                    lexer.finish(sink);
                    sink.title_done = true;
                }
                lexer::Sink::is_done(sink)
            }
            Target::Text(text) => {
                text.push(&self.utf8);
                text.is_full()
            }
        };
        done || self.scanned >= MAX_SCAN_BYTES
    }

    fn into_extracted(self) -> Extracted {
        match self.target {
            Target::Html(html) => {
                let (_, sink) = *html;
                let title = sink.title.into_string();
                Extracted {
                    title: (!title.is_empty()).then_some(title),
                    content_cut: sink.preview.is_full(),
                    content: Some(sink.preview.into_string()),
                    binary: false,
                }
            }
            Target::Text(text) => Extracted {
                title: None,
                content_cut: text.is_full(),
                content: Some(text.into_string()),
                binary: false,
            },
        }
    }
}

/// What a `Content-Type` header says: the kind of body (when it is definite) and its charset.
fn declared(content_type: Option<&str>) -> (Option<BodyKind>, Option<&'static Encoding>) {
    let mime = content_type.and_then(|value| value.parse::<mime::Mime>().ok());
    let kind = mime.as_ref().and_then(BodyKind::from_mime);
    let charset = mime
        .as_ref()
        .and_then(|m| m.get_param(mime::CHARSET))
        .and_then(|label| Encoding::for_label(label.as_str().as_bytes()));
    (kind, charset)
}

/// Whether a body with this `Content-Type` may be HTML (declared so, or to be sniffed).
pub fn may_be_html(content_type: Option<&str>) -> bool {
    matches!(declared(content_type).0, Some(BodyKind::Html) | None)
}

/// A whole HTML body decoded to text, by the same rules as the streaming pass (header charset, BOM,
/// `<meta>`, then a guess); `None` when the body is not HTML.
pub fn decode_html(body: &[u8], content_type: Option<&str>) -> Option<String> {
    let (kind, charset) = declared(content_type);
    let head = &body[..body.len().min(SNIFF_BYTES)];
    if kind.unwrap_or_else(|| sniff(head)) != BodyKind::Html {
        return None;
    }
    let encoding = charset
        .or_else(|| prescan_meta(head))
        .unwrap_or_else(|| guess_encoding(head));
    let (text, _, _) = encoding.decode(body); // a BOM overrides, as in the streaming pass
    Some(text.into_owned())
}

/// The kind of a body whose type was not declared, from its first bytes.
fn sniff(head: &[u8]) -> BodyKind {
    let text = head
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(head)
        .trim_ascii_start();
    const HTML_STARTS: &[&[u8]] = &[
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<body",
        b"<title",
        b"<script",
        b"<!--",
        b"<meta",
        b"<div",
        b"<p>",
        b"<h1",
    ];
    let starts_with = |prefix: &[u8]| {
        text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if HTML_STARTS.iter().any(|p| starts_with(p)) {
        return BodyKind::Html;
    }
    let binary_bytes = head
        .iter()
        .filter(|&&b| b == 0 || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B)))
        .count();
    if binary_bytes > 0 && (head.contains(&0) || binary_bytes * 10 > head.len()) {
        BodyKind::Binary
    } else {
        BodyKind::Text
    }
}

/// For a body with no declared charset: UTF-8 when the first bytes are valid UTF-8 (a sequence cut
/// at the end of the window is fine), else windows-1252, the web's legacy default.
fn guess_encoding(head: &[u8]) -> &'static Encoding {
    match std::str::from_utf8(head) {
        Ok(_) => UTF_8,
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => WINDOWS_1252,
    }
}

/// The charset a `<meta charset>` or `<meta http-equiv="Content-Type" content="…charset=…">` in
/// the first bytes declares, following the HTML spec's rules for which labels count.
fn prescan_meta(head: &[u8]) -> Option<&'static Encoding> {
    // The markup is ASCII, so the window is tokenized as it is when it is UTF-8 (most pages, and
    // no copy), else as windows-1252, where every byte decodes to one character: either way the
    // meta tag is found whatever the real encoding is.
    let head = &head[..head.len().min(SNIFF_BYTES)];
    let mut sink = MetaSink::default();
    match std::str::from_utf8(head) {
        Ok(text) => Lexer::default().feed(text, &mut sink),
        Err(_) => Lexer::default().feed(&WINDOWS_1252.decode(head).0, &mut sink),
    };
    let encoding = Encoding::for_label(sink.label?.trim().as_bytes())?;
    Some(match encoding.name() {
        "UTF-16LE" | "UTF-16BE" => UTF_8,
        "x-user-defined" => WINDOWS_1252,
        _ => encoding,
    })
}

/// Finds the first meta charset declaration among the tags.
#[derive(Default)]
struct MetaSink {
    label: Option<String>,
}

impl lexer::Sink for MetaSink {
    fn text(&mut self, _text: &str) {}

    fn tag(&mut self, tag: &Tag<'_>) -> Content {
        if tag.name == "meta" && !tag.end && self.label.is_none() {
            let attr = |name: &str| {
                tag.attributes
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, value)| value.as_str())
            };
            self.label = attr("charset").map(str::to_string).or_else(|| {
                attr("http-equiv")
                    .filter(|v| v.trim().eq_ignore_ascii_case("content-type"))
                    .and(attr("content"))
                    .and_then(charset_in_content)
            });
        }
        raw_content(tag.name).unwrap_or(Content::Markup)
    }

    fn wants_attributes(&self, name: &str) -> bool {
        name == "meta"
    }

    fn is_done(&self) -> bool {
        self.label.is_some()
    }
}

/// The `charset=` value inside a meta `content` attribute (`text/html; charset="x"`).
fn charset_in_content(content: &str) -> Option<String> {
    let lower = content.to_ascii_lowercase();
    let at = lower.find("charset")?;
    let rest = content[at + "charset".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let value = match rest.chars().next()? {
        quote @ ('"' | '\'') => rest[1..].split(quote).next()?,
        _ => rest
            .split(|c: char| c == ';' || c.is_ascii_whitespace())
            .next()?,
    };
    (!value.is_empty()).then(|| value.to_string())
}

/// Elements whose start or end separates words in rendered text.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "br"
            | "caption"
            | "dd"
            | "details"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "option"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "td"
            | "th"
            | "tr"
            | "ul"
            | "body"
            | "img"
            | "input"
    )
}

/// How an element's content must be read: as text up to its end tag, not as markup.
fn raw_content(name: &str) -> Option<Content> {
    match name {
        "title" | "textarea" => Some(Content::Rcdata),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" | "script" => {
            Some(Content::Rawtext)
        }
        "plaintext" => Some(Content::Plaintext),
        _ => None,
    }
}

/// What the text of a raw-text or RCDATA element is to the preview.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Raw {
    Title,
    /// A `<textarea>`'s text is shown.
    Textarea,
    /// Scripts, styles and the like (the lexer passes none of their text on).
    Hidden,
}

/// Collects the title and the preview text from the tags and text the lexer finds.
struct PreviewSink {
    title: CleanText,
    title_done: bool,
    preview: CleanText,
    /// The raw-text element being read (`script`, `style`, `title`, …), if any.
    raw: Option<Raw>,
    /// Depth inside `<template>` (inert, never rendered).
    template_depth: u32,
    /// Depth inside `<svg>`, whose `<title>` is a tooltip, not the page's.
    svg_depth: u32,
    body_seen: bool,
}

impl PreviewSink {
    fn new(preview_chars: usize) -> Self {
        PreviewSink {
            title: CleanText::new(MAX_TITLE_CHARS),
            title_done: false,
            preview: CleanText::new(preview_chars),
            raw: None,
            template_depth: 0,
            svg_depth: 0,
            body_seen: false,
        }
    }

    fn visible(&mut self, text: &str) {
        if !self.preview.is_full() {
            self.preview.push(text);
        }
    }
}

impl lexer::Sink for PreviewSink {
    fn text(&mut self, text: &str) {
        match self.raw {
            Some(Raw::Title) if !self.title_done && self.svg_depth == 0 => self.title.push(text),
            Some(Raw::Textarea) => self.visible(text),
            None if self.template_depth == 0 => self.visible(text),
            Some(_) | None => {}
        }
    }

    fn tag(&mut self, tag: &Tag<'_>) -> Content {
        let start = !tag.end;
        if let Some(raw) = self.raw {
            // The lexer ends raw text only at the element's own end tag.
            if raw == Raw::Title && self.svg_depth == 0 {
                self.title_done = true;
            }
            self.raw = None;
            return Content::Markup;
        }
        match tag.name {
            "template" if start => self.template_depth += 1,
            "template" => self.template_depth = self.template_depth.saturating_sub(1),
            "svg" if start && !tag.self_closing => self.svg_depth += 1,
            "svg" if !start => self.svg_depth = self.svg_depth.saturating_sub(1),
            "body" if start => self.body_seen = true,
            _ => {}
        }
        if is_block(tag.name) {
            self.preview.push_break();
        }
        match raw_content(tag.name).filter(|_| start) {
            Some(content) => {
                self.raw = match (tag.name, content) {
                    (_, Content::Plaintext) => None,
                    ("title", _) => Some(Raw::Title),
                    ("textarea", _) => Some(Raw::Textarea),
                    _ => Some(Raw::Hidden),
                };
                content
            }
            None => Content::Markup,
        }
    }

    fn in_foreign_content(&self) -> bool {
        self.svg_depth > 0
    }

    fn is_done(&self) -> bool {
        self.preview.is_full() && (self.title_done || self.body_seen || !self.preview.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(content_type: Option<&str>, body: &[u8], chars: usize) -> Extracted {
        let mut scanner = Scanner::new(content_type, chars);
        for chunk in body.chunks(7) {
            scanner.feed(chunk);
        }
        scanner.finish()
    }

    fn html(body: &str) -> Extracted {
        scan(Some("text/html; charset=utf-8"), body.as_bytes(), 100)
    }

    #[test]
    fn title_and_visible_text_without_scripts_or_styles() {
        let page = html(
            "<!doctype html><html><head><title> Hello &amp; welcome </title>\
             <style>body { color: red }</style><script>var x = '<p>no</p>';</script></head>\
             <body><h1>Heading</h1><p>First   para&nbsp;graph.</p><noscript>enable js</noscript>\
             <template><p>inert</p></template><p>Second</p></body></html>",
        );
        assert_eq!(page.title.as_deref(), Some("Hello & welcome"));
        assert_eq!(
            page.content.as_deref(),
            Some("Heading First para graph. Second")
        );
    }

    #[test]
    fn preview_is_truncated_to_the_character_limit() {
        let page = scan(
            Some("text/html"),
            "<title>t</title><p>ééééééééééééé</p>".as_bytes(),
            5,
        );
        assert_eq!(page.content.as_deref(), Some("ééééé"));
        let page = scan(Some("text/html"), b"<title>t</title><p>text</p>", 0);
        assert_eq!(page.content.as_deref(), Some(""));
        assert_eq!(page.title.as_deref(), Some("t"));
    }

    #[test]
    fn svg_titles_are_not_the_page_title() {
        let page = html("<body><svg><title>icon</title></svg><p>x</p><title>Real</title>");
        assert_eq!(page.title.as_deref(), Some("Real"));
    }

    #[test]
    fn control_characters_from_the_page_never_come_out() {
        let page = html("<title>bad\x1b]0;pwned\x07</title><p>a\x1b[2Jb \u{202E}c</p>");
        assert_eq!(page.title.as_deref(), Some("bad]0;pwned"));
        assert_eq!(page.content.as_deref(), Some("a[2Jb c"));
    }

    #[test]
    fn charset_comes_from_the_header() {
        let body = b"<title>caf\xe9</title><p>na\xefve</p>";
        let page = scan(Some("text/html; charset=iso-8859-1"), body, 100);
        assert_eq!(page.title.as_deref(), Some("café"));
        assert_eq!(page.content.as_deref(), Some("naïve"));
    }

    #[test]
    fn charset_comes_from_a_meta_tag() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("<p>日本語のページ</p>");
        let mut body = b"<html><head><meta charset=\"shift_jis\"><title>t</title></head>".to_vec();
        body.extend_from_slice(&sjis);
        assert_eq!(
            scan(Some("text/html"), &body, 100).content.as_deref(),
            Some("日本語のページ")
        );

        let body =
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">\
                     <p>\x93quoted\x94</p>";
        assert_eq!(
            scan(None, body, 100).content.as_deref(),
            Some("\u{201c}quoted\u{201d}")
        );
    }

    #[test]
    fn a_bom_overrides_the_header() {
        let body = b"\xEF\xBB\xBF<title>caf\xC3\xA9</title>";
        let page = scan(Some("text/html; charset=iso-8859-1"), body, 100);
        assert_eq!(page.title.as_deref(), Some("café"));
    }

    #[test]
    fn undeclared_invalid_utf8_falls_back_to_windows_1252() {
        let page = scan(Some("text/html"), b"<p>caf\xe9</p>", 100);
        assert_eq!(page.content.as_deref(), Some("café"));
    }

    #[test]
    fn binary_types_get_no_content() {
        let page = scan(Some("image/png"), b"\x89PNG\r\n\x1a\n\0\0\0", 100);
        assert!(page.binary);
        assert_eq!(page.content, None);
        let page = scan(None, b"\0\x01\x02\x03binary", 100);
        assert!(page.binary);
        let page = scan(
            Some("application/octet-stream"),
            b"<!DOCTYPE html><title>x</title>",
            100,
        );
        assert_eq!(page.title.as_deref(), Some("x"));
    }

    #[test]
    fn text_types_preview_their_text() {
        let page = scan(Some("application/json"), b"{\"a\":\n  1}", 100);
        assert_eq!(page.content.as_deref(), Some("{\"a\": 1}"));
        assert_eq!(page.title, None);
        let page = scan(None, b"  <!DOCTYPE HTML><title>sniffed</title>", 100);
        assert_eq!(page.title.as_deref(), Some("sniffed"));
    }

    #[test]
    fn the_pass_stops_early_on_a_long_page() {
        let mut scanner = Scanner::new(Some("text/html"), 10);
        scanner.feed(b"<html><head><title>Big</title></head><body><p>");
        scanner.feed(&b"lorem ipsum ".repeat(200));
        scanner.feed(b"</p><div>more</div>");
        assert!(!scanner.wants_more());
        scanner.feed(&b"x".repeat(1 << 20));
        let page = scanner.finish();
        assert_eq!(page.title.as_deref(), Some("Big"));
        assert_eq!(page.content.as_deref(), Some("lorem ipsu"));
        assert!(page.content_cut);
    }

    #[test]
    fn a_preview_cut_at_a_space_is_still_cut() {
        // The sixth character would be the space after "lorem": the preview stops one short.
        let page = scan(Some("text/html"), b"<p>lorem ipsum dolor</p>", 6);
        assert_eq!(page.content.as_deref(), Some("lorem"));
        assert!(page.content_cut);
        let short = scan(Some("text/html"), b"<p>lorem</p>", 6);
        assert_eq!(short.content.as_deref(), Some("lorem"));
        assert!(!short.content_cut, "a text shorter than the limit is whole");
    }

    #[test]
    fn empty_and_broken_markup_do_not_panic() {
        assert_eq!(html("").title, None);
        assert_eq!(html("<title>unclosed").title.as_deref(), Some("unclosed"));
        assert_eq!(html("<<<>>><p <a =>x").content.as_deref(), Some("<<<>>> x"));
    }

    #[test]
    fn meta_content_charset_values() {
        assert_eq!(
            charset_in_content("text/html; charset=UTF-8").as_deref(),
            Some("UTF-8")
        );
        assert_eq!(
            charset_in_content("text/html;charset='koi8-r'").as_deref(),
            Some("koi8-r")
        );
        assert_eq!(charset_in_content("text/html"), None);
    }
}
