//! One module's page: the analysis report, shares, review (admins), capability group, delete.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::{RiskBadge, StatusPill, human_size};
use crate::{
    api::modules::{
        DeleteModule, ExecuteModule, ModuleDetail, ReviewModule, SetCapabilityGroup, ShareModule,
        UnshareModule, get_module, module_runs,
    },
    ui::forms::{FieldErrors, FormError, page_error},
};

#[component]
pub fn ModulePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let share = ServerAction::<ShareModule>::new();
    let unshare = ServerAction::<UnshareModule>::new();
    let review = ServerAction::<ReviewModule>::new();
    let group = ServerAction::<SetCapabilityGroup>::new();
    let delete = ServerAction::<DeleteModule>::new();
    let exec = ServerAction::<ExecuteModule>::new();
    let detail = Resource::new(
        move || {
            (
                id(),
                share.version().get(),
                unshare.version().get(),
                review.version().get(),
                group.version().get(),
            )
        },
        |(id, ..)| get_module(id),
    );
    let query = use_query_map();
    let uploaded = move || query.read().get("uploaded").is_some();
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => page_error(e),
                    Ok(d) => {
                        let can_execute = d.can_execute && d.module.status != "quarantined";
                        let module_id = d.module.id.clone();
                        view! {
                            <ModuleView d uploaded share unshare review group delete />
                            <RunPanel id=module_id can_execute exec />
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn ModuleView(
    d: ModuleDetail,
    uploaded: impl Fn() -> bool + Send + Sync + 'static,
    share: ServerAction<ShareModule>,
    unshare: ServerAction<UnshareModule>,
    review: ServerAction<ReviewModule>,
    group: ServerAction<SetCapabilityGroup>,
    delete: ServerAction<DeleteModule>,
) -> AnyView {
    let m = d.module.clone();
    let share_error = Signal::derive(move || share.value().get().and_then(Result::err));
    let review_error = Signal::derive(move || review.value().get().and_then(Result::err));
    let other_error = Signal::derive(move || {
        unshare
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| group.value().get().and_then(Result::err))
            .or_else(|| delete.value().get().and_then(Result::err))
    });
    let id = m.id.clone();
    let (id_share, id_review, id_caps, id_delete) =
        (id.clone(), id.clone(), id.clone(), id.clone());
    let can_share = d.can_share;
    let shares = m.shares.clone();
    view! {
        <Title text=m.name.clone() />
        <header class="page-header">
            <p class="breadcrumb"><a href="/modules">"Modules"</a>" / "</p>
            <h1>{m.name.clone()}" " <StatusPill status=m.status.clone() /></h1>
            <p class="muted">{format!("{} · {} · owned by {} · uploaded {}", m.kind, human_size(m.size_bytes), m.owner, m.created_at)}</p>
        </header>
        <Show when=uploaded>
            <div class="alert alert-ok" role="status">"The module was uploaded and analysed."</div>
        </Show>
        {(m.status == "quarantined").then(|| view! {
            <div class="alert alert-error" role="alert">"This module is quarantined: it cannot run until an administrator releases it."</div>
        })}
        <FormError error=other_error />
        <section class="card" aria-labelledby="analysis-title" data-testid="analysis">
            <h2 id="analysis-title">"Analysis "<RiskBadge score=m.risk_score /></h2>
            {if m.findings.is_empty() {
                view! { <p class="muted">"No findings: the module passed every enabled rule."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="findings">
                            <thead><tr><th scope="col">"Severity"</th><th scope="col">"Rule"</th><th scope="col">"Finding"</th><th scope="col">"Where"</th></tr></thead>
                            <tbody>
                                {m.findings.iter().map(|f| {
                                    let place = match (&f.function_name, f.function, f.offset) {
                                        (Some(n), _, Some(o)) => format!("{n} @ {o:#x}"),
                                        (None, Some(i), Some(o)) => format!("func {i} @ {o:#x}"),
                                        (_, _, Some(o)) => format!("@ {o:#x}"),
                                        _ => "module".to_string(),
                                    };
                                    view! {
                                        <tr>
                                            <td><span class=format!("severity severity-{}", f.severity)>{f.severity.clone()}</span></td>
                                            <td><code>{f.rule.clone()}</code></td>
                                            <td>{f.message.clone()}</td>
                                            <td class="muted"><code>{place}</code></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            <div class="grid grid-tight">
                <div><h3>"Imports"</h3><ul class="tag-list">{m.imports.iter().map(|i| view! { <li class="tag">{i.clone()}</li> }).collect_view()}</ul></div>
                <div><h3>"Exports"</h3><ul class="tag-list">{m.exports.iter().map(|e| view! { <li class="tag">{e.clone()}</li> }).collect_view()}</ul></div>
            </div>
            <p class="muted small">"SHA-256 "<code>{m.sha256.clone()}</code></p>
            {m.review_note.clone().map(|n| view! { <p><strong>"Review note: "</strong>{n}</p> })}
        </section>
        <div class="grid">
            <section class="card" aria-labelledby="shares-title">
                <h2 id="shares-title">"Shared with"</h2>
                {if shares.is_empty() { view! { <p class="muted">"Only the owner (and administrators) can see this module."</p> }.into_any() } else {
                    view! {
                        <ul class="share-list">
                            {shares.into_iter().map(|(kind, name)| {
                                let label = format!("{kind}: {name}");
                                let aria = format!("Stop sharing with {name}");
                                let id = id.clone();
                                view! {
                                    <li>
                                        <span>{label}</span>
                                        {can_share.then(move || view! {
                                            <ActionForm action=unshare attr:class="form-inline">
                                                <input type="hidden" name="id" value=id.clone() />
                                                <input type="hidden" name="kind" value=kind.clone() />
                                                <input type="hidden" name="name" value=name.clone() />
                                                <button class="button button-small" type="submit" aria-label=aria.clone()>"Remove"</button>
                                            </ActionForm>
                                        })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
                {d.can_share.then(move || view! {
                    <FormError error=share_error fields=&["user", "role"] />
                    <ActionForm action=share attr:class="form" attr:data-testid="share-form">
                        <input type="hidden" name="id" value=id_share.clone() />
                        <div class="field">
                            <label for="share-kind">"Share with"</label>
                            <select id="share-kind" name="kind">
                                <option value="user">"a user"</option>
                                <option value="role">"everyone with a role"</option>
                            </select>
                        </div>
                        <div class="field">
                            <label for="share-name">"Username or role"</label>
                            <input id="share-name" name="name" required aria-describedby="share-errors" />
                            <FieldErrors error=share_error field="user" id="share-errors" />
                        </div>
                        <button class="button" type="submit">"Share"</button>
                    </ActionForm>
                })}
            </section>
            {d.can_review.then(move || view! {
                <section class="card" aria-labelledby="review-title">
                    <h2 id="review-title">"Review"</h2>
                    <FormError error=review_error fields=&["reason"] />
                    <ActionForm action=review attr:class="form" attr:data-testid="review-form">
                        <input type="hidden" name="id" value=id_review.clone() />
                        <div class="field">
                            <label for="review-reason">"Reason (kept in the audit log)"</label>
                            <textarea id="review-reason" name="reason" rows="2" required aria-describedby="reason-errors"></textarea>
                            <FieldErrors error=review_error field="reason" id="reason-errors" />
                        </div>
                        <div class="button-row">
                            <button class="button" type="submit" name="decision" value="release">"Release"</button>
                            <button class="button button-danger" type="submit" name="decision" value="quarantine">"Quarantine"</button>
                        </div>
                    </ActionForm>
                </section>
                <section class="card" aria-labelledby="caps-title">
                    <h2 id="caps-title">"Capabilities"</h2>
                    <p class="muted">"Everything is off by default (sandbox.yml). A capability group grants more."</p>
                    <ActionForm action=group attr:class="form">
                        <input type="hidden" name="id" value=id_caps.clone() />
                        <div class="field">
                            <label for="cap-group">"Capability group"</label>
                            <select id="cap-group" name="group">
                                <option value="" selected=m.capability_group.is_none()>"none (defaults)"</option>
                                {d.capability_groups.iter().map(|g| view! { <option value=g.clone() selected=m.capability_group.as_ref() == Some(g)>{g.clone()}</option> }).collect_view()}
                            </select>
                        </div>
                        <button class="button" type="submit">"Save"</button>
                    </ActionForm>
                </section>
            })}
            {d.can_delete.then(move || view! {
                <section class="card card-danger" aria-labelledby="delete-title">
                    <h2 id="delete-title">"Delete module"</h2>
                    <ActionForm action=delete attr:class="form">
                        <input type="hidden" name="id" value=id_delete.clone() />
                        <div class="field">
                            <label for="delete-reason">"Reason (optional, audited)"</label>
                            <input id="delete-reason" name="reason" />
                        </div>
                        <button class="button button-danger" type="submit">"Delete module"</button>
                    </ActionForm>
                </section>
            })}
        </div>
    }
    .into_any()
}

#[component]
fn RunPanel(id: String, can_execute: bool, exec: ServerAction<ExecuteModule>) -> AnyView {
    let runs_id = id.clone();
    let runs = Resource::new(
        move || (runs_id.clone(), exec.version().get()),
        |(id, _)| module_runs(id),
    );
    let error = Signal::derive(move || exec.value().get().and_then(Result::err));
    let (mode, set_mode) = signal("call".to_string());
    view! {
        <div class="grid">
            {can_execute.then(|| view! {
                <section class="card" aria-labelledby="run-title">
                    <h2 id="run-title">"Run"</h2>
                    <FormError error fields=&["function", "args", "env"] />
                    <ActionForm action=exec attr:class="form" attr:data-testid="run-form">
                        <input type="hidden" name="id" value=id.clone() />
                        <fieldset class="field">
                            <legend>"How"</legend>
                            <div class="checkbox-row">
                                <label class="checkbox"><input type="radio" name="mode" value="call" checked on:change=move |_| set_mode.set("call".into()) />"Call an exported function"</label>
                                <label class="checkbox"><input type="radio" name="mode" value="command" on:change=move |_| set_mode.set("command".into()) />"Run as a WASI command"</label>
                            </div>
                        </fieldset>
                        <div class="field">
                            <label for="run-function">"Function (for a call)"</label>
                            <input id="run-function" name="function" placeholder="add" aria-describedby="function-errors" />
                            <FieldErrors error field="function" id="function-errors" />
                        </div>
                        <div class="field">
                            <label for="run-args">"Arguments"</label>
                            <input id="run-args" name="args" placeholder=move || if mode.get() == "command" { "--flag value" } else { "i32:2 i32:3" } aria-describedby="args-hint args-errors" />
                            <p class="hint" id="args-hint">"For a call: typed values such as i32:2 i64:7 f64:1.5 (bare integers are i32). For a command: words passed as argv."</p>
                            <FieldErrors error field="args" id="args-errors" />
                        </div>
                        <details>
                            <summary>"Command input"</summary>
                            <div class="field">
                                <label for="run-env">"Environment (KEY=VALUE per line; needs environment_access)"</label>
                                <textarea id="run-env" name="env" rows="2"></textarea>
                                <FieldErrors error field="env" id="env-errors" />
                            </div>
                            <div class="field">
                                <label for="run-stdin">"Standard input"</label>
                                <textarea id="run-stdin" name="stdin" rows="2"></textarea>
                            </div>
                        </details>
                        <button class="button button-primary" type="submit" disabled=move || exec.pending().get()>
                            {move || if exec.pending().get() { "Running…" } else { "Run in the sandbox" }}
                        </button>
                    </ActionForm>
                    {move || exec.value().get().and_then(Result::ok).map(|r| view! {
                        <div class=if r.ok { "run-result run-ok" } else { "run-result run-bad" } role="status" data-testid="run-result">
                            <p><strong>{if r.ok { "Succeeded".to_string() } else { format!("Stopped: {}", r.outcome) }}</strong></p>
                            {r.message.map(|m| view! { <p>{m}</p> })}
                            {(!r.results.is_empty()).then(|| view! { <p>"Results: "<code data-testid="run-results">{r.results.join(", ")}</code></p> })}
                            {r.exit_code.map(|c| view! { <p>{format!("Exit code {c}")}</p> })}
                            {r.stdout.filter(|s| !s.is_empty()).map(|s| view! { <pre class="output">{s}</pre> })}
                            {r.stderr.filter(|s| !s.is_empty()).map(|s| view! { <pre class="output output-err">{s}</pre> })}
                            {r.truncated.then(|| view! { <p class="muted">"Output was truncated."</p> })}
                            <p class="muted small">{format!("{:.2} ms · {} loop iterations · peak memory {} · run {}", r.duration_ms, r.iterations, super::human_size(r.peak_memory_bytes), r.run_id)}</p>
                        </div>
                    })}
                </section>
            })}
            <section class="card" aria-labelledby="runs-title">
                <h2 id="runs-title">"Recent runs"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match runs.await {
                            Err(e) => view! { <p class="muted">{e.to_string()}</p> }.into_any(),
                            Ok(list) if list.is_empty() => view! { <p class="muted">"This module has not run yet."</p> }.into_any(),
                            Ok(list) => view! {
                                <ul class="run-list" data-testid="runs">
                                    {list.into_iter().map(|r| {
                                        let class = if r.outcome == "success" { "pill pill-ok" } else { "pill pill-bad" };
                                        view! {
                                        <li>
                                            <span class=class>{r.outcome}</span>
                                            {if r.output_visible {
                                                view! { <span>{r.summary}</span> }.into_any()
                                            } else {
                                                view! { <span class="muted" data-testid="run-output-hidden">"Output visible only to who ran it"</span> }.into_any()
                                            }}
                                            {r.truncated.then(|| view! { <span class="muted small" data-testid="run-truncated">"(output truncated in the history)"</span> })}
                                            <span class="muted small">{format!("{} · {} · {:.2} ms · {}", r.started_at, r.actor, r.duration_ms, r.mode)}</span>
                                        </li>
                                    }}).collect_view()}
                                </ul>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </div>
    }
    .into_any()
}
