//! A typed client for the test server: JSON calls, streamed uploads, downloads, with the session
//! cookie and CSRF header handled as a browser script would.

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A response, read whole (tests use small bodies; large ones use [`Client::raw`]).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (panics in tests if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The API error code, asserting the error shape.
    pub fn error_code(&self) -> String {
        let j = self.json();
        assert!(j["message"].is_string(), "error without message: {j}");
        j["error"].as_str().unwrap_or_default().to_string()
    }
}

/// A client with its own cookie jar.
#[derive(Clone, Debug)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    cert_pem: Vec<u8>,
}

impl Client {
    pub fn new(base: &str, cert_pem: &[u8]) -> Self {
        let cert = reqwest::Certificate::from_pem(cert_pem).expect("certificate PEM");
        let http = reqwest::Client::builder()
            .tls_certs_only([cert])
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self { http, base: base.to_string(), csrf: None, bearer: None, cert_pem: cert_pem.to_vec() }
    }

    /// A fresh client (no cookies) whose connections come from `ip` (any of 127.0.0.0/8 works
    /// on Linux loopback), to play a second source address.
    pub fn bound_to(&self, ip: std::net::IpAddr) -> Self {
        let cert = reqwest::Certificate::from_pem(&self.cert_pem).expect("certificate PEM");
        let http = reqwest::Client::builder()
            .tls_certs_only([cert])
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip)
            .build()
            .expect("http client");
        Self { http, base: self.base.clone(), csrf: None, bearer: None, cert_pem: self.cert_pem.clone() }
    }

    /// A fresh client (no cookies) that authenticates with a bearer token.
    pub fn with_bearer(&self, token: &str) -> Self {
        let mut c = Client::new(&self.base, &self.cert_pem);
        c.bearer = Some(token.to_string());
        c
    }

    /// A request builder with auth and CSRF applied.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            rb = rb.bearer_auth(b);
        } else if let Some(c) = &self.csrf
            && method != Method::GET
        {
            rb = rb.header("x-csrf-token", c);
        }
        rb
    }

    /// Send and read the whole answer.
    pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request reaches the server");
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.bytes().await.expect("read body").to_vec();
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        Self::send(self.request(Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        Self::send(self.request(Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        Self::send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn put_json(&self, path: &str, body: Value) -> Resp {
        Self::send(self.request(Method::PUT, path).json(&body)).await
    }

    /// Upload bytes as a document.
    pub async fn upload(&self, matter: &str, name: &str, bytes: Vec<u8>) -> Resp {
        let path = format!("/api/v1/matters/{matter}/documents");
        Self::send(self.request(Method::POST, &path).query(&[("name", name)]).body(bytes)).await
    }

    /// Sign in through the API; keeps the cookie and CSRF token on success.
    pub async fn login(&mut self, tenant: &str, email: &str, password: &str) -> Resp {
        self.login_with_code(tenant, email, password, None).await
    }

    /// Sign in with a second-factor code (TOTP or recovery code).
    pub async fn login_with_code(&mut self, tenant: &str, email: &str, password: &str, code: Option<&str>) -> Resp {
        self.login_json(serde_json::json!({"tenant": tenant, "email": email, "password": password, "totp": code})).await
    }

    /// Sign in with any body (e.g. with a `passkey` answer); keeps the session on success.
    pub async fn login_json(&mut self, body: Value) -> Resp {
        let r = self.post("/api/v1/session", body).await;
        if r.status == StatusCode::OK {
            self.csrf = r.json()["csrf_token"].as_str().map(str::to_string);
        }
        r
    }
}

/// The TOTP code an authenticator app shows for `secret` (base32) at `at`, as a user would type it.
pub fn totp_code(secret: &str, at: time::OffsetDateTime) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("base32 TOTP secret");
    let totp = totp_rs::Builder::new().with_secret(secret).build().expect("TOTP parameters");
    totp.generate(u64::try_from(at.unix_timestamp()).expect("time after 1970")).to_string()
}
