//! The account page's "Your data" section: ask for a copy of everything the platform holds about
//! you (privacy.yml `data_export`), watch it being prepared, and download it once.
//!
//! Hydrated, the list refreshes itself every second while an export is being prepared; without
//! JavaScript the page reloads itself (a `<noscript>` refresh) until it is ready.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::{
    api::exports::{ExportRow, RequestExport, export_options, list_exports},
    ui::{
        components::EmptyState,
        forms::{FieldErrors, FormError, page_error},
    },
};

/// What a refused download means, by the code it came back with.
fn download_problem(code: &str) -> &'static str {
    match code {
        "export_downloaded" => {
            "That export was downloaded already: a download link works once. Ask for a new export."
        }
        "export_expired" => "That export expired before it was downloaded. Ask for a new export.",
        "export_not_ready" => "That export is still being prepared.",
        "export_failed" => "That export could not be prepared. Ask for a new export.",
        _ => "That export is not available.",
    }
}

fn size_text(bytes: Option<i64>) -> String {
    match bytes {
        None => String::new(),
        Some(b) if b < 1024 => format!("{b} B"),
        Some(b) if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        Some(b) => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[component]
pub fn ExportsSection() -> impl IntoView {
    let query = use_query_map();
    let tick = RwSignal::new(0u32);
    let exports = Resource::new(move || (query.get(), tick.get()), |_| list_exports());
    let options = Resource::new(|| (), |()| export_options());
    let request = ServerAction::<RequestExport>::new();
    let error = Signal::derive(move || request.value().get().and_then(Result::err));
    // While one is being prepared, look again in a second (in the browser only).
    Effect::new(move |_| {
        let pending = exports
            .get()
            .and_then(Result::ok)
            .is_some_and(|list| list.iter().any(ExportRow::pending));
        if pending {
            set_timeout(
                move || tick.update(|n| *n += 1),
                std::time::Duration::from_millis(1000),
            );
        }
    });
    Effect::new(move |_| {
        if matches!(request.value().get(), Some(Ok(()))) {
            tick.update(|n| *n += 1);
        }
    });
    let notice = move || {
        let q = query.read();
        if let Some(code) = q.get("export_error") {
            Some(view! { <div class="alert alert-error" role="alert">{download_problem(&code)}</div> }.into_any())
        } else if q.get("export").is_some() || matches!(request.value().get(), Some(Ok(()))) {
            Some(view! { <div class="alert alert-ok" role="status">"Your export is being prepared. Its download link appears below when it is ready; it works once and for 24 hours."</div> }.into_any())
        } else {
            None
        }
    };
    view! {
        <section class="card" id="exports" aria-labelledby="exports-title">
            <h2 id="exports-title">"Your data"</h2>
            <p class="muted">"Download a copy of everything this platform holds about you: your account and roles, linked sign-ins, sessions and tokens (never the secrets), your modules, shares and runs, and the audit events about you."</p>
            {notice}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match options.await {
                        Ok(o) if !o.enabled => view! { <p class="muted">"Data exports are turned off on this platform."</p> }.into_any(),
                        Ok(o) => export_form(o, request, error).into_any(),
                        Err(e) => page_error(e),
                    }
                })}
            </Suspense>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match exports.await {
                        Ok(list) if list.is_empty() => view! {
                            <EmptyState icon="" title="No exports yet".to_string()>
                                <p>"Ask for one above; it is prepared in the background."</p>
                            </EmptyState>
                        }.into_any(),
                        Ok(list) => {
                            let pending = list.iter().any(ExportRow::pending);
                            view! {
                                {pending.then(|| view! {
                                    <noscript inner_html="<meta http-equiv=\"refresh\" content=\"2\">"></noscript>
                                })}
                                <div class="table-wrap">
                                    <table class="table" data-testid="exports-table">
                                        <thead><tr><th scope="col">"Requested"</th><th scope="col">"Format"</th><th scope="col">"Encryption"</th><th scope="col">"Progress"</th><th scope="col">"File"</th></tr></thead>
                                        <tbody>{list.into_iter().map(export_row).collect_view()}</tbody>
                                    </table>
                                </div>
                            }.into_any()
                        }
                        Err(e) => page_error(e),
                    }
                })}
            </Suspense>
        </section>
    }
}

