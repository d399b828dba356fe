//! Keys and membership: N node keys drawn from the run's seed, and the members list every
//! node of the federation shares (each node's admin listed every other member).

use ed25519_dalek::SigningKey;
use rand::Rng;
use solidarity_proto::envelope::author_key;
use solidarity_proto::{AuthorKey, FederationId};

/// The federation of a simulation.
pub struct Federation {
    /// The federation's id.
    pub id: FederationId,
    /// Each node's signing key, by node index.
    pub keys: Vec<SigningKey>,
    /// Each node's public key, by node index: the shared members list.
    pub members: Vec<AuthorKey>,
}

impl Federation {
    /// `nodes` members with keys drawn from `rng`.
    pub fn new(name: &str, nodes: usize, rng: &mut impl Rng) -> Self {
        let keys: Vec<SigningKey> = (0..nodes).map(|_| signing_key(rng)).collect();
        let members = keys.iter().map(author_key).collect();
        Self {
            id: FederationId::from_name(name),
            keys,
            members,
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the federation has no member.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A key drawn from `rng` (an outsider's, a throwaway's, or a member's).
pub fn signing_key(rng: &mut impl Rng) -> SigningKey {
    SigningKey::from_bytes(&rng.r#gen::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::rng;
    use std::collections::BTreeSet;

    #[test]
    fn one_seed_gives_the_same_distinct_members() {
        let first = Federation::new("sim", 100, &mut rng(9));
        let again = Federation::new("sim", 100, &mut rng(9));
        assert_eq!(first.members, again.members);
        let distinct: BTreeSet<_> = first.members.iter().collect();
        assert_eq!(distinct.len(), 100);
        assert_ne!(
            first.members,
            Federation::new("sim", 100, &mut rng(10)).members
        );
    }
}
