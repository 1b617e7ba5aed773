//! The page of an area whose features are not built yet: an honest empty state.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::{
    components::{EmptyState, PageHeader},
    pages::not_found::NotFound,
    sections,
};

#[component]
pub fn SectionPage(section: &'static str) -> impl IntoView {
    let Some(s) = sections::find(section) else {
        return view! { <NotFound /> }.into_any();
    };
    view! {
        <Title text=s.title />
        <PageHeader title=s.title summary=s.summary />
        <EmptyState icon=s.icon title=format!("{} is not available yet", s.title)>
            <p>"This area of the console is planned but not built in this version. It will offer:"</p>
            <ul class="checklist">
                {s.coming.iter().map(|item| view! { <li>{*item}</li> }).collect_view()}
            </ul>
        </EmptyState>
    }
    .into_any()
}
