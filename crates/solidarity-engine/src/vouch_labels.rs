//! What a vouched member is called (SPEC §13.2). A vouch never changes a name or
//! collective the admin set (those keys are listed by the admin, not vouched). For a
//! vouched-only key the first standing vouch (by `created_at`) names it; a later voucher
//! cannot rename it, and the other labels its vouchers gave are listed as conflicts for the
//! admins to see. A label that copies the name or collective of a member the admin listed
//! is shown with the key, so a newcomer cannot pass for that member. For corroboration
//! (§13.1) a vouched key counts as a collective of its own, whatever its label, so no
//! voucher can merge it into another's collective.

use solidarity_proto::AuthorKey;
use solidarity_proto::payload::Vouch;
use solidarity_proto::state::Stored;

/// A vouched member's name, addresses and the labels that disagree with it.
#[derive(Debug, PartialEq, Eq)]
pub struct VouchedLabel {
    /// The name shown.
    pub name: String,
    /// Where it listens, from every standing vouch.
    pub addresses: Vec<String>,
    /// The other labels its vouchers gave, each once, in the order they were given.
    pub conflicts: Vec<String>,
}

/// The corroboration group of a vouched key: its own, never shared (§13.1).
pub fn vouched_group(key: &AuthorKey) -> String {
    format!("vouched:{}", key.to_hex())
}

/// The label of `member` from the standing vouches of `vouchers` (each one's latest vouch
/// for it, if that vouches). `taken` tells whether a label is the name or collective of a
/// member the admin listed.
pub fn vouched_label(
    vouches: &[Stored<Vouch>],
    member: &AuthorKey,
    vouchers: &[AuthorKey],
    taken: impl Fn(&str) -> bool,
) -> Option<VouchedLabel> {
    let mut standing: Vec<&Stored<Vouch>> = vouchers
        .iter()
        .filter_map(|voucher| {
            vouches
                .iter()
                .filter(|vouch| vouch.author == *voucher && vouch.body.member == *member)
                .max_by_key(|vouch| (vouch.created_at, vouch.seq))
                .filter(|latest| latest.body.vouch)
        })
        .collect();
    standing.sort_by_key(|vouch| (vouch.created_at, vouch.author));
    let (first, others) = standing.split_first()?;
    let label = first.body.name.clone();
    let mut conflicts: Vec<String> = Vec::new();
    let mut addresses = first.body.addresses.clone();
    for vouch in others {
        if vouch.body.name != label && !conflicts.contains(&vouch.body.name) {
            conflicts.push(vouch.body.name.clone());
        }
        for address in &vouch.body.addresses {
            if !addresses.contains(address) {
                addresses.push(address.clone());
            }
        }
    }
    let name = if taken(&label) {
        format!("{label} (vouched key {})", member.short())
    } else {
        label
    };
    Some(VouchedLabel {
        name,
        addresses,
        conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use solidarity_proto::MessageId;

    fn vouch(author: u8, created_at: u64, name: &str, standing: bool) -> Stored<Vouch> {
        Stored {
            id: MessageId([author; 32]),
            author: AuthorKey([author; 32]),
            seq: created_at,
            created_at,
            expires_at: None,
            body: Vouch {
                member: AuthorKey([9; 32]),
                name: name.into(),
                addresses: vec![format!("/ip4/10.0.0.{author}/tcp/1")],
                vouch: standing,
            },
        }
    }

    #[test]
    fn the_first_label_wins_and_the_others_are_listed() {
        let member = AuthorKey([9; 32]);
        let vouchers = [AuthorKey([1; 32]), AuthorKey([2; 32]), AuthorKey([3; 32])];
        let vouches = [
            vouch(2, 20, "newcomer", true),
            vouch(1, 30, "node0", true),
            vouch(3, 40, "newcomer", true),
            // Voucher 3 renames it later: still its own latest, so it conflicts.
            vouch(3, 50, "other-collective", true),
        ];
        let label = vouched_label(&vouches, &member, &vouchers, |_| false).expect("label");
        assert_eq!(label.name, "newcomer");
        assert_eq!(label.conflicts, ["node0", "other-collective"]);
        assert_eq!(label.addresses.len(), 3);

        // A label copying an admin-listed name is shown with the key.
        let taken = vouched_label(&vouches[1..2], &member, &vouchers, |name| name == "node0")
            .expect("label");
        assert_eq!(
            taken.name,
            format!("node0 (vouched key {})", member.short())
        );

        // A withdrawn vouch gives no label.
        assert_eq!(
            vouched_label(
                &[vouch(1, 1, "x", true), vouch(1, 2, "x", false)],
                &member,
                &vouchers,
                |_| false
            ),
            None
        );
    }
}
