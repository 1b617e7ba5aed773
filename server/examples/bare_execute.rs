//! The baseline of `server/benches/execute_http.sh`: a bare axum handler making the same wasmtime
//! call as `POST /api/v1/modules/{id}/execute` (instantiate the module, call an export with i32
//! arguments, answer JSON), with no auth, audit, limits or run history.
//!
//! `cargo run --example bare_execute -- <module.wasm>` prints `listening on http://ADDR`.

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use serde_json::{Value, json};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store, Val};

/// The same allocator as the server, so the two differ only in what the server adds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone)]
struct Bare {
    engine: Engine,
    pre: Arc<InstancePre<()>>,
}

async fn execute(
    State(bare): State<Bare>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let function = body["function"]
        .as_str()
        .ok_or_else(|| bad("function missing".into()))?
        .to_string();
    let args: Vec<Val> = body["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v["value"].as_i64())
                .map(|v| Val::I32(v as i32))
                .collect()
        })
        .unwrap_or_default();
    let mut store = Store::new(&bare.engine, ());
    let instance = bare
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let func = instance
        .get_func(&mut store, &function)
        .ok_or_else(|| bad(format!("no export {function}")))?;
    let mut results = vec![Val::I32(0); func.ty(&store).results().len()];
    func.call_async(&mut store, &args, &mut results)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let results: Vec<Value> = results
        .iter()
        .map(|r| json!({ "type": "i32", "value": r.i32().unwrap_or_default() }))
        .collect();
    Ok(Json(json!({ "results": results })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: bare_execute <module.wasm> [listen address]")?;
    let listen: SocketAddr = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()?;
    let config = Config::new();
    let engine = Engine::new(&config).map_err(|e| e.to_string())?;
    let module = Module::from_file(&engine, &path).map_err(|e| e.to_string())?;
    let linker: Linker<()> = Linker::new(&engine);
    let pre = linker.instantiate_pre(&module).map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/execute", post(execute))
        .with_state(Bare {
            engine,
            pre: Arc::new(pre),
        });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // TCP_NODELAY, as the server sets it, so the two differ only in what the server adds.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
