//! Magento's REST error bodies: `{"message": "... %name ...", "parameters": {...}}`.
//!
//! Magento renders a `LocalizedException` with its raw phrase (placeholders kept) and the
//! placeholder values beside it; an aggregate exception (MSI's `ValidationException`) adds an
//! `errors` list. The texts below are copied from Magento 2.4 / MSI sources, cited where used.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// One refusal, as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Named placeholder values (an object) or positional ones (an array); none: omitted.
    pub parameters: Option<Value>,
    pub errors: Option<Vec<Value>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            parameters: None,
            errors: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn with_named(mut self, pairs: &[(&str, Value)]) -> ApiError {
        let mut map = Map::new();
        for (k, v) in pairs {
            map.insert((*k).to_string(), v.clone());
        }
        self.parameters = Some(Value::Object(map));
        self
    }

    pub fn with_positional(mut self, values: Vec<Value>) -> ApiError {
        self.parameters = Some(Value::Array(values));
        self
    }

    /// `Magento\Webapi\Controller\Rest\Router::match` when no route fits (also what an
    /// unknown store code ends in: the path processor leaves it in the path).
    pub fn no_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "Request does not match any route.")
    }

    /// `Magento\Webapi\Controller\Rest\RequestValidator::checkPermissions`.
    pub fn unauthorized(resource: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "The consumer isn't authorized to access %resources.",
        )
        .with_named(&[("resources", json!(resource))])
    }

    /// The JSON deserializer in production mode (`Decoding error.`; developer mode adds
    /// the parser's message and a trace).
    pub fn decoding_error() -> ApiError {
        ApiError::bad_request("Decoding error.")
    }

    /// `ServiceInputProcessor::processInputErrorForNestedSet`: a property the data
    /// interface has no getter for. `field` is the property name camel-cased, as Magento
    /// reports it. This is the 2.4.7+ text; 2.4.6 and older said `Property "…" does not have
    /// accessor method "…" in class "…".` (Adobe's release notes list both).
    pub fn not_supported(property: &str) -> ApiError {
        ApiError::bad_request(
            "\"%fieldName\" is not supported. Correct the field name and try again.",
        )
        .with_named(&[("fieldName", json!(upper_camel(property)))])
    }

    /// `ServiceInputProcessor::processInputError`: a required method argument is missing.
    pub fn required(param: &str) -> ApiError {
        ApiError::bad_request("\"%fieldName\" is required. Enter and try again.")
            .with_named(&[("fieldName", json!(param))])
    }

    /// `ServiceInputProcessor::_createFromArray` when a value cannot be converted.
    pub fn invalid_type(field: &str, value: &Value, expected: &str) -> ApiError {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        ApiError::bad_request(format!(
            "Error occurred during \"{field}\" processing. The \"{shown}\" value's type is invalid. The \"{expected}\" type was expected. Verify and try again."
        ))
    }

    /// `TypeProcessor::processSimpleAndAnyType` for a method argument itself (a path id that
    /// is not a number).
    pub fn invalid_argument(value: &str, expected: &str) -> ApiError {
        ApiError::bad_request(format!(
            "The \"{value}\" value's type is invalid. The \"{expected}\" type was expected. Verify and try again."
        ))
    }

    /// `Magento\Framework\Webapi\Validator\EntityArrayValidator` with input limits on.
    pub fn input_limit(class_name: &str, max: usize) -> ApiError {
        ApiError::bad_request("Maximum items of type \"%type\" is %max")
            .with_named(&[("type", json!(class_name)), ("max", json!(max))])
    }

    /// `ProductRepository::get` / `::save` for a SKU that is not there.
    pub fn product_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "The product that was requested doesn't exist. Verify the product and try again.",
        )
    }

    /// `OrderRepository::get`, `ShipmentRepository::get`.
    pub fn entity_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "The entity that was requested doesn't exist. Verify the entity and try again.",
        )
    }

    /// `NoSuchEntityException::singleField` (customers by id).
    pub fn no_such_entity(field: &str, value: Value) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "No such entity with %fieldName = %fieldValue",
        )
        .with_named(&[("fieldName", json!(field)), ("fieldValue", value)])
    }

    /// `ProductRepository::save` catching a `DeadlockException` (MySQL SQLSTATE[40001] 1213):
    /// a `TemporaryState\CouldNotSaveException`, which the REST layer answers with 400.
    pub fn deadlock() -> ApiError {
        ApiError::bad_request("Database deadlock found when trying to get lock")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("message".into(), Value::String(self.message));
        if let Some(errors) = self.errors {
            body.insert("errors".into(), Value::Array(errors));
        }
        if let Some(parameters) = self.parameters {
            body.insert("parameters".into(), parameters);
        }
        (self.status, Json(Value::Object(body))).into_response()
    }
}

/// `SimpleDataObjectConverter::snakeCaseToUpperCamelCase`.
pub fn upper_camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}
