//! The Compliance page, GDPR part (privacy.yml): the privacy settings in force, the erasure
//! requests waiting for an administrator (approve, or reject with a reason the person sees), the
//! last retention run and anonymisation pass, and every account's export requests.

mod settings;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::{
        compliance::{
            ClassifiedField, ComplianceView, ControlView, DecideErasure, ErasureAdminRow, JobView,
            SaveSettings, SettingsView, TransitView, compliance_overview,
        },
        exports::ExportRow,
    },
    ui::{
        components::{EmptyState, PageHeader},
        forms::{FormError, page_error},
        sections,
    },
};

#[component]
pub fn CompliancePage() -> impl IntoView {
    let query = use_query_map();
    let decide = ServerAction::<DecideErasure>::new();
    let saves = [
        ServerAction::<SaveSettings>::new(),
        ServerAction::<SaveSettings>::new(),
    ];
    let reset = ServerAction::<SaveSettings>::new();
    let data = Resource::new(
        move || {
            (
                query.get(),
                decide.version().get(),
                saves.map(|s| s.version().get()),
                reset.version().get(),
            )
        },
        |_| compliance_overview(),
    );
    let error = Signal::derive(move || decide.value().get().and_then(Result::err));
    let notice = move || match query.read().get("erasure").as_deref() {
        Some("approved") => Some("The erasure was approved; it runs now."),
        Some("rejected") => Some("The request was rejected; the person sees your reason."),
        _ => match query.read().get("settings").as_deref() {
            Some("saved") => Some("Settings saved: they apply now, on every replica."),
            Some("reset") => Some("The file's values apply again."),
            _ => None,
        },
    };
    view! {
        <Title text="Compliance" />
        <PageHeader title="Compliance" summary="SOC 2 controls checked live, and GDPR: the privacy settings in force, erasure requests, retention and data exports." />
        {move || notice().map(|n| view! { <div class="alert alert-ok" role="status">{n}</div> })}
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => page_error(e),
                    Ok(view) => page(view, decide, error, saves, reset).into_any(),
                }
            })}
        </Suspense>
    }
}

fn page(
    v: ComplianceView,
    decide: ServerAction<DecideErasure>,
    error: Signal<Option<crate::api::AppError>>,
    saves: [ServerAction<SaveSettings>; 2],
    reset: ServerAction<SaveSettings>,
) -> impl IntoView {
    view! {
        <div class="compliance-page">
        {controls_card(v.controls)}
        {settings::settings_section(v.editable, saves, reset)}
        <div class="grid">
            {settings_card(v.settings)}
            <div class="compliance-page">
                <section class="card" aria-labelledby="retention-title" data-testid="retention-card">
                    <h2 id="retention-title">"Retention"</h2>
                    {job_view("Last retention run", v.last_retention, "Retention runs once a day, or with wasm-as-os admin retention run.")}
                    {job_view("Last anonymisation", v.last_anonymisation, "Anonymisation runs every hour once there is something to reduce.")}
                </section>
                {transit_card(v.transit)}
            </div>
        </div>
        {classification_card(v.classification)}
        {erasures_card(v.erasures, decide, error)}
        {exports_card(v.exports)}
        </div>
    }
}

