//! Bearer-token authentication with roles.
//!
//! Design: tokens are long random strings handed to people and systems; the config stores only
//! their SHA-256 (`hazard-gateway hash-token`), so a copied config file grants nothing. A random
//! token of 128+ bits needs no slow hash: SHA-256 preimages are out of reach. Comparison runs
//! in constant time. With no tokens configured the API is open (the demo, a loopback-only
//! install) and operator actions name their user in the request body instead.
//! 401 means "who are you?" (no or unknown token); 403 means "you may not do this" (role).

use std::fmt::Write as _;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a token may do. Ordered: each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read values, alarms, history and the live feed.
    Viewer,
    /// Also acknowledge, shelve, reset and take alarms out of service.
    Operator,
    /// Also administer the gateway (reload).
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// One accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// Who holds it; journaled as the user of their actions.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
}

/// The caller of a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name, or `None` when the API is open.
    pub user: Option<String>,
    /// What they may do.
    pub role: Role,
}

/// The configured tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    tokens: Vec<TokenEntry>,
    /// The role of every caller when no token is configured: `Admin` where the API is meant to
    /// be open, `Viewer` where it is reachable beyond loopback without anyone saying so.
    open_role: Role,
}

impl Default for Auth {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header, or a token nobody was given.
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// The token's role may not do this.
    #[error("this token's role may not do this")]
    Forbidden,
    /// No tokens, reachable beyond loopback, and not declared open: nobody may act.
    #[error(
        "the API is read-only: it listens beyond loopback without [[api.tokens]]; configure tokens, \
         or set [api] open = true to let anyone who can reach it act"
    )]
    ReadOnly,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            AuthError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            AuthError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            AuthError::ReadOnly => (StatusCode::FORBIDDEN, "read_only"),
        };
        let body = axum::Json(serde_json::json!({ "error": code, "message": self.to_string() }));
        let mut resp = (status, body).into_response();
        if self == AuthError::Unauthenticated {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// `sha256:<hex>` of a token, as the config stores it.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut s = String::from("sha256:");
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses `sha256:<64 hex digits>`.
pub fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let hex = text
        .strip_prefix("sha256:")
        .ok_or("a token hash starts with `sha256:` (see `hazard-gateway hash-token`)")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a token hash is `sha256:` and 64 hex digits".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Authentication with these tokens; none means an open API.
    pub fn new(tokens: Vec<TokenEntry>) -> Self {
        Self {
            tokens,
            open_role: Role::Admin,
        }
    }

    /// Like [`Auth::new`], but without tokens and without `open_actions` every caller may
    /// only read: a plant LAN must not be able to acknowledge or shelve anonymously.
    pub fn with_open_actions(tokens: Vec<TokenEntry>, open_actions: bool) -> Self {
        Self {
            tokens,
            open_role: if open_actions { Role::Admin } else { Role::Viewer },
        }
    }

    /// Whether an API without tokens refuses operator actions.
    pub fn read_only_when_open(&self) -> bool {
        !self.enabled() && self.open_role < Role::Operator
    }

    /// Whether any token is configured.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Who sends `authorization` (the header's value, if any).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        if !self.enabled() {
            return Ok(Principal {
                user: None,
                role: self.open_role,
            });
        }
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Unauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Check every entry so the time taken does not reveal which one matched.
        let mut found = None;
        for t in &self.tokens {
            if constant_time_eq(&t.hash, &digest) {
                found = Some(t);
            }
        }
        let t = found.ok_or(AuthError::Unauthenticated)?;
        Ok(Principal {
            user: Some(t.name.clone()),
            role: t.role,
        })
    }
}

/// The tokens in force. A reload replaces them, so a token added to the config works and a
/// removed one is refused from the next request on, without a restart.
///
/// Design: a std lock around an `Arc`: a request clones the `Arc` and lets go at once, so the
/// lock is never held across an await nor while a token is hashed.
#[derive(Debug, Default)]
pub struct Tokens(std::sync::RwLock<std::sync::Arc<Auth>>);

