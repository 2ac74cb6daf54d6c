//! What can go wrong talking to Magento, typed where a caller must branch.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum MagentoError {
    /// 401: Magento cannot tell a bad token from a missing permission, so both are named.
    #[error(
        "{method} {path}: Magento refused the credentials (401: {message}). Either the integration's token was revoked or is wrong (magento.access_token / CONNECTOR_MAGENTO_ACCESS_TOKEN), the integration lacks the ACL resource this call needs (System > Integrations > API), or, with magento.auth = \"bearer\" on Magento 2.4.4 or later, \"Allow OAuth Access Tokens to be used as standalone Bearer tokens\" is off (use it, or magento.auth = \"oauth1\")"
    )]
    Unauthorized {
        method: String,
        path: String,
        message: String,
    },
    /// Magento answered with an error that retrying will not fix.
    #[error("{method} {path}: Magento answered {status}: {message}")]
    Http {
        method: String,
        path: String,
        status: u16,
        message: String,
        body: Option<Value>,
    },
    #[error("{method} {path}: Magento still failing after {attempts} tries: {last}")]
    GaveUp {
        method: String,
        path: String,
        attempts: u32,
        last: String,
    },
    #[error("{method} {path}: cannot reach Magento: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    #[error("{method} {path}: unexpected reply from Magento: {message}")]
    BadReply {
        method: String,
        path: String,
        message: String,
    },
}

impl MagentoError {
    pub fn status(&self) -> Option<u16> {
        match self {
            MagentoError::Http { status, .. } => Some(*status),
            MagentoError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// The record does not exist. A 404 "Request does not match any route." is not that: the
    /// URL is wrong (store code, base URL, a module missing), and a flow that took it for an
    /// absent record would try to create one.
    pub fn is_not_found(&self) -> bool {
        match self {
            MagentoError::Http {
                status: 404,
                message,
                ..
            } => !is_route_miss(message),
            _ => false,
        }
    }
}

/// Magento's answer when no route matches the URL (an unknown store code included).
pub fn is_route_miss(message: &str) -> bool {
    message.starts_with("Request does not match any route")
}

/// Magento's error message with its placeholders filled: `%1` from a `parameters` array,
/// `%name` from a `parameters` object.
pub fn error_message(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        return crate::http::describe_plain_body(body, "Magento");
    };
    let Some(message) = json.get("message").and_then(Value::as_str) else {
        return json.to_string().chars().take(300).collect();
    };
    let mut text = fill_placeholders(message, json.get("parameters"));
    // A validation exception lists each reason in `errors` (MSI's source items: one bad item
    // fails the batch, and only these say which and why).
    if let Some(Value::Array(errors)) = json.get("errors") {
        let reasons: Vec<String> = errors
            .iter()
            .filter_map(|e| {
                let m = e.get("message").and_then(Value::as_str)?;
                Some(fill_placeholders(m, e.get("parameters")))
            })
            .collect();
        if !reasons.is_empty() {
            text = format!("{text}: {}", reasons.join("; "));
        }
    }
    truncate(text)
}

/// The longest error text kept from a reply: enough for any real message, small enough that a
/// hostile or broken reply cannot fill the log or the store.
const MAX_MESSAGE_CHARS: usize = 2000;

/// Fills placeholders in one pass over `message`: a value put in is never scanned again, so a
/// parameter that itself holds `%1` cannot make the text grow without bound (before, each
/// placeholder was replaced over the whole text in turn: a 212-byte reply became 134 MB).
fn fill_placeholders(message: &str, parameters: Option<&Value>) -> String {
    let value_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let items: &[Value] = match parameters {
        Some(Value::Array(items)) => items,
        _ => &[],
    };
    let map = match parameters {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    };
    // Named placeholders with positional values (the REST layer drops the names of a
    // string[] field): filled in order of appearance.
    let mut positional = items.iter();
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name_len = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .map(char::len_utf8)
            .sum::<usize>();
        let name = &after[..name_len];
        let mut consumed = 0;
        let mut value = None;
        if let Some(map) = map {
            // The longest key the name starts with (`%fieldName` before `%field`).
            if let Some(key) = map
                .keys()
                .filter(|k| !k.is_empty() && name.starts_with(k.as_str()))
                .max_by_key(|k| k.len())
            {
                consumed = key.len();
                value = Some(value_text(&map[key]));
            }
        } else if !items.is_empty() && name_len > 0 {
            // `%10` before `%1`: the longest run of digits that names a parameter.
            let digits = name.bytes().take_while(u8::is_ascii_digit).count();
            let index = (1..=digits).rev().find_map(|n| {
                let i: usize = name[..n].parse().ok()?;
                (1..=items.len()).contains(&i).then_some((n, i))
            });
            if let Some((n, i)) = index {
                consumed = n;
                value = Some(value_text(&items[i - 1]));
            } else if let Some(v) = positional.next() {
                consumed = name_len;
                value = Some(value_text(v));
            }
        }
        match value {
            Some(v) => out.push_str(&v),
            None => {
                out.push('%');
                consumed = 0;
            }
        }
        rest = &after[consumed..];
        if out.len() > MAX_MESSAGE_CHARS * 4 {
            break;
        }
    }
    out.push_str(rest);
    truncate(out)
}