/// soc2.yml's controls: required or not, holding now or not (red with the reason and the fix),
/// or not built yet.
fn controls_card(controls: Vec<ControlView>) -> impl IntoView {
    let failing = controls
        .iter()
        .filter(|c| c.required && c.state == "fails")
        .count();
    let holding = controls.iter().filter(|c| c.state == "holds").count();
    let total = controls.len();
    let checked = controls
        .first()
        .map(|c| c.checked_at.clone())
        .unwrap_or_default();
    view! {
        <section class="card" aria-labelledby="controls-title" data-testid="controls-card">
            <h2 id="controls-title">"SOC 2 controls"</h2>
            <p class="muted" data-testid="controls-summary">
                {format!("{holding} of {total} hold now; {failing} required failing. Checked {checked} from live data, not from soc2.yml's flags.")}
            </p>
            <div class="table-wrap">
                <table class="table" data-testid="controls">
                    <thead><tr><th scope="col">"Control"</th><th scope="col">"soc2.yml"</th><th scope="col">"Now"</th><th scope="col">"Evidence"</th></tr></thead>
                    <tbody>
                        {controls.into_iter().map(|c| {
                            let (class, label) = match (c.state.as_str(), c.required) {
                                ("holds", _) => ("pill pill-ok", "holds"),
                                ("fails", true) => ("pill pill-bad", "fails"),
                                ("fails", false) => ("pill pill-warn", "would fail"),
                                _ => ("pill pill-warn", "not built yet"),
                            };
                            let key = c.key.clone();
                            let state = c.state.clone();
                            view! {
                                <tr data-testid="control" data-control=key data-state=state>
                                    <td><strong>{c.title}</strong><br /><span class="muted">{c.area}" · "<code>{c.key}</code></span></td>
                                    <td>{if c.required { "required" } else { "not required" }}</td>
                                    <td><span class=class>{label}</span></td>
                                    <td>
                                        {c.evidence}
                                        {c.fix.map(|f| view! { <p class="hint" data-testid="control-fix"><strong>"Fix: "</strong>{f}</p> })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// Every personal column with its class, purpose, retention, export and anonymisation: one
/// table in the code, also read by the export and anonymisation.
fn classification_card(fields: Vec<ClassifiedField>) -> impl IntoView {
    let mut tables: Vec<(String, Vec<ClassifiedField>)> = Vec::new();
    for f in fields {
        match tables.iter_mut().find(|(t, _)| *t == f.table) {
            Some((_, list)) => list.push(f),
            None => tables.push((f.table.clone(), vec![f])),
        }
    }
    view! {
        <section class="card" id="classification" aria-labelledby="classification-title" data-testid="classification">
            <h2 id="classification-title">"Data classification and purposes"</h2>
            <p class="muted">"Every stored field about a person: its class, why it is kept and for how long, where a data export shows it (or why never), and what anonymisation reduces. The export and anonymisation read this same table, and the data classification control checks the live database against it."</p>
            {tables.into_iter().map(|(table, list)| {
                let count = list.len();
                view! {
                    <details data-testid="classified-table" data-table=table.clone()>
                        <summary><code>{table.clone()}</code>{format!(" · {count} field{}", if count == 1 { "" } else { "s" })}</summary>
                        <div class="table-wrap">
                            <table class="table">
                                <thead><tr><th scope="col">"Field"</th><th scope="col">"Class"</th><th scope="col">"Purpose"</th><th scope="col">"Kept"</th><th scope="col">"In a data export"</th><th scope="col">"Anonymised"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|f| (format!("{}.{}", f.table, f.column), f)).map(|(id, f)| view! {
                                        <tr data-field=id>
                                            <td><code>{f.column}</code></td>
                                            <td><span class="pill">{f.class}</span></td>
                                            <td>{f.purpose}</td>
                                            <td>{f.kept}</td>
                                            <td class=if f.exported { "" } else { "muted" }>{f.export}</td>
                                            <td>{f.reduced.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    </details>
                }
            }).collect_view()}
        </section>
    }
}

fn yes(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn settings_card(s: SettingsView) -> impl IntoView {
    let fields = if s.anonymised_fields.is_empty() {
        "none".to_string()
    } else {
        s.anonymised_fields.join(", ")
    };
    let formats = s.export_formats.join(", ");
    view! {
        <section class="card" aria-labelledby="settings-title" data-testid="privacy-settings">
            <h2 id="settings-title">"Privacy settings"</h2>
            <p class="muted">"From privacy.yml, as the platform applies them."</p>
            <dl class="facts">
                <dt>"GDPR compliance"</dt><dd>{yes(s.gdpr_compliance)}</dd>
                {s.retention.into_iter().map(|(what, period)| view! {
                    <dt>{format!("Keep {}", what.to_lowercase())}</dt><dd>{period}</dd>
                }).collect_view()}
                <dt>"Anonymisation"</dt><dd>{format!("{} ({fields})", yes(s.anonymisation))}</dd>
                <dt>"Full addresses and user agents kept"</dt><dd>{s.full_values_kept_for}</dd>
                <dt>"Right to be forgotten"</dt><dd>{yes(s.erasure)}</dd>
                <dt>"Erasure"</dt>
                <dd>{if s.automated_deletion {
                    format!("automatic, after a grace period of {}", s.grace_period)
                } else {
                    "after an administrator approves".to_string()
                }}</dd>
                <dt>"Data export"</dt>
                <dd>{format!("{} ({formats}{})", yes(s.export), if s.export_encryption { ", encrypted with age" } else { "" })}</dd>
            </dl>
        </section>
    }
}

fn transit_card(t: TransitView) -> impl IntoView {
    let body = if !t.enabled {
        view! {
            <p class="muted">"Off: this server speaks plain HTTP (tls.yml enabled: false). Put it behind TLS before exposing it."</p>
        }
        .into_any()
    } else {
        let protocols = if t.min_version == "1.3" {
            "TLS 1.3 only"
        } else {
            "TLS 1.2 and 1.3"
        };
        let soon = t.days_left.is_some_and(|d| d < 30);
        let expires = match (&t.expires, t.days_left) {
            (Some(at), Some(days)) => format!("{at} ({days} days left)"),
            _ => "unknown".to_string(),
        };
        view! {
            <dl class="facts">
                <dt>"Protocols"</dt><dd>{protocols}</dd>
                <dt>"Cipher suites"</dt><dd>{t.cipher_suites.join(", ")}</dd>
                <dt>"Client certificates"</dt><dd>{t.client_auth.replace('_', " ")}</dd>
                <dt>"Certificate"</dt><dd>{t.certificate.unwrap_or_default()}</dd>
                <dt>"Expires"</dt>
                <dd>
                    {expires}
                    {soon.then(|| view! { " " <span class="pill pill-warn">"renew soon"</span> })}
                </dd>
            </dl>
        }
        .into_any()
    };
    view! {
        <section class="card" aria-labelledby="transit-title" data-testid="transit">
            <h2 id="transit-title">"Encryption in transit"</h2>
            {body}
        </section>
    }
}

fn job_view(title: &'static str, run: Option<JobView>, none: &'static str) -> impl IntoView {
    view! {
        <h3>{title}</h3>
        {match run {
            None => view! { <p class="muted">{format!("Not run yet. {none}")}</p> }.into_any(),
            Some(j) => view! {
                <p>{j.at}</p>
                <ul class="plain-list">
                    {j.counts.into_iter().map(|(label, n)| view! { <li><strong>{n}</strong>" "{label}</li> }).collect_view()}
                </ul>
            }.into_any(),
        }}
    }
}

fn erasures_card(
    list: Option<Vec<ErasureAdminRow>>,
    decide: ServerAction<DecideErasure>,
    error: Signal<Option<crate::api::AppError>>,
) -> impl IntoView {
    let icon = sections::find("compliance").map_or("", |s| s.icon);
    let body = match list {
        None => view! { <p class="muted">"Deciding erasure requests needs the users:delete permission."</p> }.into_any(),
        Some(list) if list.is_empty() => view! {
            <EmptyState icon title="No erasure requests".to_string()>
                <p>"When someone asks for their account to be erased, the request appears here."</p>
            </EmptyState>
        }.into_any(),
        Some(list) => view! {
            <FormError error />
            <div class="table-wrap">
                <table class="table" data-testid="erasures-table">
                    <thead><tr><th scope="col">"Account"</th><th scope="col">"Asked by"</th><th scope="col">"Requested"</th><th scope="col">"Status"</th><th scope="col">"Decision"</th></tr></thead>
                    <tbody>{list.into_iter().map(|e| erasure_row(e, decide)).collect_view()}</tbody>
                </table>
            </div>
        }.into_any(),
    };
    view! {
        <section class="card" id="erasures" aria-labelledby="erasures-title">
            <h2 id="erasures-title">"Erasure requests"</h2>
            {body}
        </section>
    }
}

fn erasure_row(e: ErasureAdminRow, decide: ServerAction<DecideErasure>) -> impl IntoView {
    let origin = match e.origin.as_str() {
        "self" => "the person",
        "admin" => "an administrator",
        "retention" => "retention",
        _ => "unknown",
    };
    let who = if e.username.is_empty() {
        "(erased)".to_string()
    } else {
        e.username.clone()
    };
    let status = match (e.status.as_str(), &e.run_at) {
        ("scheduled", Some(at)) => format!("scheduled for {at}"),
        ("running", _) => format!("running: {}", e.step),
        (s, _) => s.to_string(),
    };
    let pill = match e.status.as_str() {
        "done" => "pill pill-ok",
        "rejected" | "cancelled" => "pill",
        "requested" => "pill pill-warn",
        _ => "pill",
    };
    let reason_id = format!("reason-{}", e.id);
    let approve = if e.status == "scheduled" {
        "Erase now"
    } else {
        "Approve"
    };
    let decision = e.open().then(|| {
        let (id, id_again) = (e.id.clone(), e.id.clone());
        let reason_for = reason_id.clone();
        view! {
            <ActionForm action=decide attr:class="form-inline">
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="decision" value="approve" />
                <button class="button button-small button-danger" type="submit" data-testid="erasure-approve">{approve}</button>
            </ActionForm>
            <ActionForm action=decide attr:class="form-inline-grid">
                <input type="hidden" name="id" value=id_again />
                <input type="hidden" name="decision" value="reject" />
                <label class="visually-hidden" for=reason_for>"Reason for rejecting"</label>
                <input id=reason_id.clone() name="reason" type="text" maxlength="255" required placeholder="Reason (the person sees it)" />
                <button class="button button-small" type="submit" data-testid="erasure-reject">"Reject"</button>
            </ActionForm>
        }
    });
    view! {
        <tr data-testid="erasure-row" data-status=e.status.clone()>
            <td>{who}</td>
            <td>{origin}</td>
            <td>{e.requested_at.clone()}</td>
            <td>
                <span class=pill>{status}</span>
                {e.last_error.clone().map(|err| view! { <p class="muted">{format!("last attempt: {err}")}</p> })}
            </td>
            <td>{decision}</td>
        </tr>
    }
}

fn exports_card(list: Vec<ExportRow>) -> impl IntoView {
    let pending = list.iter().any(ExportRow::pending);
    let body = if list.is_empty() {
        let icon = sections::find("compliance").map_or("", |s| s.icon);
        view! {
            <EmptyState icon title="No export requests".to_string()>
                <p>"People request exports of their data on their account page."</p>
            </EmptyState>
        }
        .into_any()
    } else {
        view! {
            {pending.then(|| view! {
                <noscript inner_html="<meta http-equiv=\"refresh\" content=\"3\">"></noscript>
            })}
            <div class="table-wrap">
                <table class="table" data-testid="compliance-exports">
                    <thead><tr><th scope="col">"Whose data"</th><th scope="col">"Requested"</th><th scope="col">"Format"</th><th scope="col">"Encryption"</th><th scope="col">"Progress"</th><th scope="col">"Status"</th></tr></thead>
                    <tbody>{list.into_iter().map(export_row).collect_view()}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="card" id="exports" aria-labelledby="exports-title">
            <h2 id="exports-title">"Export requests"</h2>
            <p class="muted">"Only the person who asked can download an export; this list shows that it happened."</p>
            {body}
        </section>
    }
}

fn export_row(e: ExportRow) -> impl IntoView {
    let label = format!("Export progress {}%", e.progress);
    let status = match e.status.as_str() {
        "ready" => format!("ready until {}", e.expires_at.clone().unwrap_or_default()),
        s => s.to_string(),
    };
    view! {
        <tr data-status=e.status.clone()>
            <td>{if e.username.is_empty() { "(erased)".to_string() } else { e.username.clone() }}</td>
            <td>{e.requested_at.clone()}</td>
            <td>{if e.format == "csv" { "CSV (zip)" } else { "JSON" }}</td>
            <td>{e.encryption.clone()}</td>
            <td>
                <div class="export-progress">
                    <progress max="100" value=e.progress.to_string() aria-label=label></progress>
                    <span class="muted">{format!("{}%", e.progress)}</span>
                </div>
            </td>
            <td>{status}</td>
        </tr>
    }
}
