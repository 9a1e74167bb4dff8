//! Why `embed` or `strip` left a file as it was, by kind: the summary counts refusals by kind and
//! names the reason of each.

use serde::Serialize;

/// The kinds of refusal, the injector's and the replacement's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The ELF reader cannot read the file's dynamic-linking facts.
    Unreadable,
    /// Headers the injector does not take.
    Unsupported,
    /// No place for the note without moving what must not move.
    NoRoom,
    /// The injector's output failed its own check: a defect of the injector.
    SelfCheck,
    /// The file changed, or another took its name, while the run worked on it.
    Changed,
    /// The new version could not keep the file's owner, mode, attributes or capabilities.
    Metadata,
}

impl Kind {
    /// The kind in the text summary.
    pub fn words(self) -> &'static str {
        match self {
            Kind::Unreadable => "unreadable",
            Kind::Unsupported => "unsupported",
            Kind::NoRoom => "no room",
            Kind::SelfCheck => "self-check",
            Kind::Changed => "changed",
            Kind::Metadata => "metadata",
        }
    }
}

impl From<ldcache_inject::RefusalKind> for Kind {
    fn from(kind: ldcache_inject::RefusalKind) -> Kind {
        match kind {
            ldcache_inject::RefusalKind::Unsupported => Kind::Unsupported,
            ldcache_inject::RefusalKind::NoRoom => Kind::NoRoom,
            ldcache_inject::RefusalKind::SelfCheck => Kind::SelfCheck,
        }
    }
}
