//! A small XML reader for the endpoint maintenance API: elements, attributes, self-closing
//! tags, comments, the declaration and CDATA-free text. Enough for endpoint definitions; it
//! refuses what is not well-formed, with a position.

/// One element; names are local (a namespace prefix is dropped), attributes in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

fn local(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_string()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Parses a document and returns its root element.
pub fn parse(text: &str) -> Result<Element, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let err =
        |at: usize, what: &str| format!("The XML is not well-formed at position {at}: {what}.");
    while i < b.len() {
        if b[i] != b'<' {
            if !b[i].is_ascii_whitespace() && stack.is_empty() {
                return Err(err(i, "text outside the root element"));
            }
            i += 1;
            continue;
        }
        if text[i..].starts_with("<?") {
            i = text[i..]
                .find("?>")
                .map(|e| i + e + 2)
                .ok_or_else(|| err(i, "unclosed declaration"))?;
            continue;
        }
        if text[i..].starts_with("<!--") {
            i = text[i..]
                .find("-->")
                .map(|e| i + e + 3)
                .ok_or_else(|| err(i, "unclosed comment"))?;
            continue;
        }
        if text[i..].starts_with("<!") {
            i = text[i..]
                .find('>')
                .map(|e| i + e + 1)
                .ok_or_else(|| err(i, "unclosed declaration"))?;
            continue;
        }
        if text[i..].starts_with("</") {
            let end = text[i..]
                .find('>')
                .map(|e| i + e)
                .ok_or_else(|| err(i, "unclosed tag"))?;
            let name = local(text[i + 2..end].trim());
            let Some(element) = stack.pop() else {
                return Err(err(i, "closing tag without an opening tag"));
            };
            if element.name != name {
                return Err(err(i, &format!("</{name}> closes <{}>", element.name)));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => root = Some(element),
                None => return Err(err(i, "a second root element")),
            }
            i = end + 1;
            continue;
        }
        // An opening or self-closing tag.
        let start = i + 1;
        let mut j = start;
        while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
            j += 1;
        }
        if j == start {
            return Err(err(i, "a tag without a name"));
        }
        let mut element = Element {
            name: local(&text[start..j]),
            attributes: Vec::new(),
            children: Vec::new(),
        };
        let self_closing;
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j >= b.len() {
                return Err(err(i, "unclosed tag"));
            }
            if b[j] == b'>' {
                self_closing = false;
                j += 1;
                break;
            }
            if b[j] == b'/' {
                if b.get(j + 1) != Some(&b'>') {
                    return Err(err(j, "'/' not followed by '>'"));
                }
                self_closing = true;
                j += 2;
                break;
            }
            let name_start = j;
            while j < b.len() && b[j] != b'=' && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                j += 1;
            }
            let attr_name = text[name_start..j].to_string();
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if b.get(j) != Some(&b'=') {
                return Err(err(j, &format!("attribute '{attr_name}' without a value")));
            }
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let quote = match b.get(j) {
                Some(q @ (b'"' | b'\'')) => *q,
                _ => return Err(err(j, "an attribute value without quotes")),
            };
            let value_start = j + 1;
            let value_end = text[value_start..]
                .find(quote as char)
                .map(|e| value_start + e)
                .ok_or_else(|| err(j, "an unterminated attribute value"))?;
            if !attr_name.starts_with("xmlns") {
                element
                    .attributes
                    .push((local(&attr_name), unescape(&text[value_start..value_end])));
            }
            j = value_end + 1;
        }
        i = j;
        if self_closing {
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => root = Some(element),
                None => return Err(err(start, "a second root element")),
            }
        } else {
            stack.push(element);
        }
    }
    if let Some(open) = stack.last() {
        return Err(err(text.len(), &format!("<{}> is not closed", open.name)));
    }
    root.ok_or_else(|| err(0, "no root element"))
}

/// Escapes text for an attribute value.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_endpoint() {
        let doc = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- the connector's endpoint -->
<Endpoint xmlns="http://www.acumatica.com/entity/maintenance/5.31" xmlns:xsi="x" name="MC" version="24.200.001">
  <ExtendsEndpoint name="Default" version="24.200.001" />
  <TopLevelEntity name="A &amp; B" screen='SM208000'><Fields/></TopLevelEntity>
</Endpoint>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Endpoint");
        assert_eq!(root.attr("name"), Some("MC"));
        assert_eq!(
            root.attributes.len(),
            2,
            "namespace declarations are not attributes"
        );
        assert_eq!(root.children.len(), 2);
        assert_eq!(root.children[1].attr("name"), Some("A & B"));
        assert_eq!(root.children[1].attr("screen"), Some("SM208000"));
    }

    #[test]
    fn refuses_broken_documents() {
        assert!(parse("<a><b></a>").unwrap_err().contains("</a> closes <b>"));
        assert!(parse("<a>").unwrap_err().contains("not closed"));
        assert!(parse("<a x=1/>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
    }
}