fn export_form(
    o: crate::api::exports::ExportSettings,
    request: ServerAction<RequestExport>,
    error: Signal<Option<crate::api::AppError>>,
) -> impl IntoView {
    let required = o.encryption_required;
    view! {
        <FormError error fields=&["format", "recipient", "passphrase"] />
        <ActionForm action=request attr:class="form" attr:data-testid="export-form">
            <div class="form-grid">
                <div class="field">
                    <label for="export-format">"Format"</label>
                    <select id="export-format" name="format" aria-describedby="export-format-errors">
                        {o.formats.iter().map(|f| {
                            let label = if f == "csv" { "CSV files in a zip" } else { "JSON" };
                            view! { <option value=f.clone()>{label}</option> }
                        }).collect_view()}
                    </select>
                    <FieldErrors error field="format" id="export-format-errors" />
                </div>
                <div class="field field-check">
                    <input id="export-binaries" name="include_binaries" type="checkbox" value="1" />
                    <label for="export-binaries">"Include my module files"</label>
                </div>
            </div>
            <fieldset class="field">
                <legend>{if required { "Encrypt it with age (required here)" } else { "Encrypt it with age" }}</legend>
                <div class="radio-row">
                    <input id="protect-recipient" type="radio" name="protection" value="recipient" checked=true />
                    <label for="protect-recipient">"To my age public key"</label>
                </div>
                <div class="radio-row">
                    <input id="protect-passphrase" type="radio" name="protection" value="passphrase" />
                    <label for="protect-passphrase">"With a passphrase"</label>
                </div>
                {(!required).then(|| view! {
                    <div class="radio-row">
                        <input id="protect-none" type="radio" name="protection" value="none" />
                        <label for="protect-none">"Not encrypted"</label>
                    </div>
                })}
            </fieldset>
            <div class="form-grid">
                <div class="field">
                    <label for="export-recipient">"age public key"</label>
                    <input id="export-recipient" name="recipient" type="text" spellcheck="false" autocomplete="off" placeholder="age1…" aria-describedby="export-recipient-hint export-recipient-errors" />
                    <p class="hint" id="export-recipient-hint">"The line age-keygen prints as “public key”. Decrypt with "<code>"age -d -i key.txt"</code>"."</p>
                    <FieldErrors error field="recipient" id="export-recipient-errors" />
                </div>
                <div class="field">
                    <label for="export-passphrase">"Passphrase"</label>
                    <input id="export-passphrase" name="passphrase" type="password" autocomplete="new-password" aria-describedby="export-passphrase-hint export-passphrase-errors" />
                    <p class="hint" id="export-passphrase-hint">"At least 12 characters. Decrypt with "<code>"age -d"</code>"; it is never stored."</p>
                    <FieldErrors error field="passphrase" id="export-passphrase-errors" />
                </div>
            </div>
            <button class="button button-primary" type="submit">"Export my data"</button>
        </ActionForm>
    }
}

fn export_row(e: ExportRow) -> impl IntoView {
    let format = if e.format == "csv" {
        "CSV (zip)"
    } else {
        "JSON"
    };
    let format = if e.include_binaries {
        format!("{format} + modules")
    } else {
        format.to_string()
    };
    let encryption = match e.encryption.as_str() {
        "recipient" => "age key",
        "passphrase" => "passphrase",
        _ => "none",
    };
    let label = format!("Export progress {}%", e.progress);
    let file = match e.status.as_str() {
        "ready" => {
            let href = format!("/account/exports/{}/download", e.id);
            let expires = e.expires_at.clone().unwrap_or_default();
            view! {
                <a class="button button-secondary" href=href rel="external" download=e.file_name.clone() data-testid="export-download">"Download"</a>
                <span class="muted">{format!(" {} · until {expires}", size_text(e.size_bytes))}</span>
            }
            .into_any()
        }
        "downloaded" => view! { <span class="pill">"downloaded"</span> }.into_any(),
        "expired" => view! { <span class="pill pill-bad">"expired"</span> }.into_any(),
        "failed" => view! { <span class="pill pill-bad" title=e.error.clone().unwrap_or_default()>"failed"</span> }.into_any(),
        _ => view! { <span class="pill">"preparing"</span> }.into_any(),
    };
    view! {
        <tr data-status=e.status.clone()>
            <td>{e.requested_at.clone()}</td>
            <td>{format}</td>
            <td>{encryption}</td>
            <td>
                <div class="export-progress">
                    <progress max="100" value=e.progress.to_string() aria-label=label></progress>
                    <span class="muted" data-testid="export-percent">{format!("{}%", e.progress)}</span>
                </div>
            </td>
            <td>{file}</td>
        </tr>
    }
}
