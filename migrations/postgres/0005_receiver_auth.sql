-- Signing and receiver authentication (SPEC §13). `signing_keys` (the
-- Ed25519 keys of `v1a`, with the one a rotation replaced) and `auth` (the
-- receiver credentials, secret parts included) are sealed JSON, like the
-- secret columns; `ca_certificate` is public PEM.
ALTER TABLE webhooks ADD COLUMN signature_scheme TEXT NOT NULL DEFAULT 'v1';
ALTER TABLE webhooks ADD COLUMN signing_keys BYTEA;
ALTER TABLE webhooks ADD COLUMN auth BYTEA;
ALTER TABLE webhooks ADD COLUMN ca_certificate TEXT;
