//! `POST /entity/auth/login`, `/entity/auth/logout`, the OAuth 2.0 token endpoint, and the
//! two middlewares every API request passes: the licence limits, then the session check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde::Deserialize;
use serde_json::json;

use super::AcumaticaSim;
use super::errors;
use super::session::{Declined, LoginLimitAnswer, LoginOutcome, Session, SessionKind};

pub const AUTH_COOKIE: &str = ".ASPXAUTH";
pub const SESSION_COOKIE: &str = "ASP.NET_SessionId";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    name: Option<String>,
    password: Option<String>,
    tenant: Option<String>,
    company: Option<String>,
    branch: Option<String>,
    #[allow(dead_code)]
    locale: Option<String>,
}

fn random_token(sim: &AcumaticaSim, bytes: usize) -> String {
    let mut rng = sim.token_rng.lock().unwrap();
    (0..bytes)
        .map(|_| format!("{:02X}", rng.random::<u8>()))
        .collect()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The token a request authenticates with: a bearer token, else the `.ASPXAUTH` cookie.
pub fn request_token(headers: &HeaderMap) -> Option<String> {
    bearer(headers)
        .or_else(|| cookie(headers, AUTH_COOKIE))
        .map(str::to_string)
}

fn parse_login(headers: &HeaderMap, body: &Bytes) -> Result<LoginBody, String> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.starts_with("application/x-www-form-urlencoded"))
        .unwrap_or(false);
    if is_form {
        let mut login = LoginBody {
            name: None,
            password: None,
            tenant: None,
            company: None,
            branch: None,
            locale: None,
        };
        for (k, v) in url::form_urlencoded::parse(body) {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "name" => login.name = v,
                "password" => login.password = v,
                "tenant" => login.tenant = v,
                "company" => login.company = v,
                "branch" => login.branch = v,
                "locale" => login.locale = v,
                other => {
                    return Err(format!(
                        "Could not find member '{other}' on object of type 'Credentials'."
                    ));
                }
            }
        }
        Ok(login)
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
}

