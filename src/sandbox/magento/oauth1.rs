//! OAuth 1.0a verification as Magento's integrations do it (RFC 5849): HMAC-SHA256 (what
//! Magento signs with) and HMAC-SHA1 (what the RFC and most clients default to).
//!
//! Written independently of the client's signer in `src/magento/` so the two readings of
//! RFC 5849 check each other; the tests pin both to published vectors.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// RFC 5849 section 3.6: all but the unreserved characters ALPHA / DIGIT / "-" / "." / "_" /
/// "~" are encoded, with upper-case hex.
const RFC3986_UNRESERVED_KEPT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes per RFC 5849 section 3.6.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986_UNRESERVED_KEPT).to_string()
}

fn percent_decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The base string URI (RFC 5849 section 3.4.1.2): lower-case scheme and host, the port only
/// when it is not the scheme's default, the path, no query.
pub fn base_string_uri(scheme: &str, host: &str, path: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let mut host = host.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    if let Some(stripped) = host.strip_suffix(default_port) {
        host = stripped.to_string();
    }
    format!("{scheme}://{host}{path}")
}

/// The signature base string (RFC 5849 section 3.4.1.1). `params` are decoded name/value
/// pairs: the query's, the `oauth_*` protocol parameters (without `oauth_signature` and
/// `realm`), and form-encoded body parameters.
pub fn signature_base_string(method: &str, base_uri: &str, params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    // Section 3.4.1.3.2: sort by encoded name, then by encoded value.
    encoded.sort();
    let normalized = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(base_uri),
        percent_encode(&normalized)
    )
}

/// The two signature methods the simulated store accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
}

impl SignatureMethod {
    pub fn parse(name: &str) -> Option<SignatureMethod> {
        match name {
            "HMAC-SHA1" => Some(SignatureMethod::HmacSha1),
            "HMAC-SHA256" => Some(SignatureMethod::HmacSha256),
            _ => None,
        }
    }
}

/// The base64 signature (RFC 5849 section 3.4.2): the key is the encoded consumer secret and
/// the encoded token secret joined by "&".
pub fn sign(
    method: SignatureMethod,
    base_string: &str,
    consumer_secret: &str,
    token_secret: &str,
) -> String {
    let key = format!(
        "{}&{}",
        percent_encode(consumer_secret),
        percent_encode(token_secret)
    );
    let digest = match method {
        SignatureMethod::HmacSha1 => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes())
                .expect("HMAC takes a key of any length");
            mac.update(base_string.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        SignatureMethod::HmacSha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                .expect("HMAC takes a key of any length");
            mac.update(base_string.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The parameters of an `Authorization: OAuth …` header (section 3.5.1), decoded; `None`
/// when the header is not an OAuth one.
pub fn parse_authorization(header: &str) -> Option<BTreeMap<String, String>> {
    let rest = header.trim().strip_prefix("OAuth")?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let mut params = BTreeMap::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, value) = part.split_once('=')?;
        let value = value.trim().trim_matches('"');
        params.insert(percent_decode(name.trim()), percent_decode(value));
    }
    Some(params)
}

/// Decoded `name=value` pairs of a raw query string, read as
/// `application/x-www-form-urlencoded` (RFC 5849 section 3.4.1.3.1): `+` is a space.
pub fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// What an OAuth-signed request must carry, and the secrets to check it with.
pub struct OauthSecrets<'a> {
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub access_token: &'a str,
    pub access_token_secret: &'a str,
}

/// Why a signed request was refused (Magento answers all of them with the same 401).
#[derive(Debug, PartialEq, Eq)]
pub enum OauthRefusal {
    MissingParameter(&'static str),
    UnknownConsumer,
    UnknownToken,
    UnsupportedSignatureMethod,
    UnsupportedVersion,
    BadTimestamp,
    BadSignature,
}

/// How far in the future a timestamp may be (`Nonce\Generator::TIME_DEVIATION`).
pub const TIME_DEVIATION_SECS: u64 = 600;

/// Checks an OAuth 1.0a request as Magento's `Oauth::validateAccessTokenRequest` does: the
/// protocol parameters, version 1.0, a positive timestamp not more than ten minutes ahead of
/// `now_unix`, the consumer and token, and the signature over method, URI and every query
/// and protocol parameter.
pub fn verify(
    method: &str,
    base_uri: &str,
    raw_query: Option<&str>,
    header_params: &BTreeMap<String, String>,
    secrets: &OauthSecrets<'_>,
    now_unix: u64,
) -> Result<(), OauthRefusal> {
    for required in [
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature_method",
        "oauth_signature",
        "oauth_nonce",
        "oauth_timestamp",
    ] {
        if header_params.get(required).is_none_or(|v| v.is_empty()) {
            return Err(OauthRefusal::MissingParameter(required));
        }
    }
    if header_params["oauth_consumer_key"] != secrets.consumer_key {
        return Err(OauthRefusal::UnknownConsumer);
    }
    if header_params["oauth_token"] != secrets.access_token {
        return Err(OauthRefusal::UnknownToken);
    }
    let signature_method = SignatureMethod::parse(&header_params["oauth_signature_method"])
        .ok_or(OauthRefusal::UnsupportedSignatureMethod)?;
    if header_params
        .get("oauth_version")
        .is_some_and(|v| v != "1.0")
    {
        return Err(OauthRefusal::UnsupportedVersion);
    }
    match header_params["oauth_timestamp"].parse::<u64>() {
        Ok(t) if t > 0 && t <= now_unix + TIME_DEVIATION_SECS => {}
        _ => return Err(OauthRefusal::BadTimestamp),
    }
    let mut params: Vec<(String, String)> = header_params
        .iter()
        .filter(|(k, _)| k.as_str() != "oauth_signature" && k.as_str() != "realm")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(query) = raw_query {
        params.extend(query_pairs(query));
    }
    let base = signature_base_string(method, base_uri, &params);
    let expected = sign(
        signature_method,
        &base,
        secrets.consumer_secret,
        secrets.access_token_secret,
    );
    if expected == header_params["oauth_signature"] {
        Ok(())
    } else {
        Err(OauthRefusal::BadSignature)
    }
}