/// At most [`MAX_MESSAGE_CHARS`], on one line.
pub(crate) fn truncate(text: String) -> String {
    crate::http::clip_message(text, MAX_MESSAGE_CHARS)
}

/// A 400 that is a database deadlock or lock timeout between concurrent product saves:
/// worth another try.
pub fn is_transient_400(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("deadlock")
        || m.contains("serialization failure")
        || m.contains("lock wait timeout")
        || m.trim_end_matches('.') == "unable to save product"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_from_arrays_and_objects() {
        assert_eq!(
            error_message(
                r#"{"message":"The \"%1\" product wasn't found.","parameters":["AB-1"]}"#
            ),
            "The \"AB-1\" product wasn't found."
        );
        assert_eq!(
            error_message(
                r#"{"message":"The consumer isn't authorized to access %resources.","parameters":{"resources":"Magento_Catalog::products"}}"#
            ),
            "The consumer isn't authorized to access Magento_Catalog::products."
        );
        assert_eq!(
            error_message(
                r#"{"message":"%1 and %10","parameters":["a","b","c","d","e","f","g","h","i","j"]}"#
            ),
            "a and j"
        );
    }

    #[test]
    fn a_parameter_holding_placeholders_is_not_filled_again() {
        // 212 bytes that grew to 134 MB when each placeholder was replaced over the whole text.
        let params: Vec<String> = (1..=9)
            .map(|i| {
                if i == 1 {
                    "x".into()
                } else {
                    format!("%{}", i - 1).repeat(8)
                }
            })
            .collect();
        let body = serde_json::json!({"message": "%9".repeat(8), "parameters": params});
        let message = error_message(&body.to_string());
        assert_eq!(message, "%8".repeat(64));
        let body = serde_json::json!({"message": "%a %a", "parameters": {"a": "%a%a%a"}});
        assert_eq!(error_message(&body.to_string()), "%a%a%a %a%a%a");
        let long = serde_json::json!({"message": "y".repeat(100_000)});
        assert!(error_message(&long.to_string()).chars().count() < 2100);
        let lines = serde_json::json!({"message": "one\ntwo\r\nthree"});
        assert_eq!(error_message(&lines.to_string()), "one two three");
    }

    #[test]
    fn each_listed_error_is_named() {
        assert_eq!(
            error_message(
                r#"{"message":"Validation Failed","errors":[{"message":"\"%field\" can not be empty.","parameters":{"field":"sku"}},{"message":"\"%1\" should be numeric.","parameters":["quantity"]}]}"#
            ),
            "Validation Failed: \"sku\" can not be empty.; \"quantity\" should be numeric."
        );
    }

    #[test]
    fn deadlocks_are_transient_and_validation_errors_are_not() {
        assert!(is_transient_400(
            "SQLSTATE[40001]: Serialization failure: 1213 Deadlock found when trying to get lock; try restarting transaction"
        ));
        assert!(is_transient_400("Unable to save product"));
        assert!(!is_transient_400(
            "URL key for specified store already exists."
        ));
    }
}
