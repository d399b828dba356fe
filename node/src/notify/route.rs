//! Which channels a notice goes to: the channel's filter, and the rule that canary and
//! duress notices go only to channels marked `private`, whatever their filter says.

use super::config::{ChannelConfig, Filter};
use super::doc::NoticeDoc;

/// Whether `channel` carries `doc`.
pub fn carries(channel: &ChannelConfig, doc: &NoticeDoc) -> bool {
    if doc.notice_type.is_private() && !channel.private {
        return false;
    }
    passes(&channel.filter, doc)
}

fn passes(filter: &Filter, doc: &NoticeDoc) -> bool {
    if !filter.types.contains(&doc.notice_type) || doc.severity < filter.min_severity {
        return false;
    }
    if !filter.members.is_empty()
        && !doc
            .member
            .as_ref()
            .is_some_and(|member| filter.members.contains(member))
    {
        return false;
    }
    if let Some(alert) = &doc.alert {
        if !filter.kinds.is_empty() && !filter.kinds.contains(&alert.kind) {
            return false;
        }
        if !filter.jurisdictions.is_empty()
            && !alert
                .jurisdictions
                .iter()
                .any(|code| filter.jurisdictions.contains(&code.to_ascii_uppercase()))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::notify::config::{ALL_TYPES, ExecTarget, Target};
    use crate::notify::doc::{AlertFields, NoticeType, Severity};

    fn channel(private: bool, filter: Filter) -> ChannelConfig {
        ChannelConfig {
            name: "c".into(),
            private,
            filter,
            settle: Duration::ZERO,
            max_per_hour: None,
            timeout: Duration::from_secs(1),
            target: Target::Exec(ExecTarget {
                command: vec!["/bin/true".into()],
            }),
        }
    }

    fn everything() -> Filter {
        Filter {
            types: ALL_TYPES.to_vec(),
            min_severity: Severity::Info,
            kinds: Vec::new(),
            jurisdictions: Vec::new(),
            members: Vec::new(),
        }
    }

    fn doc(notice_type: NoticeType, severity: Severity, kind: &str, member: &str) -> NoticeDoc {
        NoticeDoc {
            id: "00".into(),
            notice_type,
            severity,
            at: 0,
            title: String::new(),
            text: String::new(),
            member: Some(member.into()),
            alert: (notice_type == NoticeType::Alert).then(|| AlertFields {
                id: "00".into(),
                kind: kind.into(),
                severity,
                subject: String::new(),
                summary: String::new(),
                jurisdictions: vec!["de".into()],
                status: "open".into(),
                created_at: 0,
            }),
        }
    }

    #[test]
    fn duress_and_canary_notices_reach_only_private_channels() {
        for private_type in [
            NoticeType::Duress,
            NoticeType::CanarySilent,
            NoticeType::CanaryChanged,
            NoticeType::CanaryOk,
        ] {
            let notice = doc(private_type, Severity::Critical, "", "m");
            // Even a filter that names the type does not open a public channel.
            assert!(!carries(&channel(false, everything()), &notice));
            assert!(carries(&channel(true, everything()), &notice));
        }
    }

    #[test]
    fn filters_by_type_severity_kind_jurisdiction_and_member_hold() {
        let alert = doc(NoticeType::Alert, Severity::High, "seizure", "riseup");
        assert!(carries(&channel(false, everything()), &alert));
        let only = |change: fn(&mut Filter)| {
            let mut filter = everything();
            change(&mut filter);
            carries(&channel(false, filter), &alert)
        };
        assert!(!only(|f| f.types = vec![NoticeType::Revocation]));
        assert!(!only(|f| f.min_severity = Severity::Critical));
        assert!(only(|f| f.min_severity = Severity::High));
        assert!(!only(|f| f.kinds = vec!["raid".into()]));
        assert!(only(|f| f.kinds = vec!["seizure".into()]));
        assert!(!only(|f| f.jurisdictions = vec!["FR".into()]));
        assert!(only(|f| f.jurisdictions = vec!["DE".into()]));
        assert!(!only(|f| f.members = vec!["other".into()]));
        assert!(only(|f| f.members = vec!["riseup".into()]));
        // Kind and jurisdiction filters do not drop notices that are not about an alert.
        let revocation = doc(NoticeType::Revocation, Severity::High, "", "riseup");
        let mut filter = everything();
        filter.kinds = vec!["raid".into()];
        assert!(carries(&channel(false, filter), &revocation));
    }
}
