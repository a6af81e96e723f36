//! The figures table in `docs/reliability.md`: everything from its
//! `## Figures` heading on is rewritten; the prose above it stays.

use std::path::Path;

use anyhow::Context;

const HEADING: &str = "## Figures";

/// One line of the table.
pub struct Row {
    /// The area: hostile clients, faults under load, soak.
    pub area: &'static str,
    pub what: String,
    /// The load held, or the input tried.
    pub load: String,
    pub result: String,
    pub target: &'static str,
    pub met: bool,
}

pub fn render(rows: &[Row], command: &str) -> String {
    let date = crate::harness::processes::output_within(
        std::process::Command::new("date").args(["-u", "+%Y-%m-%d"]),
        std::time::Duration::from_secs(5),
    )
    .unwrap_or_default();
    let mut text = format!(
        "{HEADING}\n\n\
         Measured with `{command}` on {} (UTC), release builds, on a busy 2-core \
         machine shared with other work: the proxy under test alone on CPU 1 with one \
         worker, the load and the apps on CPU 0. Latencies are from each request's \
         scheduled send time (no coordinated omission); a failed request is any \
         error or 4xx/5xx answer.\n\n\
         | area | what | load held / input tried | result | target | met |\n\
         |---|---|---|---|---|---|\n",
        date.trim()
    );
    for row in rows {
        text += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            row.area,
            row.what,
            row.load,
            row.result,
            row.target,
            if row.met { "yes" } else { "**no**" }
        );
    }
    text
}

/// Replaces the figures section of `doc` (or appends one).
pub fn write(doc: &Path, figures: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    let prose = match old.find(&format!("\n{HEADING}\n")) {
        Some(at) => &old[..at],
        None => old.trim_end(),
    };
    let text = format!("{}\n\n{figures}", prose.trim_end());
    std::fs::write(doc, text).with_context(|| format!("writing {}", doc.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_figures_section() {
        let dir = std::env::temp_dir().join(format!("weft-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let doc = dir.join("reliability.md");
        std::fs::write(&doc, "# Reliability\n\nprose\n").unwrap();
        write(&doc, "## Figures\n\nfirst\n").unwrap();
        write(&doc, "## Figures\n\nsecond\n").unwrap();
        let text = std::fs::read_to_string(&doc).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text, "# Reliability\n\nprose\n\n## Figures\n\nsecond\n");
    }
}
