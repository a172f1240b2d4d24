-- Data loss prevention and upload allow-listing.

-- A firm's protective settings (upload allow-list, DLP actions per detector, daily download
-- caps) as one JSON document; a firm without a row has the defaults.
CREATE TABLE tenant_protection (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id),
    settings   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What the DLP scan found in a document, for documents where it found something or could not
-- read the text. Counts per detector only: never the matched values.
CREATE TABLE document_flags (
    tenant_id   TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES documents(id),
    matter_id   TEXT NOT NULL,
    state       TEXT NOT NULL,
    findings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, document_id)
);
CREATE INDEX document_flags_state ON document_flags (tenant_id, state);

-- Downloads per user per UTC day, for the daily cap.
CREATE TABLE download_usage (
    tenant_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    day       TEXT NOT NULL,
    downloads BIGINT NOT NULL,
    bytes     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, day)
);
