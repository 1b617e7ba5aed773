//! The Audit dashboard: filter by event, actor, outcome, resource and time; free text; keyset
//! paging; export of the current filter as CSV or JSON; each row opens the whole event.
//!
//! The filter is a plain GET form, so the page, its paging and its export links work without
//! JavaScript and every view has a URL that can be shared.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::audit::search_audit,
    ui::{
        components::{EmptyState, PageHeader},
        forms::{FieldErrors, encode, messages_for, page_error},
        sections,
    },
};

/// The filter fields, in the order of the form and of the URL.
const FILTERS: [&str; 7] = ["event", "actor", "outcome", "resource", "from", "to", "q"];

fn filter_query(values: &[(&'static str, String)]) -> String {
    values
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let filters = move || FILTERS.map(|k| (k, get(k)));
    let data = Resource::new(
        move || (filters(), get("after")),
        |(f, after)| {
            let [event, actor, outcome, resource, from, to, q] = f.map(|(_, v)| v);
            search_audit(event, actor, outcome, resource, from, to, q, after)
        },
    );
    view! {
        <Title text="Audit" />
        <PageHeader title="Audit" summary="Every recorded security event: who did what, from where, and how it ended." />
        <Suspense fallback=|| view! { <p class="muted">"Loading events…"</p> }>
            {move || Suspend::new(async move {
                let result = data.await;
                let values = filters();
                let base = filter_query(&values);
                let (view_data, error) = match result {
                    Ok(v) => (Some(v), None),
                    Err(e) if !e.fields.is_empty() => (None, Some(e)),
                    Err(e) => return page_error(e),
                };
                let names = view_data.as_ref().map(|v| v.event_names.clone()).unwrap_or_default();
                let value = |k: &str| values.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()).unwrap_or_default();
                let error = Signal::stored(error);
                let invalid = move |field: &'static str| (!messages_for(&error.get(), field).is_empty()).then_some("true");
                let export = |format: &str| if base.is_empty() { format!("/audit/export?format={format}") } else { format!("/audit/export?format={format}&{base}") };
                let table = view_data.map(|v| {
                    let next = v.next.clone().map(|n| if base.is_empty() { format!("/audit?after={}", encode(&n)) } else { format!("/audit?{base}&after={}", encode(&n)) });
                    let first = if base.is_empty() { "/audit".to_string() } else { format!("/audit?{base}") };
                    let paged = !get("after").is_empty();
                    if v.rows.is_empty() {
                        let icon = sections::find("audit").map_or("", |s| s.icon);
                        view! {
                            <EmptyState icon title="No events match".to_string()>
                                <p>"Widen the time range or clear a filter."</p>
                            </EmptyState>
                        }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap">
                                <table class="table audit-table" data-testid="audit-table">
                                    <thead><tr>
                                        <th scope="col">"Time (UTC)"</th><th scope="col">"Event"</th><th scope="col">"Outcome"</th>
                                        <th scope="col">"Actor"</th><th scope="col">"Resource"</th><th scope="col">"Address"</th><th scope="col">"Event data"</th>
                                    </tr></thead>
                                    <tbody>
                                        {v.rows.into_iter().map(|r| {
                                            let event = r.event.clone();
                                            let pill = match r.outcome.as_str() { "success" => "pill pill-ok", "denied" => "pill pill-bad", _ => "pill pill-warn" };
                                            view! {
                                                <tr data-event=event>
                                                    <td class="nowrap">{r.time}</td>
                                                    <td><code>{r.event}</code></td>
                                                    <td><span class=pill>{r.outcome}</span></td>
                                                    <td>{r.actor}</td>
                                                    <td class="muted">{r.resource}</td>
                                                    <td class="muted">{r.ip}</td>
                                                    <td>
                                                        <details class="event-detail">
                                                            <summary>"Open"</summary>
                                                            <pre data-testid="audit-event-json">{r.json}</pre>
                                                        </details>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <nav class="pager" aria-label="Pages">
                                {paged.then(|| view! { <a class="button button-small" href=first>"Newest"</a> })}
                                {next.map(|n| view! { <a class="button button-small" rel="next" href=n data-testid="audit-next">"Older events"</a> })}
                            </nav>
                        }.into_any()
                    }
                });
                view! {
                    <form class="card filter-form" method="get" action="/audit" role="search" aria-label="Filter events">
                        <div class="form form-grid">
                            <div class="field">
                                <label for="audit-event">"Event"</label>
                                <select id="audit-event" name="event" aria-invalid=move || invalid("event") aria-describedby="event-errors">
                                    <option value="">"Any event"</option>
                                    {names.into_iter().map(|n| { let selected = value("event") == n; view! { <option value=n.clone() selected=selected>{n.clone()}</option> } }).collect_view()}
                                </select>
                                <FieldErrors error field="event" id="event-errors" />
                            </div>
                            <div class="field">
                                <label for="audit-actor">"Actor"</label>
                                <input id="audit-actor" name="actor" type="text" placeholder="username or id" value=value("actor") />
                            </div>
                            <div class="field">
                                <label for="audit-outcome">"Outcome"</label>
                                <select id="audit-outcome" name="outcome" aria-invalid=move || invalid("outcome") aria-describedby="outcome-errors">
                                    {[("", "Any outcome"), ("success", "success"), ("failure", "failure"), ("denied", "denied")].into_iter().map(|(v, l)| {
                                        let selected = value("outcome") == v;
                                        view! { <option value=v selected=selected>{l}</option> }
                                    }).collect_view()}
                                </select>
                                <FieldErrors error field="outcome" id="outcome-errors" />
                            </div>
                            <div class="field">
                                <label for="audit-resource">"Resource id"</label>
                                <input id="audit-resource" name="resource" type="text" placeholder="module or user id" value=value("resource") />
                            </div>
                            <div class="field">
                                <label for="audit-from">"From (UTC)"</label>
                                <input id="audit-from" name="from" type="datetime-local" value=value("from") aria-invalid=move || invalid("from") aria-describedby="from-errors" />
                                <FieldErrors error field="from" id="from-errors" />
                            </div>
                            <div class="field">
                                <label for="audit-to">"To (UTC)"</label>
                                <input id="audit-to" name="to" type="datetime-local" value=value("to") aria-invalid=move || invalid("to") aria-describedby="to-errors" />
                                <FieldErrors error field="to" id="to-errors" />
                            </div>
                            <div class="field">
                                <label for="audit-q">"Search"</label>
                                <input id="audit-q" name="q" type="search" placeholder="any text, e.g. an address" value=value("q") aria-invalid=move || invalid("q") aria-describedby="q-errors" />
                                <FieldErrors error field="q" id="q-errors" />
                            </div>
                        </div>
                        <div class="toolbar">
                            <button class="button" type="submit">"Apply filters"</button>
                            <a class="button button-secondary" href="/audit">"Clear"</a>
                            <span class="toolbar-spacer"></span>
                            <a class="button button-secondary" href=export("csv") rel="external" data-testid="export-csv">"Export CSV"</a>
                            <a class="button button-secondary" href=export("json") rel="external" data-testid="export-json">"Export JSON"</a>
                        </div>
                    </form>
                    {table}
                }.into_any()
            })}
        </Suspense>
    }
}
