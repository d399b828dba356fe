use ed25519_dalek::SigningKey;
use solidarity_proto::payload::*;
use solidarity_proto::*;

struct T;
impl TrustView for T {
    fn is_member(&self, _: &AuthorKey) -> bool {
        true
    }
}
struct L;
impl Lookup for L {
    fn contains(&self, _: &MessageId) -> bool {
        false
    }
    fn id_at(&self, _: &AuthorKey, _: u64) -> Option<MessageId> {
        None
    }
    fn author_and_kind(&self, _: &MessageId) -> Option<(AuthorKey, String)> {
        None
    }
}

#[test]
fn scratch() {
    let key = SigningKey::from_bytes(&[1u8; 32]);
    let fed = FederationId::from_name("test-federation");
    let body = Body::MirrorWithdraw(MirrorWithdraw {
        offer: MessageId([9; 32]),
    });
    let p = Payload {
        fed,
        seq: 1,
        prev: None,
        created_at: 1_700_000_000_000,
        expires_at: None,
        kind: "mirror-withdraw".into(),
        body: body.encode(),
    };
    let m = envelope::sign(&key, &p);
    let now = 1_700_000_000_000;
    println!("{}", hex::encode(&m.bytes));
    let v = |b: &[u8]| match validate(b, now, &fed, &T, &L) {
        Verdict::Accept(a) => format!("ACCEPT {}", a.id == m.id),
        o => format!("{o:?}"),
    };
    println!("orig {}", v(&m.bytes));
    // find "sig" key 0x63 73 69 67
    let pos = m
        .bytes
        .windows(4)
        .position(|w| w == [0x63, b's', b'i', b'g'])
        .unwrap();
    let mut b = m.bytes.clone();
    b[pos] = 0x43;
    println!("bytes key sig {}", v(&b));
    // integer key: v at index 0 -> replace 0x61 0x76 by 0x00 ... changes length; build manually
    let env = Envelope::decode(&m.bytes).unwrap();
    let mut arr = vec![0x84u8, 0x01, 0x58, 0x20];
    arr.extend_from_slice(env.signer.as_bytes());
    arr.extend(serde_cbor::to_vec(&serde_bytes::Bytes::new(&env.payload)).unwrap());
    arr.extend(serde_cbor::to_vec(&serde_bytes::Bytes::new(&env.sig[..])).unwrap());
    println!("array form {}", v(&arr));
    // non-minimal int v: 0x18 0x01
    let vpos = m
        .bytes
        .windows(3)
        .position(|w| w == [0x61, b'v', 0x01])
        .unwrap();
    let mut b = m.bytes.clone();
    b.splice(vpos + 2..vpos + 3, [0x18, 0x01]);
    println!("nonminimal v {}", v(&b));
    // integer key 0 for v
    let mut b = m.bytes.clone();
    b.splice(vpos..vpos + 2, [0x00]);
    println!("int key {}", v(&b));
    // tag on v
    let mut b = m.bytes.clone();
    b.splice(vpos + 2..vpos + 3, [0xc1, 0x01]);
    println!("tagged v {}", v(&b));
    // indefinite map
    let mut b = m.bytes.clone();
    b[0] = 0xbf;
    b.push(0xff);
    println!("indef map {}", v(&b));
    // reorder: put v last
    let mut b = vec![0xa4];
    b.extend_from_slice(&m.bytes[vpos + 3..]);
    b.extend_from_slice(&[0x61, b'v', 0x01]);
    println!("reorder {}", v(&b));
    // duplicate key v
    let mut b = m.bytes.clone();
    b[0] = 0xa5;
    b.extend_from_slice(&[0x61, b'v', 0x01]);
    println!("dup {}", v(&b));
    // payload text string instead of bytes?  payload not utf8 likely
    // sig as array of ints
    let mut b = m.bytes.clone();
    let spos = b
        .windows(4)
        .position(|w| w == [0x63, b's', b'i', b'g'])
        .unwrap();
    b.truncate(spos + 4);
    b.push(0x98);
    b.push(64);
    for x in env.sig.iter() {
        b.extend(serde_cbor::to_vec(x).unwrap());
    }
    println!("sig as array {}", v(&b));
    let mut b = m.bytes.clone();
    b.truncate(spos + 4);
    b.push(0x5f);
    b.extend_from_slice(&[0x58, 32]);
    b.extend_from_slice(&env.sig[..32]);
    b.extend_from_slice(&[0x58, 32]);
    b.extend_from_slice(&env.sig[32..]);
    b.push(0xff);
    println!("sig indefinite bytes {}", v(&b));
    // float v
    let mut b = m.bytes.clone();
    b.splice(vpos + 2..vpos + 3, [0xf9, 0x3c, 0x00]);
    println!("half float v {}", v(&b));
    // body leniency: unknown field in body
    let mut bb = body.encode();
    bb[0] = 0xa2;
    bb.extend_from_slice(&[0x61, b'x', 0x01]);
    let p2 = Payload {
        body: bb,
        ..p.clone()
    };
    let m2 = envelope::sign(&key, &p2);
    println!("unknown body field {}", v(&m2.bytes));
    // unknown payload field
    let mut pb = serde_cbor::to_vec(&p).unwrap();
    pb[0] += 1;
    pb.extend_from_slice(&[0x61, b'x', 0x01]);
    let env3 = Envelope {
        v: 1,
        signer: env.signer,
        payload: pb.clone(),
        sig: serde_bytes::ByteArray::new(
            ed25519_dalek::Signer::sign(&key, &[envelope::SIGNATURE_DOMAIN, &pb].concat())
                .to_bytes(),
        ),
    };
    println!("unknown payload field {}", v(&env3.encode()));
    println!(
        "payload hex {}",
        hex::encode(serde_cbor::to_vec(&p).unwrap())
    );
}
