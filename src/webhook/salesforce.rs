//! Salesforce Outbound Messaging: a SOAP envelope with up to 100 `Notification`s, each an
//! `Id` and a Lead `sObject`. Salesforce cannot sign it, so leadgate checks the org id and
//! a secret token in the endpoint URL (`.../v1/webhooks/salesforce?token=...`), and answers
//! with the SOAP `Ack` Salesforce waits for.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{constant_time_eq, Intake, Verified, WebhookError, WebhookEvent, WebhookRequest};
use crate::lead::RawLead;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceWebhookConfig {
    /// The 18-character org id the messages must come from (`00D...`).
    pub organization_id: String,
    /// The secret in the endpoint URL's `token` query parameter.
    pub token: String,
}

pub const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#;

/// Lead sObject fields → canonical fields.
const FIELD_MAP: &[(&str, &str)] = &[
    ("Email", "email"),
    ("FirstName", "first_name"),
    ("LastName", "last_name"),
    ("Title", "title"),
    ("Company", "company"),
    ("Website", "website"),
    ("Phone", "phone"),
    ("Country", "country"),
    ("LeadSource", "source"),
];

pub(super) fn handle(
    cfg: &SalesforceWebhookConfig,
    req: &WebhookRequest,
) -> Result<Verified, WebhookError> {
    if cfg.token.len() < super::MIN_SECRET_LEN || cfg.organization_id.len() < 15 {
        return Err(WebhookError::Unauthorized(
            "no usable organization_id and token are configured".into(),
        ));
    }
    let token = req
        .url
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
        .ok_or_else(|| WebhookError::Unauthorized("no token in the endpoint URL".into()))?;
    if !constant_time_eq(token.as_bytes(), cfg.token.as_bytes()) {
        return Err(WebhookError::Unauthorized(
            "wrong token in the endpoint URL".into(),
        ));
    }
    let message = parse(req.body)?;
    if !message
        .organization_id
        .starts_with(&cfg.organization_id[..cfg.organization_id.len().min(15)])
    {
        return Err(WebhookError::Unauthorized(
            "the message comes from another Salesforce org".into(),
        ));
    }
    let mut out = Verified {
        events: Vec::new(),
        ignored: 0,
        reply: Some(("text/xml; charset=utf-8", ACK.to_string())),
    };
    for n in message.notifications {
        let record_id = n.fields.get("Id").cloned().unwrap_or_default();
        let mut lead = Map::new();
        for (sf, canonical) in FIELD_MAP {
            if let Some(v) = n.fields.get(*sf) {
                lead.insert((*canonical).into(), Value::from(v.as_str()));
            }
        }
        for (k, v) in &n.fields {
            if !FIELD_MAP.iter().any(|(sf, _)| sf == k) && k != "Id" {
                lead.insert(k.clone(), Value::from(v.as_str()));
            }
        }
        let intake = if lead.contains_key("email") || lead.contains_key("website") {
            lead.insert("external_id".into(), Value::from(record_id));
            lead.insert("crm".into(), Value::from("salesforce"));
            Intake::Lead(RawLead(lead))
        } else {
            Intake::Fetch {
                object: "Lead".into(),
                id: record_id,
            }
        };
        out.events.push(WebhookEvent {
            event_id: n.id,
            intake,
        });
    }
    Ok(out)
}

struct Notification {
    id: String,
    fields: std::collections::BTreeMap<String, String>,
}

struct Message {
    organization_id: String,
    notifications: Vec<Notification>,
}

