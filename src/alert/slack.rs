//! Slack incoming webhooks: the Block Kit message for an alert, and what Slack's answer
//! means. Slack answers `200` with the text body `ok`; `429` with `Retry-After` (seconds)
//! when a webhook posts faster than about one message a second; `400 invalid_payload`,
//! `403 action_prohibited`, `404 no_service` / `channel_not_found`, `410
//! channel_is_archived` for a message or webhook that will not work on a retry; `5xx`
//! (`rollup_error`) for its own trouble.
//!
//! Must not: quote the webhook URL anywhere (it is the credential) or a lead's email.

use serde_json::{json, Value};

use super::dispatcher::{Message, SendError};

/// Slack's longest header text (plain_text); longer is `invalid_blocks`.
const HEADER_MAX: usize = 150;
/// Slack's longest section text or field (mrkdwn).
const TEXT_MAX: usize = 2000;

/// The Block Kit payload for `m`: a header, fields with grade, score and route, the top
/// factors, a button to the console's lead page when there is one, and a context line.
/// `text` is the notification's fallback.
pub fn payload(m: &Message) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": clip(&m.title, HEADER_MAX), "emoji": true }
    })];
    let mut fields: Vec<Value> = Vec::new();
    let mut field = |name: &str, value: String| {
        fields.push(json!({
            "type": "mrkdwn",
            "text": clip(&format!("*{name}*\n{}", escape(&value)), TEXT_MAX)
        }))
    };
    if let Some(l) = &m.lead {
        let grade = match &l.previous_grade {
            Some(p) if *p != l.grade => format!("{} (was {p})", l.grade),
            _ => l.grade.clone(),
        };
        field("Grade", grade);
        field("Score", l.score.to_string());
        if let Some(r) = &l.route {
            field("Route", r.clone());
        }
        if let Some(c) = &l.company {
            field("Company", c.clone());
        }
    }
    if let Some(s) = &m.sla {
        field("Owner", s.owner.clone());
        field(
            "SLA",
            format!("{} (due {})", s.sla, s.due_at.format("%Y-%m-%d %H:%M UTC")),
        );
        field(
            "Now with",
            s.new_owner.clone().unwrap_or_else(|| "review".into()),
        );
    }
    if let Some(p) = &m.provider {
        field("Provider", p.clone());
    }
    field("Alert", m.alert.clone());
    blocks.push(json!({ "type": "section", "fields": fields }));
    blocks.push(json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": clip(&escape(&m.summary), TEXT_MAX) }
    }));
    if let Some(l) = m.lead.as_ref().filter(|l| !l.factors.is_empty()) {
        let lines: Vec<String> = l
            .factors
            .iter()
            .map(|f| format!("• {} {:+}", escape(&f.rule), f.points))
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": clip(&format!("*Top factors*\n{}", lines.join("\n")), TEXT_MAX) }
        }));
    }
    if let Some(link) = m.lead.as_ref().and_then(|l| l.link.as_ref()) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": { "type": "plain_text", "text": "Open in leadgate" },
                "url": link
            }]
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": escape(&format!(
            "leadgate · {} · {}", m.on.as_str(), m.at.format("%Y-%m-%d %H:%M:%S UTC")
        )) }]
    }));
    json!({ "text": m.fallback(), "blocks": blocks })
}

/// What Slack's answer means: `Ok(())` for `200 ok`.
pub fn outcome(
    status: u16,
    retry_after: Option<std::time::Duration>,
    body: &str,
) -> Result<(), SendError> {
    let code = body.trim();
    match status {
        200..=299 => Ok(()),
        429 => Err(SendError::retry(status, retry_after, "rate_limited")),
        500..=599 => Err(SendError::retry(status, retry_after, code)),
        // invalid_payload, no_service, channel_not_found, action_prohibited…: the same
        // message to the same webhook fails the same way.
        _ => Err(SendError::permanent(status, code)),
    }
}

/// Slack's mrkdwn needs only these three escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, on a character boundary.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
