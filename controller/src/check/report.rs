//! What `weft check` found, and its two renderings: Linkerd's text (a
//! heading per category, `✓`/`‼`/`×` per check, the reason and a hint
//! under a problem) and Linkerd's `-o json` shape.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    /// Worth knowing; does not fail the run.
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub description: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hint: String,
    /// What is wrong.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    pub result: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    pub category_name: String,
    pub checks: Vec<Check>,
}

/// Why a check did not pass, and how bad that is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub outcome: Outcome,
    pub error: String,
    pub hint: String,
}

pub fn fail(error: impl Into<String>, hint: impl Into<String>) -> Problem {
    Problem {
        outcome: Outcome::Error,
        error: error.into(),
        hint: hint.into(),
    }
}

pub fn warn(error: impl Into<String>, hint: impl Into<String>) -> Problem {
    Problem {
        outcome: Outcome::Warning,
        error: error.into(),
        hint: hint.into(),
    }
}

// === impl Check ===

impl Check {
    pub fn new(description: impl Into<String>, verdict: Result<(), Problem>) -> Self {
        let description = description.into();
        match verdict {
            Ok(()) => Check {
                description,
                hint: String::new(),
                error: String::new(),
                result: Outcome::Success,
            },
            Err(problem) => Check {
                description,
                hint: problem.hint,
                error: problem.error,
                result: problem.outcome,
            },
        }
    }
}

// === impl Category ===

impl Category {
    pub fn new(name: &str, checks: Vec<Check>) -> Self {
        Category {
            category_name: name.to_string(),
            checks,
        }
    }
}

/// Whether no check failed; warnings pass.
pub fn success(categories: &[Category]) -> bool {
    categories
        .iter()
        .flat_map(|c| &c.checks)
        .all(|c| c.result != Outcome::Error)
}

pub fn render_text(categories: &[Category]) -> String {
    let mut out = String::new();
    for category in categories {
        let name = &category.category_name;
        out += &format!("{name}\n{}\n", "-".repeat(name.chars().count()));
        for check in &category.checks {
            let mark = match check.result {
                Outcome::Success => '✓',
                Outcome::Warning => '‼',
                Outcome::Error => '×',
            };
            out += &format!("{mark} {}\n", check.description);
            for line in check.error.lines() {
                out += &format!("    {line}\n");
            }
            if !check.hint.is_empty() {
                out += &format!("    hint: {}\n", check.hint);
            }
        }
        out.push('\n');
    }
    let mark = if success(categories) { '✓' } else { '×' };
    out += &format!("Status check results are {mark}\n");
    out
}

pub fn render_json(categories: &[Category]) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        success: bool,
        categories: &'a [Category],
    }
    let report = Report {
        success: success(categories),
        categories,
    };
    let mut out = serde_json::to_string_pretty(&report).expect("a report serializes");
    out.push('\n');
    out
}
