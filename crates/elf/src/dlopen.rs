//! The freedesktop.org dlopen metadata note: a JSON array naming libraries an object may `dlopen`.

use serde::{Deserialize, Serialize};

use crate::Error;

/// One feature of the dlopen metadata: the sonames that provide it, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DlopenEntry {
    pub soname: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

/// Parses a descriptor: JSON, then NUL padding.
pub(crate) fn parse(desc: &[u8]) -> Result<Vec<DlopenEntry>, Error> {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    serde_json::from_slice(&desc[..end])
        .map_err(|e| Error::new(format!("malformed FDO dlopen note: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_systemd_style_payload() {
        let desc = br#"[{"feature":"zstd","description":"x","priority":"recommended","soname":["libzstd.so.1"]}]"#;
        let mut padded = desc.to_vec();
        padded.extend_from_slice(&[0, 0, 0]);
        let entries = parse(&padded).unwrap();
        assert_eq!(entries[0].soname, ["libzstd.so.1"]);
        assert_eq!(entries[0].feature.as_deref(), Some("zstd"));
    }

    #[test]
    fn rejects_malformed_json() {
        let err = parse(br#"[{"soname": 1}]"#).unwrap_err();
        assert!(
            err.to_string().starts_with("malformed FDO dlopen note"),
            "{err}"
        );
    }
}
