//! The upload page. Without JavaScript the form posts to `/modules/upload` and the server
//! redirects to the new module; hydrated, the same form is sent with `XMLHttpRequest` so a
//! progress bar follows the upload, then the analysis.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::ui::components::PageHeader;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Uploading(f64),
    Analysing,
}

#[component]
pub fn UploadPage() -> impl IntoView {
    let query = use_query_map();
    let (phase, set_phase) = signal(Phase::Idle);
    let (error, set_error) = signal(None::<String>);
    // Without JavaScript the server redirects back with `?error=<code>`; only the code is read,
    // so a crafted link cannot put its own words on the page.
    let shown_error = move || {
        error.get().or_else(|| {
            query
                .read()
                .get("error")
                .map(|code| error_message(&code).to_string())
        })
    };
    let on_submit = move |ev: SubmitEvent| {
        use wasm_bindgen::JsCast;
        let Some(form) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
        else {
            return;
        };
        if send(&form, set_phase, set_error).is_ok() {
            ev.prevent_default();
        }
    };
    let percent = move || match phase.get() {
        Phase::Idle => 0.0,
        Phase::Uploading(f) => (f * 100.0).round(),
        Phase::Analysing => 100.0,
    };
    view! {
        <Title text="Upload a module" />
        <p class="breadcrumb"><a href="/modules">"Modules"</a>" / "</p>
        <PageHeader title="Upload a module" summary="A .wasm core module or component. It is validated, analysed for risky patterns, and stored encrypted." />
        <section class="card upload-card">
            {move || shown_error().map(|e| view! { <div class="alert alert-error" role="alert" data-testid="upload-error">{e}</div> })}
            <form class="form" method="post" action="/modules/upload" enctype="multipart/form-data" on:submit=on_submit data-testid="upload-form">
                <div class="field">
                    <label for="module-file">"WebAssembly file"</label>
                    <input id="module-file" name="file" type="file" accept=".wasm,application/wasm" required />
                </div>
                <div class="field">
                    <label for="module-name">"Name"</label>
                    <input id="module-name" name="name" placeholder="Defaults to the file name" maxlength="128" />
                </div>
                <div class="field">
                    <label for="module-description">"Description"</label>
                    <textarea id="module-description" name="description" rows="3"></textarea>
                </div>
                <div class="upload-progress" hidden=move || phase.get() == Phase::Idle>
                    <progress max="100" value=percent aria-label="Upload progress" data-testid="upload-progress"></progress>
                    <span role="status" aria-live="polite" data-testid="upload-phase">
                        {move || match phase.get() {
                            Phase::Idle => String::new(),
                            Phase::Uploading(_) => format!("Uploading… {}%", percent()),
                            Phase::Analysing => "Uploaded. Analysing the module…".to_string(),
                        }}
                    </span>
                </div>
                <button class="button button-primary" type="submit" disabled=move || phase.get() != Phase::Idle>"Upload and analyse"</button>
            </form>
        </section>
    }
}

/// The message for an upload error code (the REST error codes of `POST /api/v1/modules`).
fn error_message(code: &str) -> &'static str {
    match code {
        "invalid_module" => {
            "The file is invalid WebAssembly: it is not a module or component that can be parsed."
        }
        "empty_module" => "The file is empty: choose a .wasm file.",
        "payload_too_large" => "The file or a field is larger than the upload limit.",
        "validation" => "The name or description is not valid: check them and try again.",
        "invalid_request" => "The form could not be read: choose a file and try again.",
        "forbidden" => "You do not have permission to upload modules.",
        "conflict" => "The upload conflicts with an existing module.",
        "quota_exceeded" => "Your modules would exceed your storage quota: delete some first.",
        "request_timeout" => "The upload was too slow and was cut off: try again.",
        "csrf_rejected" => "The form was sent from another site: open this page and try again.",
        _ => "The upload failed. Try again, or ask an administrator to check the server log.",
    }
}

/// Sends the form with `XMLHttpRequest`, reporting progress; on success the browser goes to the
/// module's page.
fn send(
    form: &web_sys::HtmlFormElement,
    set_phase: WriteSignal<Phase>,
    set_error: WriteSignal<Option<String>>,
) -> Result<(), wasm_bindgen::JsValue> {
    use wasm_bindgen::{JsCast, closure::Closure};
    let data = web_sys::FormData::new_with_form(form)?;
    let xhr = web_sys::XmlHttpRequest::new()?;
    xhr.open("POST", "/modules/upload")?;
    xhr.set_request_header("Accept", "application/json")?;
    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            if e.length_computable() && e.total() > 0.0 {
                let f = e.loaded() / e.total();
                set_phase.set(if f >= 1.0 {
                    Phase::Analysing
                } else {
                    Phase::Uploading(f)
                });
            }
        });
    xhr.upload()?
        .set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    on_progress.forget();
    let done = xhr.clone();
    let on_load = Closure::<dyn FnMut()>::new(move || {
        let body = done.response_text().ok().flatten().unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        match (done.status().unwrap_or(0), json["id"].as_str()) {
            (201, Some(id)) => {
                if let Some(window) = web_sys::window() {
                    let _ = window
                        .location()
                        .set_href(&format!("/modules/{id}?uploaded=1"));
                }
            }
            (401, _) => {
                if let Some(window) = web_sys::window() {
                    let _ = window.location().set_href("/login?next=/modules/upload");
                }
            }
            _ => {
                set_phase.set(Phase::Idle);
                set_error.set(Some(
                    json["error"]["message"]
                        .as_str()
                        .unwrap_or("the upload failed")
                        .to_string(),
                ));
            }
        }
    });
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    on_load.forget();
    let on_error = Closure::<dyn FnMut()>::new(move || {
        set_phase.set(Phase::Idle);
        set_error.set(Some(
            "the upload failed: the server could not be reached".to_string(),
        ));
    });
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    set_error.set(None);
    set_phase.set(Phase::Uploading(0.0));
    xhr.send_with_opt_form_data(Some(&data))
}
