//! Acumatica's error replies: the ASP.NET Web API `HttpError` body (`message`,
//! `exceptionMessage`, `exceptionType`, `stackTrace`, `modelState`), as the spec's
//! `HttpError` schema describes it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `{"message": …}` alone, as the framework answers before any application code runs.
pub fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// An exception raised by the application: "An error has occurred." plus its details.
pub fn exception(status: StatusCode, exception_message: &str, exception_type: &str) -> Response {
    (
        status,
        Json(json!({
            "message": "An error has occurred.",
            "exceptionMessage": exception_message,
            "exceptionType": exception_type,
            "stackTrace": null,
        })),
    )
        .into_response()
}

/// A body the model binder could not read (an unwrapped value, an unknown field): 400 with the
/// offending JSON path in `modelState`, as ASP.NET Web API reports binding errors.
pub fn model_state(path: &str, text: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "message": "The request is invalid.",
            "modelState": { path: [text] },
        })),
    )
        .into_response()
}

/// 401 for a request without a live session or token.
pub fn not_logged_in() -> Response {
    message(StatusCode::UNAUTHORIZED, "You are not logged in.")
}

/// The invalid-credentials answer of `POST /entity/auth/login` (500, `PXException`).
pub fn invalid_credentials() -> Response {
    exception(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Error: Invalid credentials. Please try again.",
        "PX.Data.PXException",
    )
}

/// GET or DELETE of a record that does not exist.
pub fn no_entity() -> Response {
    exception(
        StatusCode::INTERNAL_SERVER_ERROR,
        "No entity satisfies the condition.",
        "PX.Api.ContractBased.NoEntitySatisfiesTheConditionException",
    )
}

/// A route the endpoint does not have (an entity it does not define, a wrong path).
pub fn not_found(path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "message": format!("No HTTP resource was found that matches the request URI '{path}'."),
        })),
    )
        .into_response()
}

/// 412 for `If-None-Match: *` on an existing record or `If-Match: *` on a missing one.
pub fn precondition_failed(text: &str) -> Response {
    exception(
        StatusCode::PRECONDITION_FAILED,
        text,
        "PX.Api.ContractBased.PreconditionFailedException",
    )
}

/// 422 with the entity as submitted, each bad field carrying its `error`, and the record's
/// summary `error`.
pub fn unprocessable(entity: Value) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(entity)).into_response()
}
