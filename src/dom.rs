//! Extraction that needs the whole page: CSS selectors (`--select`), links (`--links`) and the full
//! visible text (`--text`). The page is parsed into a DOM with scraper; this is CPU work done on
//! the blocking pool (see `fetch`), and only when one of those options asks for it. Everything
//! returned is owned, sanitised text: no scraper type leaves this module.

use std::collections::HashSet;

use scraper::{ElementRef, Html, Node, Selector};
use url::Url;

use crate::sanitize::{CleanText, clean};

/// One `--select` field: a CSS selector, and the attribute to take instead of the text.
#[derive(Debug, Clone)]
pub struct Field {
    /// How the field is named in the output: the selector as given, or its `--select-name`.
    pub name: String,
    pub selector: Selector,
    pub attr: Option<String>,
}

impl Field {
    /// `CSS` or `CSS@ATTR` (`a.title@href`); the field is named by the text as given.
    pub fn parse(text: &str) -> Result<Field, String> {
        let (css, attr) = match text.rsplit_once('@') {
            Some((css, attr)) if is_attribute_name(attr) && !css.trim().is_empty() => {
                (css, Some(attr.to_ascii_lowercase()))
            }
            _ => (text, None),
        };
        let selector = Selector::parse(css.trim())
            .map_err(|e| format!("invalid CSS selector '{}': {e}", css.trim()))?;
        Ok(Field {
            name: text.to_string(),
            selector,
            attr,
        })
    }
}

fn is_attribute_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
}

/// What to extract from each page.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    pub fields: Vec<Field>,
    /// Collect the page's links.
    pub links: bool,
    /// Keep only links to the page's own host.
    pub same_host: bool,
    /// The whole visible text, up to this many characters (`None`: all of it).
    pub full_text: Option<Option<usize>>,
    /// `--expect-text`: the page's text must contain this.
    pub expect_text: Option<String>,
    /// `--expect-selector`: at least one element must match.
    pub expect_selector: Option<Field>,
}

impl ExtractOptions {
    /// Whether any option needs the page parsed.
    pub fn needs_dom(&self) -> bool {
        !self.fields.is_empty()
            || self.links
            || self.full_text.is_some()
            || self.expect_text.is_some()
            || self.expect_selector.is_some()
    }

    /// Checks a body that is not HTML: only `--expect-text` can pass on one.
    pub fn check_text(&self, text: &str) -> Option<String> {
        if let Some(wanted) = &self.expect_text
            && !text.contains(wanted.as_str())
        {
            return Some(format!("text {wanted:?} not found"));
        }
        self.expect_selector
            .as_ref()
            .map(|field| format!("no element matches {} (not an HTML page)", field.name))
    }
}

/// What the DOM pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction {
    /// One list of values per field, in the order of the fields.
    pub selected: Vec<Vec<String>>,
    /// Distinct absolute http(s) links, fragments dropped, in page order.
    pub links: Vec<String>,
    /// The visible text, with block elements on lines of their own.
    pub text: Option<String>,
    /// Why the page fails `--expect-text` or `--expect-selector`.
    pub check_failure: Option<String>,
}

/// Attributes whose values are URLs, resolved to absolute URLs when selected.
const URL_ATTRIBUTES: &[&str] = &["href", "src", "action", "poster", "cite", "data"];

/// Parses `html` and extracts what `options` ask for; `page_url` is the final URL, against which
/// (or the page's `<base href>`) relative links are resolved.
pub fn extract(html: &str, page_url: &Url, options: &ExtractOptions) -> Extraction {
    let document = Html::parse_document(html);
    let base = base_url(&document, page_url);
    let selected = options
        .fields
        .iter()
        .map(|field| {
            document
                .select(&field.selector)
                .filter_map(|element| match &field.attr {
                    Some(attr) => {
                        let value = element.value().attr(attr)?;
                        if URL_ATTRIBUTES.contains(&attr.as_str()) {
                            base.join(value.trim()).ok().map(|u| u.to_string())
                        } else {
                            Some(clean(value).into_owned())
                        }
                    }
                    None => Some(clean(&element.text().collect::<String>()).into_owned()),
                })
                .collect()
        })
        .collect();
    let links = if options.links {
        links(&document, &base, options.same_host.then_some(page_url))
    } else {
        Vec::new()
    };
    let text = options
        .full_text
        .map(|limit| visible_text(&document, limit.unwrap_or(usize::MAX)));
    let mut check_failure = None;
    if let Some(wanted) = &options.expect_text {
        // Matched against the text as shown (entities decoded, whitespace collapsed).
        let shown = visible_text(&document, usize::MAX).replace('\n', " ");
        if !shown.contains(clean(wanted).as_ref()) {
            check_failure = Some(format!("text {wanted:?} not found"));
        }
    }
    if let Some(field) = &options.expect_selector
        && check_failure.is_none()
        && document.select(&field.selector).next().is_none()
    {
        check_failure = Some(format!("no element matches {}", field.name));
    }
    Extraction {
        selected,
        links,
        text,
        check_failure,
    }
}