/// Reads the envelope with local names (namespace prefixes vary between orgs).
fn parse(body: &[u8]) -> Result<Message, WebhookError> {
    let bad = |why: String| WebhookError::BadPayload(why);
    let mut reader = Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut message = Message {
        organization_id: String::new(),
        notifications: Vec::new(),
    };
    let mut buf = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "Notification" {
                    message.notifications.push(Notification {
                        id: String::new(),
                        fields: Default::default(),
                    });
                }
                path.push(name);
                text.clear();
            }
            Ok(Event::Text(t)) => {
                text.push_str(&t.decode().map_err(|e| bad(format!("bad text: {e}")))?)
            }
            // quick-xml reports `&amp;` and friends apart from the text around them.
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| bad(format!("bad entity: {e}")))?;
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_xml_entity(&name)
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("unknown entity &{name};")))?,
                };
                text.push_str(&resolved);
            }
            Ok(Event::End(_)) => {
                let value = std::mem::take(&mut text);
                let n = path.len();
                match (
                    path.get(n.wrapping_sub(2)).map(String::as_str),
                    path.last().map(String::as_str),
                ) {
                    (Some("notifications"), Some("OrganizationId")) => {
                        message.organization_id = value.trim().to_string()
                    }
                    (Some("Notification"), Some("Id")) => {
                        if let Some(last) = message.notifications.last_mut() {
                            last.id = value.trim().to_string();
                        }
                    }
                    (Some("sObject"), Some(field)) => {
                        let field = field.to_string();
                        if let Some(last) = message.notifications.last_mut() {
                            last.fields.insert(field, value.trim().to_string());
                        }
                    }
                    _ => {}
                }
                path.pop();
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(bad(format!("not a SOAP envelope: {e}"))),
            _ => {}
        }
        buf.clear();
    }
    if message.organization_id.is_empty() {
        return Err(bad("no OrganizationId: not an Outbound Message".into()));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub const ENVELOPE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000001AAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000001</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D000000000001</PartnerUrl>
   <Notification>
    <Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q000000000001AAA</sf:Id>
     <sf:Company>Acme &amp; Co</sf:Company>
     <sf:Email>jane@acme.io</sf:Email>
     <sf:LastName>Smith</sf:LastName>
    </sObject>
   </Notification>
   <Notification>
    <Id>04l000000000002AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q000000000002AAA</sf:Id>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    fn run(url: &str, body: &str) -> Result<Verified, WebhookError> {
        let cfg = SalesforceWebhookConfig {
            organization_id: "00D000000000001AAA".into(),
            token: "t0k-0123456789abcd".into(),
        };
        let headers = HashMap::new();
        handle(
            &cfg,
            &WebhookRequest {
                method: "POST",
                url: url.into(),
                headers: &headers,
                body: body.as_bytes(),
                now_ms: 0,
            },
        )
    }

    #[test]
    fn reads_notifications_and_answers_with_an_ack() {
        let v = run(
            "https://gw/v1/webhooks/salesforce?token=t0k-0123456789abcd",
            ENVELOPE,
        )
        .unwrap();
        assert_eq!(v.events.len(), 2);
        let Intake::Lead(lead) = &v.events[0].intake else {
            panic!("expected a lead")
        };
        assert_eq!(lead.0["email"], "jane@acme.io");
        assert_eq!(lead.0["company"], "Acme & Co");
        assert_eq!(lead.0["external_id"], "00Q000000000001AAA");
        assert_eq!(
            v.events[1].intake,
            Intake::Fetch {
                object: "Lead".into(),
                id: "00Q000000000002AAA".into()
            }
        );
        assert!(v.reply.unwrap().1.contains("<Ack>true</Ack>"));
    }

    #[test]
    fn wrong_token_or_org_is_refused() {
        assert!(matches!(
            run("https://gw/x?token=nope", ENVELOPE),
            Err(WebhookError::Unauthorized(_))
        ));
        let other_org = ENVELOPE.replace("00D000000000001AAA", "00D999999999999AAA");
        assert!(matches!(
            run("https://gw/x?token=t0k-0123456789abcd", &other_org),
            Err(WebhookError::Unauthorized(_))
        ));
        assert!(matches!(
            run("https://gw/x?token=t0k-0123456789abcd", "not xml <"),
            Err(WebhookError::BadPayload(_)) | Err(WebhookError::Unauthorized(_))
        ));
    }
}
