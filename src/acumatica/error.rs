//! What can go wrong talking to Acumatica, typed where a caller must branch.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AcumaticaError {
    /// The credentials were refused (not retried: retrying would not help and can lock the user).
    #[error(
        "Acumatica refused the login of user `{user}` to tenant `{tenant}` at {url}: {message}; check {check}"
    )]
    LoginRejected {
        url: String,
        user: String,
        tenant: String,
        message: String,
        /// The settings that decide this login (they differ between session and OAuth 2.0).
        check: &'static str,
    },
    /// Every API-user slot of the licence stayed taken (429, or 500 "API Login Limit").
    #[error(
        "Acumatica's API-user limit is reached: user `{user}` could not log in to {url} after {attempts} tries ({message}); an abandoned session frees its slot after about 10 minutes — close other integrations' sessions, or lower acumatica.max_sessions"
    )]
    LoginLimit {
        url: String,
        user: String,
        attempts: u32,
        message: String,
    },
    /// Acumatica answered with an error that retrying will not fix.
    #[error("{method} {path}: Acumatica answered {status}: {message}")]
    Http {
        method: String,
        path: String,
        status: u16,
        message: String,
        /// The reply body, when it was JSON (validation errors live inside the entity).
        body: Option<Value>,
    },
    /// Retryable failures continued past the last try.
    #[error("{method} {path}: Acumatica still failing after {attempts} tries: {last}")]
    GaveUp {
        method: String,
        path: String,
        attempts: u32,
        last: String,
    },
    /// Acumatica could not be reached at all.
    #[error("{method} {path}: cannot reach Acumatica: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    /// A reply that is not what the API describes.
    #[error("{method} {path}: unexpected reply from Acumatica: {message}")]
    BadReply {
        method: String,
        path: String,
        message: String,
    },
}

impl AcumaticaError {
    /// The HTTP status Acumatica answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            AcumaticaError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The licence had no free API-user slot for a login.
    pub fn is_login_limit(&self) -> bool {
        matches!(self, AcumaticaError::LoginLimit { .. })
    }

    /// The record (or route) does not exist. Acumatica answers a GET or DELETE of a missing
    /// record with 500 `NoEntitySatisfiesTheConditionException` (the Default endpoint declares
    /// no 404 for them), a missing route with 404.
    pub fn is_not_found(&self) -> bool {
        match self {
            AcumaticaError::Http { status: 404, .. } => true,
            AcumaticaError::Http {
                status: 500,
                message,
                body,
                ..
            } => is_no_entity(message, body.as_ref()),
            _ => false,
        }
    }

    /// `If-Match` / `If-None-Match` failed: the record exists (or not) contrary to the request.
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }
}

/// A 500 that says the record does not exist: not a server failure, not worth a retry.
pub(crate) fn is_no_entity(message: &str, body: Option<&Value>) -> bool {
    body.and_then(|b| b.get("exceptionType"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("NoEntitySatisfiesTheConditionException"))
        || message.starts_with("No entity satisfies the condition")
}

/// The most useful sentence in an Acumatica error body: `exceptionMessage` beats the generic
/// `message` ("An error has occurred."), and per-field `error`s inside a returned entity are
/// listed with their field names.
pub fn error_message(body: &str) -> String {
    crate::http::clip_message(error_message_whole(body), 2000)
}

fn error_message_whole(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        return crate::http::describe_plain_body(body, "Acumatica");
    };
    let mut field_errors = Vec::new();
    collect_field_errors(&json, "", &mut field_errors);
    if !field_errors.is_empty() {
        return field_errors.join("; ");
    }
    // ASP.NET's model binder (an unwrapped value, a field the entity does not define, a value
    // of the wrong type): "The request is invalid." alone names nothing; the reasons are in
    // `modelState`, keyed by the offending member.
    if let Some(Value::Object(state)) = json.get("modelState") {
        let reasons: Vec<String> = state
            .iter()
            .map(|(member, errors)| {
                let texts: Vec<&str> = match errors {
                    Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                    Value::String(text) => vec![text.as_str()],
                    _ => Vec::new(),
                };
                if texts.is_empty() {
                    member.clone()
                } else {
                    format!("{member}: {}", texts.join(" "))
                }
            })
            .collect();
        if !reasons.is_empty() {
            let head = json
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("The request is invalid.")
                .trim();
            return format!("{head} {}", reasons.join("; "));
        }
    }
    for key in ["exceptionMessage", "message", "error_description", "error"] {
        if let Some(text) = json.get(key).and_then(Value::as_str)
            && !text.trim().is_empty()
        {
            return text.trim().to_string();
        }
    }
    json.to_string().chars().take(300).collect()
}

fn collect_field_errors(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(err)) = map.get("error")
                && !path.is_empty()
            {
                out.push(format!("{path}: {err}"));
            }
            for (key, child) in map {
                if key == "error" {
                    continue;
                }
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect_field_errors(child, &child_path, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_field_errors(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exception_message_beats_the_generic_one() {
        let body = r#"{"message":"An error has occurred.","exceptionMessage":"Invalid credentials.","exceptionType":"PX.Data.PXException"}"#;
        assert_eq!(error_message(body), "Invalid credentials.");
    }

    #[test]
    fn field_errors_inside_the_entity_are_named() {
        let body = r#"{"id":"x","CustomerID":{"value":"C1","error":"'Customer' cannot be found in the system."},"Details":[{"InventoryID":{"value":"X","error":"Unknown item"}}]}"#;
        assert_eq!(
            error_message(body),
            "CustomerID: 'Customer' cannot be found in the system.; Details[0].InventoryID: Unknown item"
        );
    }

    #[test]
    fn model_state_reasons_are_named() {
        let body = r#"{"message":"The request is invalid.","modelState":{"entity.Colour":["The field 'Colour' is not defined."]}}"#;
        assert_eq!(
            error_message(body),
            "The request is invalid. entity.Colour: The field 'Colour' is not defined."
        );
    }

    #[test]
    fn html_and_empty_bodies_are_described() {
        assert!(error_message("<html>502</html>").contains("HTML"));
        assert_eq!(error_message(""), "(empty reply)");
    }
}
