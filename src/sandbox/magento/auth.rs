//! Store code and authentication, checked before any handler as Magento's REST front
//! controller does: the route (with its store code) must match, then the caller must be
//! allowed the route's ACL resource.

use std::sync::Arc;

use axum::extract::{MatchedPath, OriginalUri, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::MagentoSim;
use super::errors::ApiError;
use super::model::Scope;
use super::oauth1::{self, OauthSecrets};

/// The store code of a `/rest/{store}/V1/…` path, as a scope; any other code makes the path
/// one no route matches (Magento's path processor leaves an unknown code in the path).
pub fn scope_of(store: &str) -> Result<Scope, ApiError> {
    match store {
        "default" => Ok(Scope::StoreView),
        "all" => Ok(Scope::Global),
        _ => Err(ApiError::no_route()),
    }
}

/// The ACL resource of a route (from the modules' `etc/webapi.xml`), named in the 401.
fn acl_resource(method: &str, route: &str) -> &'static str {
    let route = route.split("/V1/").nth(1).unwrap_or(route);
    match (method, route) {
        (_, "products/base-prices") => "Magento_Catalog::catalog",
        (_, r) if r.starts_with("bulk") => {
            "Magento_Logging::system_magento_logging_bulk_operations"
        }
        (_, r) if r.starts_with("products/{sku}/stockItems") => {
            "Magento_CatalogInventory::cataloginventory"
        }
        (_, r) if r.starts_with("products") => "Magento_Catalog::products",
        ("GET", "inventory/source-items") => "Magento_InventoryApi::source",
        (_, "inventory/source-items") => "Magento_InventoryApi::source_item_save",
        (_, "order/{id}/ship") => "Magento_Sales::ship",
        (_, r) if r.starts_with("orders") => "Magento_Sales::actions_view",
        (_, r) if r.starts_with("shipment") => "Magento_Sales::shipment",
        (_, r) if r.starts_with("customers") => "Magento_Customer::customer",
        _ => "Magento_Backend::admin",
    }
}

pub async fn middleware(
    State(sim): State<Arc<MagentoSim>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let store = path
        .strip_prefix("/rest/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if let Err(e) = scope_of(store) {
        return e.into_response();
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let resource = acl_resource(request.method().as_str(), &route);
    if authorized(&sim, &request) {
        next.run(request).await
    } else {
        ApiError::unauthorized(resource).into_response()
    }
}

fn authorized(sim: &MagentoSim, request: &Request) -> bool {
    let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let credentials = &sim.credentials;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return sim.knobs().bearer && token.trim() == credentials.access_token;
    }
    let Some(params) = oauth1::parse_authorization(value) else {
        return false;
    };
    // The URI the client signed: the one it sent, before the sandbox's nesting stripped
    // the `/magento` prefix.
    let uri = request
        .extensions()
        .get::<OriginalUri>()
        .map(|o| o.0.clone())
        .unwrap_or_else(|| request.uri().clone());
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base_uri = oauth1::base_string_uri("http", host, uri.path());
    let secrets = OauthSecrets {
        consumer_key: &credentials.consumer_key,
        consumer_secret: &credentials.consumer_secret,
        access_token: &credentials.access_token,
        access_token_secret: &credentials.access_token_secret,
    };
    if oauth1::verify(
        request.method().as_str(),
        &base_uri,
        uri.query(),
        &params,
        &secrets,
        chrono::Utc::now().timestamp().max(0) as u64,
    )
    .is_err()
    {
        return false;
    }
    // A nonce is good for one request per timestamp (`Magento\Integration\Model\OauthService`
    // refuses a replay).
    let key = format!("{}:{}", params["oauth_timestamp"], params["oauth_nonce"]);
    sim.nonces.lock().unwrap().insert(key)
}
