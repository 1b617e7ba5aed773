//! The dashboard's areas, as the sidebar lists them.

/// One area of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub slug: &'static str,
    /// Where the area lives in the dashboard.
    pub path: &'static str,
    pub title: &'static str,
    /// What the area is for, in one sentence.
    pub summary: &'static str,
    /// What the area will hold once it is built (shown in its empty state).
    pub coming: &'static [&'static str],
    /// SVG path data for the 24×24 icon.
    pub icon: &'static str,
}

pub const SECTIONS: &[Section] = &[
    Section {
        slug: "users",
        path: "/users",
        title: "Users",
        summary: "People who sign in to wasm-as-os, their roles and their status.",
        coming: &[
            "Search and page through accounts",
            "Create users and assign roles",
            "Disable, enable and reset passwords",
        ],
        icon: "M16 19v-1a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4v1M9.5 10a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7M21 19v-1a4 4 0 0 0-3-3.9M15.5 3.1a3.5 3.5 0 0 1 0 6.8",
    },
    Section {
        slug: "roles",
        path: "/roles",
        title: "Roles",
        summary: "Roles and the permissions they grant, from rbac.yml and your own.",
        coming: &[
            "The permissions of admin, developer, operator and viewer",
            "Who holds each role",
            "Custom roles",
        ],
        icon: "M12 3l8 3v6c0 4.5-3.4 8.2-8 9-4.6-.8-8-4.5-8-9V6l8-3zM9 12l2 2 4-4",
    },
    Section {
        slug: "modules",
        path: "/modules",
        title: "Modules",
        summary: "Uploaded WebAssembly modules, their analysis and their runs.",
        coming: &[
            "Upload with static analysis and a risk score",
            "Quarantine review",
            "Run modules in the sandbox",
        ],
        icon: "M21 16V8l-9-5-9 5v8l9 5 9-5zM3.3 7.6 12 12.5l8.7-4.9M12 22V12.5",
    },
    Section {
        slug: "scheduler",
        path: "/scheduler",
        title: "Scheduler",
        summary: "Tasks that run modules on a schedule.",
        coming: &["Recurring and one-off tasks", "Run history"],
        icon: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 7v5l3 3",
    },
    Section {
        slug: "snapshots",
        path: "/snapshots",
        title: "Snapshots",
        summary: "Saved module state that operators can restore.",
        coming: &["Create and restore snapshots", "Share snapshots"],
        icon: "M4 7h3l2-3h6l2 3h3v13H4zM12 17a4 4 0 1 0 0-8 4 4 0 0 0 0 8z",
    },
    Section {
        slug: "audit",
        path: "/audit",
        title: "Audit",
        summary: "Every security-relevant event, filterable and exportable.",
        coming: &[
            "Filter by event, actor, outcome and time",
            "Export as CSV or JSON",
            "Tamper-evidence verification",
        ],
        icon: "M9 5H7a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-2M9 5a2 2 0 0 0 2 2h2a2 2 0 0 0 2-2 2 2 0 0 0-2-2h-2a2 2 0 0 0-2 2zM9 12h6M9 16h4",
    },
    Section {
        slug: "security",
        path: "/security",
        title: "Security",
        summary: "Authentication failures, denials, sandbox violations and intrusion detection.",
        coming: &[
            "Charts of security metrics over time",
            "Blocked addresses and alerts",
        ],
        icon: "M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10zM12 8v4M12 16h.01",
    },
    Section {
        slug: "compliance",
        path: "/compliance",
        title: "Compliance",
        summary: "GDPR requests and SOC 2 controls.",
        coming: &["SOC 2 control report"],
        icon: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zM14 2v6h6M9 15l2 2 4-4",
    },
];

pub fn find(slug: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|s| s.slug == slug)
}
