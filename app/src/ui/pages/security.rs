//! The Security dashboard: charts, drawn in SVG here, of authentication failures, denials,
//! executions and sandbox violations per hour, from the recorded audit events.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::security::{SeriesView, security_overview},
    ui::{components::PageHeader, forms::page_error},
};

#[component]
pub fn SecurityPage() -> impl IntoView {
    let query = use_query_map();
    let hours = move || {
        query
            .read()
            .get("hours")
            .and_then(|h| h.parse::<usize>().ok())
            .unwrap_or(24)
    };
    let data = Resource::new(hours, security_overview);
    view! {
        <Title text="Security" />
        <PageHeader title="Security" summary="Authentication failures, denials, module executions and sandbox violations, per hour." />
        <nav class="toolbar" aria-label="Window">
            <a class="button button-small" href="/security?hours=24">"24 hours"</a>
            <a class="button button-small" href="/security?hours=72">"3 days"</a>
            <a class="button button-small" href="/security?hours=168">"7 days"</a>
        </nav>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => page_error(e),
                    Ok(view) => {
                        let labels = view.labels.clone();
                        view! {
                            <div class="counter-row" data-testid="security-counters">
                                {view.series.iter().map(|s| view! {
                                    <div class="counter card">
                                        <span class="counter-value">{s.total}</span>
                                        <span class="muted">{s.name.clone()}</span>
                                    </div>
                                }).collect_view()}
                            </div>
                            <div class="grid">
                                {view.series.into_iter().map(|s| view! { <Chart series=s labels=labels.clone() /> }).collect_view()}
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 160.0;
const PAD_LEFT: f64 = 32.0;
const PAD_BOTTOM: f64 = 20.0;

/// A bar chart of one series.
#[component]
fn Chart(series: SeriesView, labels: Vec<String>) -> impl IntoView {
    let max = series.counts.iter().copied().max().unwrap_or(0).max(1);
    let n = series.counts.len().max(1) as f64;
    let plot_w = WIDTH - PAD_LEFT;
    let plot_h = HEIGHT - PAD_BOTTOM;
    let bar_w = (plot_w / n).max(1.0);
    let title_id = format!("chart-{}", series.event);
    let labelled = title_id.clone();
    let summary = format!(
        "{}: {} in the window, at most {} in one hour",
        series.name, series.total, max
    );
    let step = (labels.len() / 6).max(1);
    view! {
        <section class="card chart" aria-labelledby=labelled>
            <h2 id=title_id>{series.name.clone()}</h2>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=summary data-testid=format!("chart-{}", series.event)>
                <line x1=PAD_LEFT y1=plot_h x2=WIDTH y2=plot_h class="axis" />
                <text x="0" y="10" class="tick">{max}</text>
                <text x="0" y=plot_h class="tick">"0"</text>
                {series.counts.iter().enumerate().map(|(i, &c)| {
                    let h = (c as f64 / max as f64) * (plot_h - 8.0);
                    let x = PAD_LEFT + i as f64 * bar_w;
                    view! {
                        <rect x=x + 1.0 y=plot_h - h width=(bar_w - 2.0).max(1.0) height=h class="bar">
                            <title>{format!("{}: {c}", labels.get(i).cloned().unwrap_or_default())}</title>
                        </rect>
                    }
                }).collect_view()}
                {labels.iter().enumerate().filter(|(i, _)| i % step == 0).map(|(i, l)| view! {
                    <text x=PAD_LEFT + i as f64 * bar_w y=HEIGHT - 4.0 class="tick">{l.clone()}</text>
                }).collect_view()}
            </svg>
        </section>
    }
}
