//! The console's templates, embedded in the binary and parsed once.

use std::sync::OnceLock;

use minijinja::Environment;

/// The console's stylesheet, served at `/console/assets/console.css`.
pub const CSS: &str = include_str!("assets/console.css");

const TEMPLATES: [(&str, &str); 8] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("leads.html", include_str!("templates/leads.html")),
    ("lead.html", include_str!("templates/lead.html")),
    ("review.html", include_str!("templates/review.html")),
    ("pools.html", include_str!("templates/pools.html")),
    ("providers.html", include_str!("templates/providers.html")),
    ("charts.html", include_str!("templates/charts.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are part of the binary: one that does not parse is a build bug,
            // caught by the `every_template_parses` test.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "console template does not parse");
            }
        }
        env
    })
}

/// Renders a page; HTML-escaping is on for `.html` templates.
pub fn render(name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
    env().get_template(name)?.render(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for (name, source) in TEMPLATES {
            let mut env = Environment::new();
            env.add_template("base.html", TEMPLATES[0].1).unwrap();
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
