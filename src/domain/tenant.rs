//! Tenant identifiers.

/// The tenant used when a bootstrap key sends no `X-Tenant-Id`.
pub const DEFAULT_TENANT: &str = "default";

/// Checks a tenant id: 1–64 characters of `A-Z a-z 0-9 _ - .`.
pub fn validate_tenant_id(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err("may contain only letters, digits, '_', '-' and '.'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids_and_rejects_odd_ones() {
        assert!(validate_tenant_id("default").is_ok());
        assert!(validate_tenant_id("acme-42.eu_1").is_ok());
        assert!(validate_tenant_id("").is_err());
        assert!(validate_tenant_id("a b").is_err());
        assert!(validate_tenant_id(&"x".repeat(65)).is_err());
    }
}
