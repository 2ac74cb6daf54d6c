//! OAuth 1.0a request signing (RFC 5849), HMAC-SHA256 as Magento integrations use it.
//!
//! Written here rather than taken from a crate: it is sixty lines on `hmac`/`sha2`, and the
//! OAuth 1.0a crates on crates.io are unmaintained or sign with HMAC-SHA1 only.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 5849 section 3.6: everything but ALPHA, DIGIT, '-', '.', '_', '~' is encoded.
const OAUTH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, OAUTH_ENCODE).to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
}

impl SignatureMethod {
    pub fn name(self) -> &'static str {
        match self {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
        }
    }
}

/// The signature base string (RFC 5849 section 3.4.1). `params` are every signed parameter,
/// decoded: the query's, the `oauth_*` ones (without `oauth_signature`), and form-body ones.
pub fn base_string(method: &str, url: &url::Url, params: &[(String, String)]) -> String {
    let mut base_uri = format!(
        "{}://{}",
        url.scheme().to_ascii_lowercase(),
        url.host_str().unwrap_or_default().to_ascii_lowercase()
    );
    if let Some(port) = url.port() {
        base_uri.push_str(&format!(":{port}"));
    }
    base_uri.push_str(url.path());
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    let normalized = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(&base_uri),
        encode(&normalized)
    )
}

/// The signature of a base string with the consumer and token secrets, base64.
pub fn sign(
    method: SignatureMethod,
    base: &str,
    consumer_secret: &str,
    token_secret: &str,
) -> String {
    let key = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let digest = match method {
        SignatureMethod::HmacSha1 => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes())
                .expect("HMAC takes any key length");
            mac.update(base.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        SignatureMethod::HmacSha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                .expect("HMAC takes any key length");
            mac.update(base.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The credentials of a Magento integration.
pub struct Credentials<'a> {
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub token: &'a str,
    pub token_secret: &'a str,
}

/// The `Authorization: OAuth …` header for a request (JSON bodies are not signed: only
/// form-encoded bodies take part in the signature).
pub fn authorization_header(
    credentials: &Credentials<'_>,
    http_method: &str,
    url: &url::Url,
    nonce: &str,
    timestamp: u64,
) -> String {
    let method = SignatureMethod::HmacSha256;
    let oauth = [
        ("oauth_consumer_key", credentials.consumer_key.to_string()),
        ("oauth_nonce", nonce.to_string()),
        ("oauth_signature_method", method.name().to_string()),
        ("oauth_timestamp", timestamp.to_string()),
        ("oauth_token", credentials.token.to_string()),
        ("oauth_version", "1.0".to_string()),
    ];
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.extend(oauth.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let base = base_string(http_method, url, &params);
    let signature = sign(
        method,
        &base,
        credentials.consumer_secret,
        credentials.token_secret,
    );
    let mut header = String::from("OAuth ");
    let fields = oauth
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .chain(std::iter::once(("oauth_signature".to_string(), signature)))
        .map(|(k, v)| format!("{k}=\"{}\"", encode(&v)))
        .collect::<Vec<_>>()
        .join(", ");
    header.push_str(&fields);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of X (Twitter) developer documentation, "Creating a signature":
    /// https://developer.x.com/en/docs/authentication/oauth-1-0a/creating-a-signature
    #[test]
    fn the_published_twitter_vector_signs_as_documented() {
        let url = url::Url::parse(
            "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
        )
        .unwrap();
        let mut params: Vec<(String, String)> = vec![
            ("include_entities".into(), "true".into()),
            (
                "status".into(),
                "Hello Ladies + Gentlemen, a signed OAuth request!".into(),
            ),
        ];
        for (k, v) in [
            ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            (
                "oauth_token",
                "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            ),
            ("oauth_version", "1.0"),
        ] {
            params.push((k.into(), v.into()));
        }
        let base = base_string("post", &url, &params);
        assert_eq!(
            base,
            "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521"
        );
        assert_eq!(
            sign(
                SignatureMethod::HmacSha1,
                &base,
                "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
                "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"
            ),
            "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
        );
    }

    /// RFC 5849 section 3.4.1.1's example: parameter normalization with repeated keys,
    /// encoded characters and an empty value (the base string is printed in the RFC).
    #[test]
    fn the_rfc_5849_base_string_example() {
        let url =
            url::Url::parse("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
        let mut params: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        params.push(("c2".into(), "".into()));
        params.push(("a3".into(), "2 q".into()));
        for (k, v) in [
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ] {
            params.push((k.into(), v.into()));
        }
        assert_eq!(
            base_string("POST", &url, &params),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn the_header_carries_every_oauth_field_and_no_secret() {
        let creds = Credentials {
            consumer_key: "ck",
            consumer_secret: "cs-SECRET",
            token: "tok",
            token_secret: "ts-SECRET",
        };
        let url = url::Url::parse("http://127.0.0.1:8080/rest/all/V1/products/A%20B?x=1").unwrap();
        let header = authorization_header(&creds, "PUT", &url, "n0nce", 1_700_000_000);
        for field in [
            "oauth_consumer_key=\"ck\"",
            "oauth_token=\"tok\"",
            "oauth_signature_method=\"HMAC-SHA256\"",
            "oauth_nonce=\"n0nce\"",
            "oauth_timestamp=\"1700000000\"",
            "oauth_signature=\"",
        ] {
            assert!(header.contains(field), "{header}");
        }
        assert!(!header.contains("SECRET"));
    }
}