/// The page's `<base href>` resolved against its URL, or the URL itself.
fn base_url(document: &Html, page_url: &Url) -> Url {
    let selector = Selector::parse("base[href]").expect("a valid selector");
    document
        .select(&selector)
        .next()
        .and_then(|base| base.value().attr("href"))
        .and_then(|href| page_url.join(href.trim()).ok())
        .unwrap_or_else(|| page_url.clone())
}

/// Every distinct http(s) link of `a` and `area` elements, absolute and without fragment.
fn links(document: &Html, base: &Url, same_host: Option<&Url>) -> Vec<String> {
    let selector = Selector::parse("a[href], area[href]").expect("a valid selector");
    let mut seen = HashSet::new();
    document
        .select(&selector)
        .filter_map(|element| element.value().attr("href"))
        .filter_map(|href| base.join(href.trim()).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .filter(|url| same_host.is_none_or(|page| url.host_str() == page.host_str()))
        .map(|mut url| {
            url.set_fragment(None);
            url.to_string()
        })
        .filter(|url| seen.insert(url.clone()))
        .collect()
}

/// Elements whose content is never shown.
const HIDDEN: &[&str] = &["script", "style", "noscript", "template", "head", "title"];
/// Elements that start and end a line.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tr",
    "ul",
];

/// The visible text: one line per block, whitespace collapsed within lines, no empty lines.
fn visible_text(document: &Html, limit: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = CleanText::new(usize::MAX);
    let mut remaining = limit;
    walk(document.root_element(), &mut |event| match event {
        Walk::Text(text) => line.push(text),
        Walk::Break => {
            let done = std::mem::replace(&mut line, CleanText::new(usize::MAX)).into_string();
            if !done.is_empty() && remaining > 0 {
                let kept: String = done.chars().take(remaining).collect();
                remaining -= kept.chars().count().min(remaining);
                lines.push(kept);
            }
        }
    });
    let last = line.into_string();
    if !last.is_empty() && remaining > 0 {
        lines.push(last.chars().take(remaining).collect());
    }
    lines.join("\n")
}

enum Walk<'a> {
    Text(&'a str),
    Break,
}

