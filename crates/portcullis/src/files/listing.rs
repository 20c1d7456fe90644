//! `--browse`: a directory's entries as an HTML table (sortable by name, size or date through
//! the query string) or as JSON for `Accept: application/json`. Names are escaped for HTML and
//! percent-encoded in links; dotfiles are left out unless they may be served.

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

/// One entry of a listing.
#[derive(Debug)]
pub(crate) struct Item {
    name: String,
    dir: bool,
    size: u64,
    modified: Option<SystemTime>,
}

/// How to order the entries: `?sort=name|size|mtime&order=asc|desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortBy {
    Name,
    Size,
    Modified,
}

/// Reads a directory (directories first, then files, each group sorted).
pub(crate) fn read(
    dir: &Path,
    dotfiles: bool,
    sort: SortBy,
    descending: bool,
) -> std::io::Result<Vec<Item>> {
    let mut items = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: cannot be linked to
        };
        if !dotfiles && name.starts_with('.') {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        items.push(Item {
            name,
            dir: meta.is_dir(),
            size: if meta.is_dir() { 0 } else { meta.len() },
            modified: meta.modified().ok(),
        });
    }
    items.sort_by(|a, b| {
        let order = match sort {
            SortBy::Name => a.name.cmp(&b.name),
            SortBy::Size => a.size.cmp(&b.size).then_with(|| a.name.cmp(&b.name)),
            SortBy::Modified => a
                .modified
                .cmp(&b.modified)
                .then_with(|| a.name.cmp(&b.name)),
        };
        b.dir
            .cmp(&a.dir)
            .then(if descending { order.reverse() } else { order })
    });
    Ok(items)
}

/// Parses `sort` and `order` from a query string.
pub(crate) fn sort_from_query(query: Option<&str>) -> (SortBy, bool) {
    let mut sort = SortBy::Name;
    let mut descending = false;
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("sort", "size")) => sort = SortBy::Size,
            Some(("sort", "mtime")) => sort = SortBy::Modified,
            Some(("sort", "name")) => sort = SortBy::Name,
            Some(("order", "desc")) => descending = true,
            Some(("order", "asc")) => descending = false,
            _ => {}
        }
    }
    (sort, descending)
}

/// The listing as JSON: `[{"name", "type": "file"|"directory", "size", "modified"}]`.
pub(crate) fn json(items: &[Item]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "\n  {{\"name\": {}, \"type\": \"{}\", \"size\": {}, \"modified\": {}}}",
            json_string(&item.name),
            if item.dir { "directory" } else { "file" },
            item.size,
            item.modified.map_or_else(
                || "null".to_owned(),
                |t| json_string(&httpdate::fmt_http_date(t))
            )
        );
    }
    out.push_str("\n]\n");
    out
}

/// The listing as an HTML page for `request_path` (which ends with `/`).
pub(crate) fn html(request_path: &str, items: &[Item], sort: SortBy, descending: bool) -> String {
    let title =
        escape_html(&percent_encoding::percent_decode_str(request_path).decode_utf8_lossy());
    let header = |label: &str, by: SortBy, key: &str| {
        let next = if sort == by && !descending {
            "desc"
        } else {
            "asc"
        };
        format!("<th><a href=\"?sort={key}&amp;order={next}\">{label}</a></th>")
    };
    let mut rows = String::new();
    if request_path != "/" {
        rows.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for item in items {
        let suffix = if item.dir { "/" } else { "" };
        let href = percent_encoding::utf8_percent_encode(&item.name, LINK).to_string();
        let _ = writeln!(
            rows,
            "<tr><td><a href=\"{href}{suffix}\">{}{suffix}</a></td><td>{}</td><td>{}</td></tr>",
            escape_html(&item.name),
            if item.dir {
                "-".to_owned()
            } else {
                item.size.to_string()
            },
            item.modified
                .map_or_else(String::new, |t| escape_html(&httpdate::fmt_http_date(t)))
        );
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Index of {title}</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; margin: 2em; }}\n\
         td, th {{ text-align: left; padding: 0.15em 1.5em 0.15em 0; }}\n\
         </style>\n</head>\n<body>\n<h1>Index of {title}</h1>\n<table>\n<tr>{}{}{}</tr>\n\
         {rows}</table>\n</body>\n</html>\n",
        header("Name", SortBy::Name, "name"),
        header("Size", SortBy::Size, "size"),
        header("Modified", SortBy::Modified, "mtime"),
    )
}

/// What a link's path segment must escape.
const LINK: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_html_links_and_json() {
        let items = vec![Item {
            name: "<b>\"x\" & y.txt".into(),
            dir: false,
            size: 3,
            modified: None,
        }];
        let page = html("/d/", &items, SortBy::Name, false);
        assert!(
            page.contains("&lt;b&gt;&quot;x&quot; &amp; y.txt"),
            "{page}"
        );
        assert!(
            page.contains("href=\"%3Cb%3E%22x%22%20%26%20y.txt\""),
            "{page}"
        );
        assert!(!page.contains("<b>\""));
        assert_eq!(
            json(&items),
            "[\n  {\"name\": \"<b>\\\"x\\\" & y.txt\", \"type\": \"file\", \"size\": 3, \"modified\": null}\n]\n"
        );
    }

    #[test]
    fn sort_parameters() {
        assert_eq!(
            sort_from_query(Some("sort=size&order=desc")),
            (SortBy::Size, true)
        );
        assert_eq!(sort_from_query(None), (SortBy::Name, false));
    }
}
