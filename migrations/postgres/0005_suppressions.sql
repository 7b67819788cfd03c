-- People who asked to be erased (GDPR / CCPA). Only a SHA-256 of the normalized email is
-- kept, so the list itself holds no personal data; a later arrival is refused by it.
CREATE TABLE suppressions (
    email_sha256 TEXT PRIMARY KEY,
    created_at   BIGINT NOT NULL
);