/// Visits the visible text under `element` in document order, with a break around each block.
/// Iterative, so a deeply nested page cannot overflow the stack.
fn walk<'a>(element: ElementRef<'a>, visit: &mut impl FnMut(Walk<'a>)) {
    let mut stack = vec![(*element, false)];
    while let Some((node, closing)) = stack.pop() {
        let block = matches!(node.value(), Node::Element(e) if BLOCKS.contains(&e.name()));
        if closing {
            visit(Walk::Break);
            continue;
        }
        match node.value() {
            Node::Text(text) => visit(Walk::Text(text)),
            Node::Element(e) if HIDDEN.contains(&e.name()) => {}
            Node::Element(_) | Node::Document | Node::Fragment => {
                if block {
                    visit(Walk::Break);
                    stack.push((node, true));
                }
                stack.extend(node.children().rev().map(|child| (child, false)));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(css: &str, attr: Option<&str>) -> Field {
        Field {
            name: css.to_string(),
            selector: Selector::parse(css).expect("selector"),
            attr: attr.map(str::to_string),
        }
    }

    fn page_url() -> Url {
        Url::parse("https://shop.example/catalog/page.html").expect("url")
    }

    const PAGE: &str = r#"<!doctype html><html><head><title>Shop</title>
        <script>var x = "<p>not text</p>";</script></head><body>
        <h1>Prices &amp; offers</h1>
        <div class="item"><span class="price">€ 10</span><a href="item/1#reviews">One</a></div>
        <div class="item"><span class="price">€ 20</span><a href="/item/2">Two</a></div>
        <a href="//cdn.example/x.js">cdn</a> <a href="mailto:me@shop.example">mail</a>
        <a href="https://other.example/">other</a><a href="item/1">again</a>
        <img src="img/logo.png"><p>Last <b>para</b>graph</p><template><p>inert</p></template>
        </body></html>"#;

    #[test]
    fn selectors_take_text_or_attributes() {
        let options = ExtractOptions {
            fields: vec![
                field("h1", None),
                field(".price", None),
                field("a", Some("href")),
                field("img", Some("src")),
                field(".missing", None),
            ],
            ..ExtractOptions::default()
        };
        let found = extract(PAGE, &page_url(), &options);
        assert_eq!(found.selected[0], ["Prices & offers"]);
        assert_eq!(found.selected[1], ["€ 10", "€ 20"]);
        assert_eq!(
            found.selected[2][0],
            "https://shop.example/catalog/item/1#reviews"
        );
        assert_eq!(found.selected[2][2], "https://cdn.example/x.js");
        assert_eq!(
            found.selected[3],
            ["https://shop.example/catalog/img/logo.png"]
        );
        assert!(found.selected[4].is_empty());
    }

    #[test]
    fn links_are_absolute_distinct_and_without_fragments() {
        let options = ExtractOptions {
            links: true,
            ..ExtractOptions::default()
        };
        let found = extract(PAGE, &page_url(), &options);
        assert_eq!(
            found.links,
            [
                "https://shop.example/catalog/item/1",
                "https://shop.example/item/2",
                "https://cdn.example/x.js",
                "https://other.example/",
            ]
        );
        let same_host = ExtractOptions {
            links: true,
            same_host: true,
            ..ExtractOptions::default()
        };
        let found = extract(PAGE, &page_url(), &same_host);
        assert_eq!(found.links.len(), 2, "{:?}", found.links);
    }

    #[test]
    fn base_href_changes_where_links_point() {
        let html = r#"<head><base href="/docs/v2/"></head><a href="intro">intro</a>"#;
        let options = ExtractOptions {
            links: true,
            ..ExtractOptions::default()
        };
        let found = extract(html, &page_url(), &options);
        assert_eq!(found.links, ["https://shop.example/docs/v2/intro"]);
    }

    #[test]
    fn visible_text_puts_blocks_on_lines() {
        let options = ExtractOptions {
            full_text: Some(None),
            ..ExtractOptions::default()
        };
        let text = extract(PAGE, &page_url(), &options).text.expect("text");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Prices & offers");
        assert_eq!(
            lines[1], "€ 10One",
            "inline elements without spaces run together, as rendered"
        );
        assert_eq!(lines.last(), Some(&"Last paragraph"));
        assert!(!text.contains("not text") && !text.contains("inert") && !text.contains("Shop"));

        let limited = ExtractOptions {
            full_text: Some(Some(20)),
            ..ExtractOptions::default()
        };
        let text = extract(PAGE, &page_url(), &limited).text.expect("text");
        assert_eq!(text.replace('\n', "").chars().count(), 20, "{text:?}");
    }

    #[test]
    fn expectations_name_what_is_missing() {
        let options = ExtractOptions {
            expect_text: Some("Prices & offers".into()),
            expect_selector: Some(field(".price", None)),
            ..ExtractOptions::default()
        };
        assert_eq!(extract(PAGE, &page_url(), &options).check_failure, None);
        let missing = ExtractOptions {
            expect_text: Some("Sold out".into()),
            ..ExtractOptions::default()
        };
        assert_eq!(
            extract(PAGE, &page_url(), &missing)
                .check_failure
                .as_deref(),
            Some("text \"Sold out\" not found")
        );
        let hidden = ExtractOptions {
            expect_text: Some("not text".into()),
            ..ExtractOptions::default()
        };
        assert!(
            extract(PAGE, &page_url(), &hidden).check_failure.is_some(),
            "script text counted"
        );
        let no_match = ExtractOptions {
            expect_selector: Some(field("h1.title", None)),
            ..ExtractOptions::default()
        };
        assert_eq!(
            extract(PAGE, &page_url(), &no_match)
                .check_failure
                .as_deref(),
            Some("no element matches h1.title")
        );
    }

    #[test]
    fn broken_and_deeply_nested_html_is_handled() {
        let deep = "<div>".repeat(5_000) + "deep" + &"</div>".repeat(5_000);
        let options = ExtractOptions {
            full_text: Some(None),
            fields: vec![field("div", None)],
            ..ExtractOptions::default()
        };
        let found = extract(&deep, &page_url(), &options);
        assert_eq!(found.text.as_deref(), Some("deep"));
        let broken = extract("<p>open <b>bold <i>both</p> after", &page_url(), &options);
        assert_eq!(broken.text.as_deref(), Some("open bold both\nafter"));
    }
}
