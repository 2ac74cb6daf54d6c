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
    text
}

fn fill_placeholders(message: &str, parameters: Option<&Value>) -> String {
    let value_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = message.to_string();
    match parameters {
        Some(Value::Array(items)) => {
            // Highest index first, so %1 does not eat the start of %10.
            for (i, item) in items.iter().enumerate().rev() {
                out = out.replace(&format!("%{}", i + 1), &value_text(item));
            }
            // Named placeholders with positional values (the REST layer drops the names of a
            // string[] field): filled in order of appearance.
            let mut values = items.iter().map(value_text);
            let mut filled = String::with_capacity(out.len());
            let mut rest = out.as_str();
            while let Some(at) = rest.find('%') {
                let name_len = rest[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .map(char::len_utf8)
                    .sum::<usize>();
                filled.push_str(&rest[..at]);
                if name_len > 0
                    && let Some(value) = values.next()
                {
                    filled.push_str(&value);
                } else {
                    filled.push_str(&rest[at..at + 1 + name_len]);
                }
                rest = &rest[at + 1 + name_len..];
            }
            filled.push_str(rest);
            out = filled;
        }
        Some(Value::Object(map)) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
            for key in keys {
                out = out.replace(&format!("%{key}"), &value_text(&map[key]));
            }
        }
        _ => {}
    }
    out
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
