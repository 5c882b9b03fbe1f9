//! Transform components (issue 25), system admins only:
//! `POST /api/v4/transforms` (multipart `name` and `component`, the `.wasm`)
//! checks and compiles the upload and stores it; `GET /api/v4/transforms`,
//! `GET`/`DELETE /api/v4/transforms/{id}`. The runner is `crate::transforms`.

use super::rest::{Result, json_response, require_admin};
use super::{ApiError, Shim};
use crate::store::transforms::TransformInfo;
use crate::store::{StoreError, new_id, valid_id};
use crate::transforms::{CheckError, sha256_hex};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

/// Room for the multipart framing and the `name` part beside the component.
const FRAMING: usize = 64 << 10;
/// The longest name, in characters.
const MAX_NAME: usize = 128;

pub fn routes() -> Router<Shim> {
    Router::new()
        .route(
            "/api/v4/transforms",
            get(list)
                .post(upload)
                // The upload's own cap (`TransformSettings.MaxComponentBytes`)
                // applies instead of axum's default one.
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v4/transforms/{transform_id}",
            get(get_one).delete(remove),
        )
}

/// The id in the path, checked for shape.
fn transform_id(id: &str) -> Result<&str> {
    if valid_id(id) {
        Ok(id)
    } else {
        Err(ApiError::invalid_url_param("transform_id"))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        404,
        "api.transforms.get.not_found.app_error",
        "Unable to find the transform.",
    )
    .detail(format!("transform_id={id}"))
}

fn check_failed(err: CheckError) -> ApiError {
    let id = match err {
        CheckError::NotComponent(_) => "api.transforms.upload.not_component.app_error",
        CheckError::WrongWorld(_) => "api.transforms.upload.wrong_world.app_error",
        CheckError::Imports(_) => "api.transforms.upload.imports.app_error",
    };
    let message = err.to_string();
    ApiError::new(400, id, message.clone()).detail(message)
}

async fn upload(State(shim): State<Shim>, request: Request) -> Result<Response> {
    let session = shim.require_user(request.headers(), request.uri().query())?;
    require_admin(&shim, &session)?;
    let cap = shim.app.config().transform_settings.max_component_bytes as usize;
    let too_large = || {
        ApiError::new(
            413,
            "api.transforms.upload.too_large.app_error",
            format!("The component is larger than the {cap} bytes allowed."),
        )
        .detail("TransformSettings.MaxComponentBytes")
    };
    let (parts, body) = request.into_parts();
    let bytes = super::plugin::read_body_up_to(&shim, body, cap.saturating_add(FRAMING))
        .await?
        .ok_or_else(too_large)?;
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let mut multipart = Multipart::from_request(request, &shim)
        .await
        .map_err(|e| ApiError::invalid_body("multipart form").detail(e.body_text()))?;
    let (mut name, mut component) = (None, None);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::invalid_body("multipart form").detail(e.body_text()))?
    {
        let unreadable = |e: axum::extract::multipart::MultipartError| {
            ApiError::invalid_body("multipart form").detail(e.body_text())
        };
        match field.name() {
            Some("name") => name = Some(field.text().await.map_err(unreadable)?),
            Some("component") => component = Some(field.bytes().await.map_err(unreadable)?),
            _ => {}
        }
    }
    let name = name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty() && n.chars().count() <= MAX_NAME)
        .ok_or_else(|| {
            ApiError::new(
                400,
                "api.transforms.upload.name.app_error",
                format!("A transform needs a name of 1 to {MAX_NAME} characters."),
            )
        })?;
    let component = component.ok_or_else(|| {
        ApiError::new(
            400,
            "api.transforms.upload.component.app_error",
            "The upload has no `component` part (the .wasm file).",
        )
    })?;
    if component.len() > cap {
        return Err(too_large());
    }
    let app = shim.app.clone();
    let created = tokio::task::spawn_blocking(move || {
        // Compiling (Cranelift) is the slow part; it also proves the
        // component is a transform before anything is stored.
        let compiled = app.transforms.compile(&component).map_err(check_failed)?;
        let info = TransformInfo {
            id: new_id(),
            name,
            size: component.len() as i64,
            sha256: sha256_hex(&component),
            create_at: app.clock.now_millis(),
            creator_id: session,
        };
        app.store
            .insert_transform(&info, component.to_vec())
            .map_err(|e| ApiError::store("api.transforms.upload.app_error", e))?;
        app.transforms.remember(&info.id, compiled);
        Ok::<_, ApiError>(info)
    })
    .await
    .map_err(|e| {
        ApiError::new(500, "api.transforms.upload.app_error", "The upload failed.")
            .detail(e.to_string())
    })??;
    Ok(json_response(StatusCode::CREATED, created.to_json()))
}

async fn list(State(shim): State<Shim>, headers: HeaderMap) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_admin(&shim, &session)?;
    let all = shim
        .app
        .store
        .transforms()
        .map_err(|e| ApiError::store("api.transforms.list.app_error", e))?;
    Ok(json_response(
        StatusCode::OK,
        Value::Array(all.iter().map(TransformInfo::to_json).collect()),
    ))
}

async fn get_one(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_admin(&shim, &session)?;
    let id = transform_id(&id)?;
    match shim.app.store.transform(id) {
        Ok(info) => Ok(json_response(StatusCode::OK, info.to_json())),
        Err(StoreError::NotFound(_)) => Err(not_found(id)),
        Err(e) => Err(ApiError::store("api.transforms.get.app_error", e)),
    }
}

async fn remove(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_admin(&shim, &session)?;
    let id = transform_id(&id)?.to_string();
    let app = shim.app.clone();
    let key = id.clone();
    let deleted = tokio::task::spawn_blocking(move || app.store.delete_transform(&key))
        .await
        .map_err(|e| {
            ApiError::new(500, "api.transforms.delete.app_error", "The delete failed.")
                .detail(e.to_string())
        })?
        .map_err(|e| ApiError::store("api.transforms.delete.app_error", e))?;
    if !deleted {
        return Err(not_found(&id));
    }
    shim.app.transform_deleted(&id);
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}
