//! Every store serves the engine's reads ([`solidarity_engine::StoreRead`]): the
//! in-memory store under a simulated engine, the sled store under the daemon's.

use solidarity_engine::{ChainEnvelope, Compromised, Loaded, ReadError, StoreRead};
use solidarity_proto::{AuthorKey, MessageId};

use crate::kv::{Backend, KvStore};
use solidarity_proto::payload::{KIND_NODE_CERT, KIND_REVOCATION, KIND_VOUCH};

use crate::{Store, StoreError};

fn read(error: StoreError) -> ReadError {
    ReadError {
        source: Box::new(error),
    }
}

macro_rules! store_read {
    ($target:ty $(, $generic:ident: $bound:path)?) => {
        impl$(<$generic: $bound>)? StoreRead for $target {
            fn contains(&self, id: &MessageId) -> Result<bool, ReadError> {
                Store::contains(self, id).map_err(read)
            }
            fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, ReadError> {
                Store::envelope(self, id).map_err(read)
            }
            fn author_and_kind(
                &self,
                id: &MessageId,
            ) -> Result<Option<(AuthorKey, String)>, ReadError> {
                Ok(Store::meta(self, id)
                    .map_err(read)?
                    .map(|meta| (meta.author, meta.kind)))
            }
            fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, ReadError> {
                Store::id_at(self, author, seq).map_err(read)
            }
            fn watermark(&self, author: &AuthorKey) -> Result<u64, ReadError> {
                Store::watermark(self, author).map_err(read)
            }
            fn chain_head(
                &self,
                author: &AuthorKey,
            ) -> Result<Option<(u64, MessageId)>, ReadError> {
                Store::chain_head(self, author).map_err(read)
            }
            fn author_range(
                &self,
                author: &AuthorKey,
                from_seq: u64,
                limit: usize,
            ) -> Result<Vec<ChainEnvelope>, ReadError> {
                Ok(Store::author_range(self, author, from_seq, limit)
                    .map_err(read)?
                    .into_iter()
                    .map(|stored| ChainEnvelope {
                        seq: stored.seq,
                        envelope: stored.envelope,
                    })
                    .collect())
            }
            fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, ReadError> {
                Store::stored_bytes(self, author).map_err(read)
            }
            fn fork_evidence(&self, author: &AuthorKey) -> Result<Vec<Vec<u8>>, ReadError> {
                Ok(Store::compromised(self)
                    .map_err(read)?
                    .into_iter()
                    .filter(|compromise| compromise.author == *author)
                    .flat_map(|compromise| compromise.evidence)
                    .map(|stored| stored.envelope)
                    .collect())
            }
        }
    };
}

store_read!(dyn Store);
store_read!(KvStore<B>, B: Backend);

/// What an engine starts from: every stored statement and vouch, each member's kept
/// canaries, and the keys marked compromised.
pub fn engine_start(store: &dyn Store) -> Result<Loaded, StoreError> {
    let mut envelopes = Vec::new();
    for kind in [KIND_VOUCH, KIND_REVOCATION, KIND_NODE_CERT] {
        envelopes.extend(
            store
                .by_kind(kind)?
                .into_iter()
                .map(|stored| stored.envelope),
        );
    }
    for (_, kept) in store.kept_canaries()? {
        envelopes.extend(kept.into_iter().map(|stored| stored.envelope));
    }
    let compromised = store
        .compromised()?
        .into_iter()
        .map(|compromise| {
            let state = Compromised {
                detected_at: compromise.detected_at,
                from_seq: compromise.from_seq,
            };
            (compromise.author, state)
        })
        .collect();
    Ok(solidarity_engine::load(envelopes, compromised))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, NewMessage};

    #[test]
    fn the_memory_store_serves_the_engine_reads() {
        let store = MemoryStore::default();
        let author = AuthorKey([1; 32]);
        let id = MessageId([2; 32]);
        store
            .insert_batch(&[NewMessage {
                id,
                author,
                seq: 1,
                kind: "alert".into(),
                created_at: 5,
                expires_at: None,
                refers_to: None,
                envelope: vec![7; 10],
            }])
            .expect("insert");
        let reader: &dyn StoreRead = &store;
        assert!(reader.contains(&id).expect("read"));
        assert_eq!(
            reader.author_and_kind(&id).expect("read"),
            Some((author, "alert".to_owned()))
        );
        assert_eq!(reader.watermark(&author).expect("read"), 1);
        assert_eq!(
            reader.author_range(&author, 1, 10).expect("read"),
            [ChainEnvelope {
                seq: 1,
                envelope: vec![7; 10]
            }]
        );
        assert_eq!(reader.stored_bytes(&author).expect("read"), 10);
        assert!(reader.fork_evidence(&author).expect("read").is_empty());
        let loaded = engine_start(&store).expect("load");
        assert!(loaded.vouches.is_empty() && loaded.compromised.is_empty());
    }
}