pub async fn login(
    State(sim): State<Arc<AcumaticaSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let login = match parse_login(&headers, &body) {
        Ok(login) => login,
        Err(e) => return errors::model_state("credentials", &e),
    };
    if login.company.is_some() && login.tenant.is_some() {
        return errors::model_state(
            "credentials",
            "The company and tenant parameters cannot be specified at the same time.",
        );
    }
    let credentials = sim.credentials();
    let tenant = login.tenant.or(login.company);
    let ok = login.name.as_deref() == Some(credentials.username.as_str())
        && login.password.as_deref() == Some(credentials.password.as_str())
        && tenant
            .as_deref()
            .map(|t| t.eq_ignore_ascii_case(&credentials.tenant))
            .unwrap_or(true)
        && login
            .branch
            .as_deref()
            .map(|b| b.eq_ignore_ascii_case(&credentials.branch))
            .unwrap_or(true);
    if !ok {
        sim.sessions.count(|c| c.failed_logins += 1);
        return errors::invalid_credentials();
    }
    let auth = random_token(&sim, 64);
    let session_id = random_token(&sim, 12).to_ascii_lowercase();
    let session = Session {
        kind: SessionKind::Cookie,
        user: credentials.username.clone(),
        last_used: Instant::now(),
        expires: None,
        refresh_token: None,
    };
    if let LoginOutcome::OverLimit = sim.sessions.open(auth.clone(), session) {
        return login_limit(&sim);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    for set in [
        format!("{SESSION_COOKIE}={session_id}; path=/; HttpOnly; SameSite=Lax"),
        format!("{AUTH_COOKIE}={auth}; path=/; HttpOnly"),
        format!("UserBranch={}; path=/", 1),
        "Locale=Culture=en-US&TimeZone=GMTM0000G; path=/".to_string(),
    ] {
        if let Ok(value) = HeaderValue::from_str(&set) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

fn login_limit(sim: &AcumaticaSim) -> Response {
    match sim.sessions.options().login_limit_answer {
        LoginLimitAnswer::TooManyRequests => errors::message(
            StatusCode::TOO_MANY_REQUESTS,
            "API Login Limit: the number of concurrent API users allowed by the license has been reached.",
        ),
        LoginLimitAnswer::ServerError => errors::exception(
            StatusCode::INTERNAL_SERVER_ERROR,
            "API Login Limit",
            "PX.Data.PXException",
        ),
    }
}

pub async fn logout(State(sim): State<Arc<AcumaticaSim>>, headers: HeaderMap) -> Response {
    if let Some(token) = request_token(&headers) {
        sim.sessions.close(&token);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    for name in [AUTH_COOKIE, SESSION_COOKIE] {
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{name}=; expires=Thu, 01-Jan-1970 00:00:00 GMT; path=/; HttpOnly"
        )) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// `POST /identity/connect/token` (form body): `password` and `refresh_token` grants.
pub async fn token(State(sim): State<Arc<AcumaticaSim>>, body: Bytes) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let credentials = sim.credentials();
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("client_id") != Some(credentials.client_id.as_str())
        || field("client_secret") != Some(credentials.client_secret.as_str())
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client");
    }
    let lifetime = sim.sessions.options().access_token_lifetime_secs;
    let access = random_token(&sim, 32);
    let refresh = random_token(&sim, 32);
    let expires = Some(Instant::now() + Duration::from_secs(lifetime));
    match field("grant_type") {
        Some("password") => {
            if field("username") != Some(credentials.username.as_str())
                || field("password") != Some(credentials.password.as_str())
            {
                sim.sessions.count(|c| c.failed_logins += 1);
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let session = Session {
                kind: SessionKind::OAuth,
                user: credentials.username.clone(),
                last_used: Instant::now(),
                expires,
                refresh_token: Some(refresh.clone()),
            };
            if let LoginOutcome::OverLimit = sim.sessions.open(access.clone(), session) {
                return login_limit(&sim);
            }
        }
        Some("refresh_token") => {
            let Some(old_access) =
                field("refresh_token").and_then(|r| sim.sessions.take_refresh(r))
            else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let rotated = sim.sessions.rotate(&old_access, access.clone(), |s| {
                s.expires = expires;
                s.last_used = Instant::now();
                s.refresh_token = Some(refresh.clone());
            });
            if !rotated {
                // The session behind the refresh token ended (idle, expired): a new one.
                let session = Session {
                    kind: SessionKind::OAuth,
                    user: credentials.username.clone(),
                    last_used: Instant::now(),
                    expires,
                    refresh_token: Some(refresh.clone()),
                };
                if let LoginOutcome::OverLimit = sim.sessions.open(access.clone(), session) {
                    return login_limit(&sim);
                }
            }
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
    sim.sessions
        .remember_refresh(refresh.clone(), access.clone());
    Json(json!({
        "access_token": access,
        "expires_in": lifetime,
        "token_type": "Bearer",
        "refresh_token": refresh,
        "scope": "api offline_access",
    }))
    .into_response()
}

/// Licence limits for every API request: counted per minute (delayed past half the limit),
/// then let in when a concurrency slot is free. Sign-out skips the queue, as in Acumatica.
pub async fn limits(
    State(sim): State<Arc<AcumaticaSim>>,
    request: Request,
    next: Next,
) -> Response {
    let delay = sim.sessions.per_minute_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if request.uri().path().ends_with("/entity/auth/logout") {
        return next.run(request).await;
    }
    match sim.sessions.enter().await {
        Ok(_slot) => {
            let processing = sim.sessions.options().processing_ms;
            if processing > 0 {
                tokio::time::sleep(Duration::from_millis(processing)).await;
            }
            next.run(request).await
        }
        Err(Declined::QueueFull) | Err(Declined::QueueTimeout) => errors::message(
            StatusCode::TOO_MANY_REQUESTS,
            "The number of concurrent API requests allowed by the license has been exceeded and the request queue is full.",
        ),
    }
}

/// Entity routes need a live session or token; an expired one is a 401.
pub async fn require_session(
    State(sim): State<Arc<AcumaticaSim>>,
    request: Request,
    next: Next,
) -> Response {
    let ok = request_token(request.headers())
        .map(|token| sim.sessions.touch(&token))
        .unwrap_or(false);
    if !ok {
        sim.sessions.count(|c| c.unauthorized_requests += 1);
        return errors::not_logged_in();
    }
    next.run(request).await
}

/// Basic credentials (`user:password`, the user optionally `user@Tenant`), as Acumatica's
/// OData service accepts them without a session.
fn basic_ok(sim: &AcumaticaSim, headers: &HeaderMap) -> bool {
    use base64::Engine;
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let text = String::from_utf8_lossy(&decoded);
    let Some((user, password)) = text.split_once(':') else {
        return false;
    };
    let credentials = sim.credentials();
    let (name, tenant) = match user.split_once('@') {
        Some((name, tenant)) => (name, Some(tenant)),
        None => (user, None),
    };
    name == credentials.username
        && password == credentials.password
        && tenant
            .map(|t| t.eq_ignore_ascii_case(&credentials.tenant))
            .unwrap_or(true)
}

/// Part 2's routes: a live session or token, or (for OData) Basic credentials.
pub async fn require_session_or_basic(
    State(sim): State<Arc<AcumaticaSim>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if path.contains("/api/odata/") && basic_ok(&sim, request.headers()) {
        return next.run(request).await;
    }
    require_session(State(sim), request, next).await
}
