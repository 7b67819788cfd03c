-- Alerts sent (issue 25 item 4), one row per (alert, key): the lead id, provider id or
-- `delivery` the alert was about, and when it was last sent. A claim is one upsert that
-- succeeds only when no send of the same alert about the same key happened within its
-- dedupe window, so replicas sharing this store, and a restarted daemon, send each alert
-- once per window.
CREATE TABLE alert_claims (
    alert   TEXT NOT NULL,
    key     TEXT NOT NULL,
    sent_ms BIGINT NOT NULL,           -- unix ms of the send that holds the window
    PRIMARY KEY (alert, key)
);
