//! The tenant's log as a transparency log's monitors and witnesses read it: the newest signed tree head (a C2SP
//! checkpoint), and the proofs that a record is in a tree and that a later tree extends an earlier one, as base64
//! hashes one per line (the form the C2SP witness protocol carries them in). Only the caller's tenant's log.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use haltstate_types::ErrorCode;

use crate::auth::Operator;
use crate::error::ApiError;
use crate::query;
use crate::state::Shared;

fn text(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn lines(proof: &[[u8; 32]]) -> Response {
    let mut body = String::with_capacity(proof.len() * 45);
    for hash in proof {
        body.push_str(&base64::engine::general_purpose::STANDARD.encode(hash));
        body.push('\n');
    }
    text(body)
}

/// `GET ledger/checkpoint`: the newest signed tree head of the caller's tenant's log, as stored (with the
/// witnesses' cosignatures).
pub async fn checkpoint(
    State(state): State<Shared>,
    Operator(who): Operator,
) -> Result<Response, ApiError> {
    match state.authority.newest_tree_head(&who.tenant)? {
        Some(note) => Ok(text(note)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no signed tree head yet: the server signs them when started with --signing-key",
        )),
    }
}

/// `GET ledger/consistency?old=M&new=N`: the proof that the tenant's tree of `new` records extends its tree of
/// `old`.
pub async fn consistency(
    State(state): State<Shared>,
    Operator(who): Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (old, new) = (query::count(&params, "old")?, query::count(&params, "new")?);
    Ok(lines(&state.authority.consistency_proof(
        &who.tenant,
        old,
        new,
    )?))
}

/// `GET ledger/inclusion?seq=S&size=N`: the proof that the tenant's record `seq` is in its tree of `size`
/// records.
pub async fn inclusion(
    State(state): State<Shared>,
    Operator(who): Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (seq, size) = (
        query::count(&params, "seq")?,
        query::count(&params, "size")?,
    );
    if seq == 0 {
        return Err(ApiError::bad_request("seq starts at 1"));
    }
    Ok(lines(&state.authority.inclusion_proof(
        &who.tenant,
        seq - 1,
        size,
    )?))
}
