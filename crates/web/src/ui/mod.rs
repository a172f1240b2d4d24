//! The server-rendered UI. No script: plain forms, each carrying the session's CSRF token, and
//! pages rendered by askama with automatic escaping. Every action goes through the same `Portal`
//! use cases as the API.

mod pages;

use crate::{AppState, WebSettings};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

pub use pages::ErrorPage;

pub fn routes(limits: &WebSettings) -> Router<AppState> {
    let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout);
    let bounded = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/setup/{token}", get(pages::setup_form).post(pages::setup))
        .route("/invite/{token}", get(pages::invite_form).post(pages::invite))
        .route("/matters", get(pages::matters).post(pages::create_matter))
        .route("/matters/{id}", get(pages::matter))
        .route("/matters/{id}/members", post(pages::add_member))
        .route("/matters/{id}/messages", post(pages::post_message))
        .route("/tokens", get(pages::tokens).post(pages::create_token))
        .route("/tokens/{id}/revoke", post(pages::revoke_token))
        .route("/users", get(pages::users).post(pages::create_user))
        .route("/static/app.css", get(pages::css))
        .layer(timeout);
    let streaming = Router::new()
        .route("/matters/{id}/documents", post(pages::upload).layer(DefaultBodyLimit::disable()))
        .route("/documents/{id}/download", get(pages::download));
    bounded.merge(streaming).fallback(pages::not_found)
}