impl Tokens {
    /// Starts with `auth`.
    pub fn new(auth: Auth) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(auth)))
    }

    /// The tokens in force now.
    pub fn current(&self) -> std::sync::Arc<Auth> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `auth` in force for every request from now on; whether anything changed.
    pub fn replace(&self, auth: Auth) -> bool {
        let mut held = self.0.write().unwrap_or_else(|e| e.into_inner());
        let changed = **held != auth;
        *held = std::sync::Arc::new(auth);
        changed
    }
}

/// Middleware state: the tokens and the role a route group needs.
#[derive(Debug, Clone)]
pub(super) struct Guard {
    pub(super) auth: std::sync::Arc<Tokens>,
    pub(super) needs: Role,
}

/// Refuses the request unless its token has `needs`; passes the [`Principal`] on.
pub(super) async fn require(State(guard): State<Guard>, mut req: Request, next: Next) -> Result<Response, AuthError> {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let auth = guard.auth.current();
    let principal = auth.authenticate(header)?;
    if principal.role < guard.needs {
        if auth.read_only_when_open() {
            return Err(AuthError::ReadOnly);
        }
        return Err(AuthError::Forbidden);
    }
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(vec![
            TokenEntry {
                name: "console".into(),
                role: Role::Operator,
                hash: parse_hash(&hash_token("s3cret-op")).unwrap(),
            },
            TokenEntry {
                name: "grafana".into(),
                role: Role::Viewer,
                hash: parse_hash(&hash_token("s3cret-view")).unwrap(),
            },
        ])
    }

    #[test]
    fn a_known_token_names_its_holder_and_role() {
        let p = auth().authenticate(Some("Bearer s3cret-op")).unwrap();
        assert_eq!((p.user.as_deref(), p.role), (Some("console"), Role::Operator));
        assert_eq!(
            auth().authenticate(Some("Bearer s3cret-view")).unwrap().role,
            Role::Viewer
        );
    }

    #[test]
    fn missing_or_unknown_tokens_are_unauthenticated() {
        for h in [
            None,
            Some("Bearer "),
            Some("Bearer nope"),
            Some("Basic czNjcmV0LW9w"),
            Some("s3cret-op"),
        ] {
            assert_eq!(auth().authenticate(h), Err(AuthError::Unauthenticated), "{h:?}");
        }
    }

    #[test]
    fn an_open_api_lets_everyone_act_without_a_name() {
        let p = Auth::default().authenticate(None).unwrap();
        assert_eq!((p.user, p.role), (None, Role::Admin));
    }

    #[test]
    fn an_open_api_beyond_loopback_only_reads_unless_declared_open() {
        let closed = Auth::with_open_actions(Vec::new(), false);
        assert_eq!(closed.authenticate(None).unwrap().role, Role::Viewer);
        assert!(closed.read_only_when_open());
        let open = Auth::with_open_actions(Vec::new(), true);
        assert_eq!(open.authenticate(None).unwrap().role, Role::Admin);
        assert!(!open.read_only_when_open());
    }

    #[test]
    fn replaced_tokens_apply_to_the_next_request() {
        let tokens = Tokens::new(auth());
        assert!(tokens.current().authenticate(Some("Bearer s3cret-op")).is_ok());
        let only_new = Auth::new(vec![TokenEntry {
            name: "night shift".into(),
            role: Role::Operator,
            hash: parse_hash(&hash_token("n1ght")).unwrap(),
        }]);
        assert!(tokens.replace(only_new.clone()));
        assert!(!tokens.replace(only_new), "the same tokens again change nothing");
        let now = tokens.current();
        assert_eq!(
            now.authenticate(Some("Bearer s3cret-op")),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            now.authenticate(Some("Bearer n1ght")).unwrap().user.as_deref(),
            Some("night shift")
        );
    }

    #[test]
    fn hashes_round_trip_and_bad_ones_are_explained() {
        let h = hash_token("abc");
        assert_eq!(
            h,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(parse_hash(&h).is_ok());
        assert!(parse_hash("md5:00").unwrap_err().contains("sha256:"));
        assert!(parse_hash("sha256:zz").unwrap_err().contains("64 hex digits"));
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }
}
