//! `transforms` (0.3.2): uploaded transform components, each call run in a
//! sandbox of its own (`crate::transforms`). A failure is the one request's.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::transforms::{
    Host, TransformFailure, TransformRequest,
};
use crate::transforms::{Failure, Request};

impl Host for CallState {
    async fn run(
        &mut self,
        id: String,
        request: TransformRequest,
    ) -> Result<Option<String>, TransformFailure> {
        let request = Request {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            body: request.body,
        };
        let app = self.app.clone();
        app.transforms
            .run(&app, &id, request)
            .await
            .map_err(|failure| match failure {
                Failure::NotFound => TransformFailure::NotFound,
                Failure::Refused(message) => TransformFailure::Refused(message),
                Failure::Crashed(what) => TransformFailure::Crashed(what),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{App, Clock};
    use crate::config::Config;
    use crate::runtime::Grants;
    use crate::runtime::bindings::types::Header;
    use std::sync::Arc;
    use wasmtime::StoreLimitsBuilder;
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::WasiCtx;

    /// The import as the plugin calls it, on a server holding the hostile
    /// test component (`make component`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_import_answers_what_the_component_did() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        let app = Arc::new(App::new(store, Config::default(), None, Clock::system()).unwrap());
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip2/release/switchboard_transform_hostile.wasm"),
        )
        .expect("the hostile test transform: `make component`");
        let info = crate::store::transforms::TransformInfo {
            id: crate::store::new_id(),
            name: "hostile".into(),
            size: bytes.len() as i64,
            sha256: crate::transforms::sha256_hex(&bytes),
            create_at: 1,
            creator_id: "admin".into(),
        };
        app.store.insert_transform(&info, bytes).unwrap();
        let mut state = CallState {
            app,
            grants: Grants::default(),
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().build(),
        };
        let request = |mode: &str| TransformRequest {
            method: "POST".into(),
            path: format!("/hooks/x/{mode}"),
            query: String::new(),
            headers: vec![Header {
                name: "X-Test".into(),
                value: "from the plugin".into(),
            }],
            body: b"hi".to_vec(),
        };
        let posted = state
            .run(info.id.clone(), request("ok"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            posted.contains("x-test=from the plugin body=hi"),
            "{posted}"
        );
        assert!(matches!(
            state.run(info.id.clone(), request("drop")).await,
            Ok(None)
        ));
        match state.run(info.id.clone(), request("err")).await {
            Err(TransformFailure::Refused(m)) => assert_eq!(m, "refused by the test transform"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        match state.run(info.id.clone(), request("trap")).await {
            Err(TransformFailure::Crashed(what)) => assert!(what.starts_with("trap: "), "{what}"),
            other => panic!("expected a crash, got {other:?}"),
        }
        assert!(matches!(
            state.run(crate::store::new_id(), request("ok")).await,
            Err(TransformFailure::NotFound)
        ));
    }
}
