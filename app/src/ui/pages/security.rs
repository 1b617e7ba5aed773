//! The Security dashboard: charts, drawn in SVG here, of authentication failures, denials,
//! executions, sandbox violations and rate-limit refusals per hour, from the recorded audit
//! events; and what rate_limit.yml and ids.yml are doing now: blocked addresses (with Unblock),
//! throttled users and the latest rule triggers.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::security::{EdgeView, SeriesView, Unblock, edge_state, security_overview},
    ui::{
        components::PageHeader,
        forms::{FormError, page_error},
    },
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
    let unblock = ServerAction::<Unblock>::new();
    let edge = Resource::new(move || unblock.version().get(), |_| edge_state());
    let unblock_error = Signal::derive(move || unblock.value().get().and_then(Result::err));
    view! {
        <Title text="Security" />
        <PageHeader title="Security" summary="Authentication failures, denials, module executions, sandbox violations and rate-limit refusals per hour; blocked addresses and intrusion-detection triggers." />
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
        <FormError error=unblock_error />
        <Suspense fallback=|| view! { <p class="muted">"Loading blocks…"</p> }>
            {move || Suspend::new(async move {
                match edge.await {
                    // Without system:audit the section is left out; the charts need less.
                    Err(e) if e.status == 403 => ().into_any(),
                    Err(e) => page_error(e),
                    Ok(view) => view! { <EdgeSection view=view unblock=unblock /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Blocks, throttles and triggers of rate_limit.yml and ids.yml.
#[component]
fn EdgeSection(view: EdgeView, unblock: ServerAction<Unblock>) -> impl IntoView {
    let can_unblock = view.can_unblock;
    view! {
            <section class="card" id="blocks" aria-labelledby="blocks-title" data-testid="blocks">
                <h2 id="blocks-title">"Blocked addresses"</h2>
                {if view.blocks.is_empty() {
                    view! { <p class="muted">"No address is blocked. ids.yml rules with block_ip add them here."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-wrap"><table class="table">
                            <thead><tr><th scope="col">"Address"</th><th scope="col">"Rule"</th><th scope="col">"Since"</th><th scope="col">"Until"</th><th scope="col"><span class="visually-hidden">"Action"</span></th></tr></thead>
                            <tbody>
                                {view.blocks.into_iter().map(|b| {
                                    let label = format!("Unblock {}", b.ip);
                                    view! {
                                        <tr>
                                            <td><code>{b.ip.clone()}</code></td>
                                            <td>{b.rule}</td>
                                            <td>{b.since}</td>
                                            <td>{b.until}</td>
                                            <td>{can_unblock.then(|| view! {
                                                <ActionForm action=unblock attr:class="inline-form">
                                                    <input type="hidden" name="ip" value=b.ip.clone() />
                                                    <button class="button button-small" type="submit" aria-label=label>"Unblock"</button>
                                                </ActionForm>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any()
                }}
            </section>
            <section class="card" aria-labelledby="throttles-title" data-testid="throttles">
                <h2 id="throttles-title">"Throttled users"</h2>
                {if view.throttles.is_empty() {
                    view! { <p class="muted">"No user's runs are held back."</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain-list">
                            {view.throttles.into_iter().map(|t| view! {
                                <li><code>{t.user_id}</code>" · "{t.rule}" · until "{t.until}</li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
        <section class="card" aria-labelledby="alerts-title" data-testid="alert-channels">
            <h2 id="alerts-title">"Alert destinations"</h2>
            {if view.channels.is_empty() {
                view! { <p class="muted">"No alert has been sent yet. ids.yml rules with the alert action send to the destinations under intrusion_detection.alerts."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain-list">
                        {view.channels.into_iter().map(|c| {
                            let (class, word) = if c.ok { ("pill pill-ok", "delivered") } else { ("pill pill-bad", "failing") };
                            view! {
                                <li>
                                    <strong>{c.channel}</strong>" "<span class=class>{word}</span>" · last try "{c.at}
                                    {c.error.map(|e| view! { <div class="muted">{e}</div> })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="triggers-title" data-testid="triggers">
            <h2 id="triggers-title">"Recent intrusion-detection triggers"</h2>
            {if view.triggers.is_empty() {
                view! { <p class="muted">"No ids.yml rule has fired yet."</p> }.into_any()
            } else {
                view! {
                    <table class="table">
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Rule"</th><th scope="col">"Action"</th><th scope="col">"Address"</th></tr></thead>
                        <tbody>
                            {view.triggers.into_iter().map(|t| view! {
                                <tr><td>{t.at}</td><td>{t.rule}</td><td>{t.action}</td><td><code>{t.ip}</code></td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
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
